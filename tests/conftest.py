"""Shared fixtures: where the real traces live, and how a missing real component is handled.

A test that needs a real component (Prometheus, helm) or the shared traces calls
`require_component` / uses `shared_data`: missing -> skip with a clear message, except under
CI=true, where a missing component is a failure (CI must test against the real thing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("EBBTIDE_SHARED_DATA", REPO.parent / "shared" / "data"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_component(what: str, ok: bool, hint: str) -> None:
    """Skip (or, under CI=true, fail) when a real component is missing."""
    if ok:
        return
    msg = f"{what} is not available: {hint}"
    if in_ci():
        pytest.fail(f"CI=true and {msg}")
    pytest.skip(msg)


def require_binary(name: str, hint: str) -> str:
    path = shutil.which(name)
    require_component(f"`{name}`", path is not None, hint)
    return path  # type: ignore[return-value]


def load_bench(name: str):
    """Import bench/<name>.py (a script, not a package) as the module `bench_<name>`."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).resolve().parent.parent
                                                  / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"bench_{name}"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public traces (../shared/data); skip when absent (never in the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real traces not found at {SHARED_DATA} (set EBBTIDE_SHARED_DATA); they are "
                    f"not shipped with the repo")
    return SHARED_DATA

from support.prometheus import prometheus_factory  # noqa: E402,F401  (real Prometheus fixture)
