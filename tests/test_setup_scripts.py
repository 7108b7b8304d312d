"""The set-up the README promises (`make demo`, `make test`), checked with `make -n` in a copy of
the Makefile (nothing is installed here; `make -n` must not change anything either):
- a .venv built by this Python for this checkout is kept; one built by another Python or for
  another checkout (a copied or moved tree), or whose set-up did not finish (no `.built-by`),
  is rebuilt, with a message;
- a Python older than 3.11, or none, stops make with a message naming it; `make clean` needs none.
And .ci/install-components.sh's messages say why nothing was installed and what the tests will do
(skip, or fail under CI=true).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="`make` is not installed")


def _make(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", "-n", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "ebbtide"
    root.mkdir()
    shutil.copy(REPO / "Makefile", root)
    shutil.copy(REPO / "pyproject.toml", root)
    return root


def _built(root: Path) -> str:
    """The `.built-by` line make would write for a fresh .venv here."""
    plan = _make(root, "install")
    assert plan.returncode == 0, plan.stderr
    found = re.search(r"echo '([^']+)' > \.venv/\.built-by", plan.stdout)
    assert found, plan.stdout
    return found.group(1)


def _venv(root: Path, built_by: str | None) -> None:
    (root / ".venv" / "bin").mkdir(parents=True)
    if built_by is not None:
        (root / ".venv" / ".built-by").write_text(built_by + "\n")
    (root / ".venv" / ".installed").touch()


def test_a_fresh_checkout_builds_the_venv_then_installs(checkout: Path) -> None:
    built_by = _built(checkout)
    assert built_by.endswith(f" {checkout}") and f" {sys.version_info[0]}.{sys.version_info[1]} " in built_by
    plan = _make(checkout, "demo").stdout
    assert plan.index("-m venv .venv") < plan.index("pip install -q -e .") < plan.index("ebbtide demo --out out/demo")


def test_the_venv_this_python_built_for_this_checkout_is_kept(checkout: Path) -> None:
    _venv(checkout, _built(checkout))
    plan = _make(checkout, "install")
    assert "Nothing to be done" in plan.stdout and "-m venv" not in plan.stdout


@pytest.mark.parametrize("built_by", [None, "/usr/bin/python3.10 3.10 {root}", "{python} {version} /elsewhere/ebbtide"],
                         ids=["set-up-unfinished", "another-python", "moved-checkout"])
def test_a_venv_of_another_python_or_checkout_is_rebuilt(checkout: Path, built_by: str | None) -> None:
    right = _built(checkout)
    python, version, _ = right.split(" ", 2)
    _venv(checkout, None if built_by is None else built_by.format(root=checkout, python=python, version=version))
    plan = _make(checkout, "install")
    assert plan.returncode == 0, plan.stderr
    assert "rebuilding .venv" in plan.stdout and "rm -rf .venv" in plan.stdout
    assert plan.stdout.index("-m venv .venv") < plan.stdout.index("pip install -q -e .")
    assert (checkout / ".venv" / ".installed").exists(), "make -n removed the .venv"


def test_a_python_too_old_or_missing_stops_make_with_a_message(checkout: Path, tmp_path: Path) -> None:
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\ncase "$*" in *">= (3, 11)"*) echo False;; *) echo 3.10;; esac\n')
    old.chmod(0o755)
    plan = _make(checkout, "demo", f"PYTHON={old}")
    assert plan.returncode != 0 and f"Ebbtide needs Python 3.11 or later; {old} is 3.10" in plan.stderr
    plan = _make(checkout, "test", "PYTHON=/nonexistent/python3")
    assert plan.returncode != 0 and "no Python found (PYTHON='/nonexistent/python3')" in plan.stderr
    assert _make(checkout, "clean", "PYTHON=/nonexistent/python3").returncode == 0


# --------------------------------------------------------------------------- install-components.sh
def _components(tmp_path: Path, tools: list[str], ci: bool, uid: int | None = None) -> str:
    ci_dir = tmp_path / "repo" / ".ci"
    ci_dir.mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "install-components.sh", ci_dir)
    (ci_dir / "install-helm.sh").write_text("exit 1\n")  # helm cannot be installed either
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ["bash", "env", "id", "dirname", *tools]:
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_dir), **({"CI": "true"} if ci else {})}
    done = subprocess.run(["bash", str(ci_dir / "install-components.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0  # never fails make: the tests say what is missing
    return done.stdout + done.stderr


@pytest.mark.parametrize("ci, consequence", [(False, "their tests will skip"),
                                             (True, "their tests will fail (CI=true)")])
def test_components_without_apt_say_so_and_what_the_tests_will_do(tmp_path: Path, ci: bool, consequence: str) -> None:
    out = _components(tmp_path, [], ci)
    assert "could not install prometheus openssl: no apt-get on this machine" in out
    assert consequence in out
    assert f"helm not installed; {consequence.replace('their', 'the chart')}" in out
