"""The container image recipe (charts/image/Dockerfile) and the Grafana dashboard
(charts/ebbtide/dashboards/ebbtide.json) the chart ships. There is no Docker engine here: the
Dockerfile is checked statically, and the image's runtime constraints are simulated locally.

Cases, image:
- Two stages on the same pinned base (python:3.11-slim-bookworm, never `latest`); the package is
  installed (not editable) into a venv in the builder and only that venv is copied to the final stage.
- The final stage runs as a numeric non-root USER equal to the chart's runAsUser/runAsGroup.
- ENTRYPOINT is the console script of pyproject's [project.scripts]; CMD is `run --policy` with the
  path the chart mounts, and the CLI parser accepts it.
- EXPOSE equals the chart's `port` and `ebbtide run`'s default --http-port.
- TMPDIR, HOME and MPLCONFIGDIR point under /tmp in the image and in the chart's pod, where the
  chart mounts an emptyDir (read-only root filesystem otherwise).
- OCI labels are present; the version label equals pyproject's version and the chart's appVersion.
- The C/C++ runtime libraries that the bundled Stan binaries link (ldd, resolved to Debian packages
  with dpkg -S, computed here) are installed in the final stage; [slow] the same for every compiled
  module of the runtime dependency closure.
- The build-context ignore file (Dockerfile.dockerignore) re-includes every path the builder COPYs.
- [slow] Runtime simulation: `ebbtide backtest` (a real Prophet fit) runs as uid 65532 with HOME,
  MPLCONFIGDIR and TMPDIR in a fresh directory, its working directory not writable, and leaves no
  file of that uid anywhere but that directory; matplotlib renders there too.

Cases, dashboard:
- The JSON parses; schemaVersion >= 36; a `datasource` variable of type prometheus; `job`,
  `workload` and `tier` variables from label_values; unique panel ids; every panel and target uses
  `${datasource}`; unique refIds per panel; panels inside the 24-column grid and not overlapping.
- It shows what operators need: observed vs forecast demand (one panel), planned/current replicas,
  bitrate caps, savings, quality guard, trust, tick duration, errors, leader.
- Every expression (variables substituted) passes `promtool check rules` as a recording rule.
- Every metric name in a query or a variable exists in scaler/metrics.py's registry, every label
  in a matcher or `by` clause exists on those metrics (or is a scrape target label).
- [prometheus] Against a real Prometheus backfilled with series recorded by a real
  ControllerMetrics, every panel query and every variable returns data.
- The chart renders the dashboard ConfigMap (label grafana_dashboard: "1", the JSON verbatim, valid
  for Kubernetes 1.33) only with grafanaDashboard.enabled; the default render has none.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import REPO, require_binary, require_component

IMAGE_DIR = REPO / "charts" / "image"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
CHART = REPO / "charts" / "ebbtide"
DASHBOARD = CHART / "dashboards" / "ebbtide.json"
GOLDEN_DEFAULT = REPO / "tests" / "golden" / "chart-default.yaml"
BASE_IMAGE = "python:3.11-slim-bookworm"
#: glibc: part of every Debian image (Essential), never installed explicitly.
BASE_LIBC_PACKAGES = {"libc6"}
#: Labels Prometheus adds to every scraped series (scrape target) plus the histogram bucket label.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}


# =========================================================================== helpers: Dockerfile
@functools.lru_cache(maxsize=1)
def _dockerfile() -> Any:
    from dockerfile_parse import DockerfileParser

    return DockerfileParser(path=str(DOCKERFILE))


def _stages() -> list[list[dict[str, Any]]]:
    """Instructions (dockerfile-parse dicts) per stage, comments dropped; stage 0 starts at the first FROM."""
    stages: list[list[dict[str, Any]]] = []
    for ins in _dockerfile().structure:
        if ins["instruction"] == "FROM":
            stages.append([])
        if stages and ins["instruction"] != "COMMENT":
            stages[-1].append(ins)
    return stages


def _final(instruction: str) -> list[str]:
    return [i["value"] for i in _stages()[-1] if i["instruction"] == instruction]


def _apt_packages(stage: list[dict[str, Any]]) -> set[str]:
    """Package names given to `apt-get install` in the RUN instructions of a stage."""
    out: set[str] = set()
    for ins in stage:
        if ins["instruction"] != "RUN":
            continue
        for cmd in re.split(r"&&|;", ins["value"]):
            words = cmd.split()
            if words[:2] == ["apt-get", "install"]:
                out |= {w for w in words[2:] if not w.startswith("-")}
    return out


def _golden_objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(GOLDEN_DEFAULT.read_text()) if d]


def _golden_container() -> dict[str, Any]:
    dep = next(o for o in _golden_objects() if o["kind"] == "Deployment")
    return dep["spec"]["template"]["spec"]["containers"][0]


def _chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


# =========================================================================== helpers: ldd -> Debian
def _site_packages() -> Path:
    import prophet

    return Path(prophet.__file__).resolve().parent.parent


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _needed_system_libs(files: list[Path]) -> tuple[set[str], set[str]]:
    """(resolved system library paths, unresolved names) that the ELF `files` load, per `ldd`.

    Libraries resolved inside site-packages (auditwheel's `*.libs` bundles) are the wheels' own.
    """
    ldd = require_binary("ldd", "ldd comes with libc-bin (Debian)")
    site = str(_site_packages())
    bundled = {p.name for p in _site_packages().glob("*.libs/*")}
    system: set[str] = set()
    missing: set[str] = set()
    for i in range(0, len(files), 64):  # ldd takes many files; its output names each one
        out = subprocess.run([ldd, *map(str, files[i:i + 64])], capture_output=True, text=True, timeout=120)
        for line in out.stdout.splitlines():
            m = re.match(r"\s+(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$", line)
            if not m:
                continue
            name, where = m.groups()
            if where == "not found":
                if name not in bundled:
                    missing.add(name)
            elif not where.startswith(site):
                system.add(where)
    return system, missing


def _path_spellings(path: str) -> list[str]:
    """`path` as dpkg may have recorded it: merged-/usr systems link /lib to /usr/lib, and a
    package lists whichever of the two (and the symlink or its target) it shipped."""
    out: list[str] = []
    for p in (path, os.path.realpath(path)):
        for q in (p, re.sub(r"^/usr/lib/", "/lib/", p), re.sub(r"^/lib/", "/usr/lib/", p)):
            if q not in out:
                out.append(q)
    return out


@functools.lru_cache(maxsize=None)
def _debian_package(path: str) -> str:
    dpkg = require_binary("dpkg", "dpkg (Debian) maps a library to its package")
    for candidate in _path_spellings(path):
        out = subprocess.run([dpkg, "-S", candidate], capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            return out.stdout.split(":", 1)[0].strip()
    raise AssertionError(f"no Debian package owns {path} (tried {_path_spellings(path)})")


def _required_packages(files: list[Path]) -> set[str]:
    system, missing = _needed_system_libs(files)
    assert not missing, f"libraries that resolve nowhere on this machine: {sorted(missing)}"
    return {_debian_package(p) for p in system}


def _stan_binaries() -> list[Path]:
    root = _site_packages() / "prophet" / "stan_model"
    files = [p for p in root.rglob("*") if p.is_file() and _is_elf(p)]
    files += [p for p in (_site_packages() / "prophet.libs").glob("*") if _is_elf(p)]
    return sorted(files)


def _runtime_distributions() -> set[str]:
    """Names of the distributions `pip install ebbtide` pulls in (the image's venv), ebbtide excluded."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = ["ebbtide"]
    while todo:
        name = todo.pop()
        for spec in importlib.metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            key = canonicalize_name(req.name)
            if key not in seen:
                seen.add(key)
                todo.append(req.name)
    return seen


# =========================================================================== image: static
def test_two_stages_on_the_same_pinned_base() -> None:
    stages = _stages()
    assert len(stages) == 2, "a builder stage and a runtime stage"
    parents = _dockerfile().parent_images
    assert parents == [BASE_IMAGE, BASE_IMAGE], parents
    for image in parents:
        assert ":" in image and not image.endswith(":latest")
    builder, final = stages
    assert re.search(r"\bAS builder$", builder[0]["value"], re.I)
    builder_runs = " ".join(i["value"] for i in builder if i["instruction"] == "RUN")
    assert re.search(r"python -m venv (\S+)", builder_runs)
    venv = re.search(r"python -m venv (\S+)", builder_runs).group(1)  # type: ignore[union-attr]
    assert re.search(rf"{re.escape(venv)}/bin/pip install \.(\s|$)", builder_runs), "non-editable install of ."
    assert "-e ." not in builder_runs and "--editable" not in builder_runs
    copies = [i["value"].split() for i in final if i["instruction"] == "COPY"]
    assert copies == [["--from=builder", venv, venv]], "the final stage gets the venv and nothing else"
    assert _dockerfile().envs["PATH"].startswith(f"{venv}/bin:"), "the venv's console scripts come first on PATH"


def test_final_stage_runs_as_numeric_non_root_user_of_the_chart() -> None:
    users = _final("USER")
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and gid.isdigit(), f"USER must be numeric (runAsNonRoot checks it): {users[0]}"
    assert int(uid) != 0 and int(gid) != 0
    pod = _chart_values()["podSecurityContext"]
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"]) == (65532, 65532)
    # USER comes after every RUN: nothing runs as root after the switch, nothing is left to do as root.
    final = [i["instruction"] for i in _stages()[-1]]
    assert "RUN" not in final[final.index("USER"):]


def test_entrypoint_is_the_console_script_and_cmd_the_charts_args() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    (entry,) = [json.loads(v) for v in _final("ENTRYPOINT")]
    (cmd,) = [json.loads(v) for v in _final("CMD")]  # exec form: JSON arrays
    assert entry == ["ebbtide"] and "ebbtide" in scripts
    container = _golden_container()
    assert container["command"] == entry
    assert cmd == container["args"][:3] == ["run", "--policy", "/etc/ebbtide/policy/policy.yaml"]
    from scaler.cli import build_parser

    args = build_parser().parse_args(cmd)
    assert args.command == "run" and args.policy == cmd[2]


def test_exposed_port_matches_chart_and_controller_default() -> None:
    from scaler.cli.run import parse_settings

    exposed = [int(p.split("/")[0]) for v in _final("EXPOSE") for p in v.split()]
    values = _chart_values()
    default_port = parse_settings(["run", "--policy", "p.yaml"], env={}).http_port
    assert exposed == [values["port"]] == [default_port] == [8080]
    assert _golden_container()["ports"][0]["containerPort"] == values["port"]


def test_runtime_environment_writes_only_under_tmp() -> None:
    envs = _dockerfile().envs
    for name in ("TMPDIR", "HOME", "MPLCONFIGDIR"):
        assert envs[name] == "/tmp" or envs[name].startswith("/tmp/"), f"{name}={envs[name]}"
    assert envs["TMPDIR"] == "/tmp"
    assert envs.get("PYTHONDONTWRITEBYTECODE") == "1"  # read-only root FS: no __pycache__ attempts
    container = _golden_container()
    pod_env = {e["name"]: e.get("value") for e in container["env"]}
    assert {k: pod_env[k] for k in ("TMPDIR", "HOME", "MPLCONFIGDIR")} == \
        {k: envs[k] for k in ("TMPDIR", "HOME", "MPLCONFIGDIR")}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "tmp"] == ["/tmp"]


def test_oci_labels_and_version() -> None:
    labels = _dockerfile().labels
    for key in ("title", "description", "source", "licenses", "version", "revision"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"missing OCI label {key}"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert labels["org.opencontainers.image.version"] == version == chart["appVersion"]
    assert labels["org.opencontainers.image.licenses"] == chart["annotations"]["artifacthub.io/license"]


def test_stan_binaries_runtime_libraries_are_installed() -> None:
    binaries = _stan_binaries()
    names = {p.name for p in binaries}
    assert {"prophet_model.bin", "stansummary"} <= names, f"bundled Stan binaries not found: {sorted(names)}"
    needed = _required_packages(binaries) - BASE_LIBC_PACKAGES
    assert "libstdc++6" in needed, f"expected the C++ runtime among {needed}"  # the check must have teeth
    installed = _apt_packages(_stages()[-1])
    assert needed <= installed, f"final stage lacks {sorted(needed - installed)} (needed by the Stan binaries)"


@pytest.mark.slow
def test_every_compiled_runtime_module_has_its_libraries() -> None:
    from packaging.utils import canonicalize_name

    dists = _runtime_distributions()
    assert {"prophet", "numpy", "pandas", "cmdstanpy"} <= dists
    files: list[Path] = []
    for dist in importlib.metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in dists:
            continue
        for f in dist.files or []:
            path = Path(str(dist.locate_file(f)))
            if (".so" in path.name or path.suffix == ".bin") and _is_elf(path):
                files.append(path)
    assert len(files) > 50
    needed = _required_packages(sorted(set(files))) - BASE_LIBC_PACKAGES
    installed = _apt_packages(_stages()[-1])
    assert needed <= installed, f"final stage lacks {sorted(needed - installed)}"


def test_build_context_ignore_file_keeps_what_the_builder_copies() -> None:
    ignore = [ln.strip() for ln in (IMAGE_DIR / "Dockerfile.dockerignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert ignore[0] == "*", "allow-list: ignore everything, then re-include"
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    sources = set()
    for ins in _stages()[0]:
        if ins["instruction"] == "COPY" and "--from" not in ins["value"]:
            sources |= {s.rstrip("/") for s in ins["value"].split()[:-1]}
    assert sources == allowed, f"COPY sources {sorted(sources)} vs re-included {sorted(allowed)}"
    for s in sources:
        assert (REPO / s).exists(), f"COPY source {s} does not exist in the repository"


# =========================================================================== image: runtime simulation
IMAGE_UID = 65532

#: Run as root inside a private mount namespace (`unshare --mount`): make /tmp read-only, then the
#: simulated emptyDir ($1) writable again as its own bind mount, hide the other world-writable
#: directories behind read-only tmpfs, and drop to the image's uid. Only the emptyDir is writable.
SANDBOX = r"""
set -eu
sim_tmp=$1; workdir=$2; shift 2
mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp
mount --bind "$sim_tmp" "$sim_tmp" && mount -o remount,bind,rw "$sim_tmp"
for d in /var/tmp /run/lock /dev/shm; do
  if [ -d "$d" ]; then mount -t tmpfs -o ro,size=1m tmpfs "$d"; fi
done
cd "$workdir"
exec setpriv --reuid=65532 --regid=65532 --clear-groups "$@"
"""


def _write_trace(path: Path, start: datetime, hours: int) -> None:
    """Hourly demand with a daily cycle (viewers, arbitrary units)."""
    rows = ["ts,value"]
    for h in range(hours):
        t = start + timedelta(hours=h)
        rows.append(f"{t.isoformat()},{1000 + 400 * math.sin(2 * math.pi * h / 24):.3f}")
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def image_sandbox() -> Iterator[tuple[Path, Path, Any]]:
    """(inputs dir, simulated /tmp emptyDir, run(argv, env_overrides) -> CompletedProcess)."""
    tools = [shutil.which(t) for t in ("unshare", "setpriv", "mount")]
    require_component("a private mount namespace", os.geteuid() == 0 and all(tools),
                      "run as root with util-linux (unshare, setpriv, mount) to simulate the image")
    root = Path(tempfile.mkdtemp(prefix="ebbtide-image-sim-"))
    inputs, sim_tmp = root / "inputs", root / "tmp"
    inputs.mkdir()
    sim_tmp.mkdir()
    os.chmod(root, 0o755)
    os.chown(sim_tmp, IMAGE_UID, IMAGE_UID)

    def run(argv: list[str], **env_overrides: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TMPDIR": str(sim_tmp),
               "HOME": str(sim_tmp), "MPLCONFIGDIR": str(sim_tmp / "matplotlib"), "PYTHONDONTWRITEBYTECODE": "1",
               **env_overrides}
        return subprocess.run([tools[0], "--mount", "--propagation", "private", "sh", "-c", SANDBOX, "sandbox",
                               str(sim_tmp), str(inputs), *argv], capture_output=True, text=True, env=env, timeout=600)

    probe = run([sys.executable, "-c", "import os; open('/tmp/probe', 'w')"])
    setup_failed = any(probe.stderr.startswith(tool) for tool in ("unshare:", "mount:", "setpriv:"))
    require_component("a private mount namespace", not setup_failed, f"refused here: {probe.stderr.strip()[:200]}")
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr, "the sandbox must refuse /tmp writes"
    try:
        yield inputs, sim_tmp, run
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_prophet_needs_nothing_writable_outside_tmpdir(image_sandbox: tuple[Path, Path, Any]) -> None:
    inputs, sim_tmp, run = image_sandbox
    _write_trace(inputs / "trace.csv", datetime(2024, 11, 8, tzinfo=timezone.utc), 5 * 24)
    ebbtide = str(Path(sys.executable).parent / "ebbtide")
    out_csv = sim_tmp / "forecast.csv"
    backtest = [ebbtide, "backtest", "--csv", str(inputs / "trace.csv"), "--cutoff", "2024-11-12T00:00:00Z",
                "--horizon", "12h", "--forecast-out", str(out_csv), "--json"]

    done = run(backtest)
    assert done.returncode == 0, f"backtest failed as uid {IMAGE_UID} with only TMPDIR writable:\n{done.stderr[-3000:]}"
    assert json.loads(done.stdout), "backtest printed no JSON report"
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "ts,yhat,yhat_lower,yhat_upper" and len(lines) == 1 + 12
    assert out_csv.stat().st_uid == IMAGE_UID
    assert sorted(p.name for p in inputs.iterdir()) == ["trace.csv"]

    # matplotlib (reports) keeps its cache in MPLCONFIGDIR and renders there.
    png = sim_tmp / "p.png"
    plot = run([sys.executable, "-c", "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
                f"plt.plot([1, 2]); plt.savefig({str(png)!r})"])
    assert plot.returncode == 0 and png.stat().st_size > 0, plot.stderr[-2000:]
    assert "not a writable directory" not in plot.stderr

    # The sandbox bites: with TMPDIR pointing at the read-only inputs, the same run fails.
    (sim_tmp / "forecast.csv").unlink()
    refused = run(backtest, TMPDIR=str(inputs))
    assert refused.returncode != 0 and not out_csv.exists()
    assert "temporary directory" in refused.stderr or "Read-only" in refused.stderr or \
        "Permission denied" in refused.stderr, refused.stderr[-2000:]


# =========================================================================== helpers: dashboard
@functools.lru_cache(maxsize=1)
def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict[str, Any]]:
    out = []
    for p in _dashboard()["panels"]:
        out.append(p)
        out += p.get("panels", [])  # collapsed rows keep their panels inside
    return out


def _query_panels() -> list[dict[str, Any]]:
    return [p for p in _panels() if p["type"] != "row"]


def _exprs() -> list[tuple[str, str]]:
    """(where, expr) of every panel target."""
    return [(f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"]) for p in _query_panels() for t in p["targets"]]


def _variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in _dashboard()["templating"]["list"]}


#: Grafana variables -> a value PromQL accepts (what Grafana interpolates before sending).
SUBSTITUTIONS = {"$__rate_interval": "2m", "$__range": "30m", "$__interval": "1m",
                 "$job": "ebbtide", "$workload": ".*", "$tier": ".*"}


def _substitute(expr: str) -> str:
    for var in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(var, SUBSTITUTIONS[var])
    assert "$" not in expr, f"unknown variable left in {expr}"
    return expr


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>[a-zA-Z_]\w*)\)$")


def _variable_queries() -> list[tuple[str, str, str]]:
    """(variable, selector, label) of each label_values query variable."""
    out = []
    for name, v in _variables().items():
        if v["type"] != "query":
            continue
        m = _LABEL_VALUES.match(v["query"]["query"] if isinstance(v["query"], dict) else v["query"])
        assert m and m["selector"], f"variable {name}: expected label_values(<selector>, <label>)"
        out.append((name, m["selector"], m["label"]))
    return out


def _selectors(expr: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    """([(metric name, matcher labels)], grouping labels of aggregations and vector matching)."""
    import promql_parser

    tree = promql_parser.parse(_substitute(expr))
    selectors: list[tuple[str, set[str]]] = []
    grouping: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {m.name for m in node.matchers.matchers if m.name != "__name__"}
            selectors.append((node.name, labels))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            if node.modifier.type == promql_parser.AggModifierType.By:
                grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                grouping.update(node.modifier.matching.labels)

    promql_parser.walk(tree, visit)
    return selectors, grouping


@functools.lru_cache(maxsize=1)
def _registered() -> dict[str, set[str]]:
    """Sample name -> label names, for every series name scaler/metrics.py can export.

    Taken from the registry's own description of each family (counter -> `_total`, histogram ->
    `_bucket` with `le`, `_sum`, `_count`), after recording one plan so that labelled families
    have a child (and so their label names appear in the samples).
    """
    try:
        import scaler.metrics as metrics_mod
    except ModuleNotFoundError:  # pragma: no cover - the controller lands with scaler/metrics.py
        pytest.skip("scaler/metrics.py does not exist yet: cannot check the dashboard's metric names")
    metrics = metrics_mod.ControllerMetrics()
    _record_tick(metrics, datetime(2024, 11, 12, tzinfo=timezone.utc), 0)
    names: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            names.setdefault(s.name, set()).update(s.labels)
    return names


# =========================================================================== dashboard: a controller
WORKLOADS = ("web", "edge")
TIERS = ("core", "silent", "edge")


def _record_tick(metrics: Any, now: datetime, i: int) -> None:
    """One tick of a controller as the loop records it: plans for two workloads, caps, timing."""
    from scaler.plans import Plan, PlannerMemory, TierCap

    for k, w in enumerate(WORKLOADS):
        target = 20 - (i % 10) - k
        caps = tuple(TierCap(tier=t, rung="720p" if t == "core" else "480p", max_kbps=3000.0 - 1000 * j - 10 * i)
                     for j, t in enumerate(TIERS))
        plan = Plan(workload=w, now=now, current_replicas=target + 1, target_replicas=target, apply_via="scale",
                    steps=(), memory=PlannerMemory(), forecast_trusted=(i + k) % 7 != 0,
                    guard_active=(i // 5) % 2 == 1, data_ok=True, bitrate=caps)
        metrics.record_plan(plan, max_replicas=30, tick=timedelta(minutes=1),
                            forecast_now=(500.0 + 10 * i, 650.0 + 10 * i), wrote=i % 3 == 0,
                            observed_demand=480.0 + 12 * i)
    metrics.tick_duration.observe(0.2 + 0.05 * (i % 4))
    metrics.last_tick.set(now.timestamp())
    metrics.up.set(1)
    metrics.leader.set(1)
    if i % 4 == 0:
        metrics.prometheus_error()
    if i % 9 == 0:
        metrics.policy_reload_error()


# =========================================================================== dashboard: static
def test_dashboard_structure() -> None:
    d = _dashboard()
    assert d["schemaVersion"] >= 36 and d["uid"] and d["title"]
    v = _variables()
    assert v["datasource"]["type"] == "datasource" and v["datasource"]["query"] == "prometheus"
    assert {name for name, _, _ in _variable_queries()} == {"job", "workload", "tier"}
    assert {(n, lbl) for n, _, lbl in _variable_queries()} == {("job", "job"), ("workload", "workload"),
                                                                ("tier", "tier")}
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    ds = {"type": "prometheus", "uid": "${datasource}"}
    for p in _query_panels():
        assert p["datasource"] == ds, f"panel {p['id']} {p['title']!r}: datasource {p.get('datasource')}"
        assert p["targets"], f"panel {p['id']} has no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"panel {p['id']}: duplicate refIds"
        assert all(t["datasource"] == ds and t["expr"].strip() for t in p["targets"])
    for name, var in v.items():
        if var["type"] == "query":
            assert var["datasource"] == ds, f"variable {name}"
    cells: dict[tuple[int, int], int] = {}
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, f"panel {p['id']} outside the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {p['id']} overlap at {(x, y)}"
                cells[(x, y)] = p["id"]


def test_dashboard_shows_what_operators_need() -> None:
    used = {name for _, e in _exprs() for name, _ in _selectors(e)[0]}
    needed = {"ebbtide_forecast_demand", "ebbtide_observed_demand", "ebbtide_planned_replicas", "ebbtide_current_replicas",
              "ebbtide_bitrate_cap_kbps", "ebbtide_estimated_savings_replica_hours_total",
              "ebbtide_quality_guard_active", "ebbtide_forecast_trusted", "ebbtide_tick_duration_seconds_bucket",
              "ebbtide_errors_total", "ebbtide_leader", "ebbtide_up", "ebbtide_prometheus_errors_total",
              "ebbtide_policy_reload_errors_total", "ebbtide_last_plan_timestamp_seconds", "ebbtide_ticks_skipped_total"}
    assert needed <= used, f"no panel shows {sorted(needed - used)}"
    quantiles = {m for _, e in _exprs() for m in re.findall(r'quantile="(\w+)"', e)}
    assert quantiles == {"yhat", "upper"}
    # Observed and forecast demand on one panel (same unit, same axis): under-coverage is visible.
    demand_panels = [p for p in _query_panels()
                     if {"ebbtide_observed_demand", "ebbtide_forecast_demand"}
                     <= {n for t in p["targets"] for n, _ in _selectors(t["expr"])[0]}]
    assert len(demand_panels) == 1, "one panel must show observed vs forecast demand"


def test_dashboard_expressions_pass_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "install Prometheus (bash .ci/install-components.sh)")
    exprs = _exprs()
    rules = [{"record": f"ebbtide:dashboard_check:{i}", "expr": _substitute(e)} for i, (_, e) in enumerate(exprs)]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(rules)} rules found" in out.stdout
    # The check has teeth: a broken expression is refused.
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [
        {"record": "x:y", "expr": "sum by (workload (ebbtide_up)"}]}]}))
    bad = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0


def test_dashboard_uses_only_registered_metrics_and_labels() -> None:
    registered = _registered()
    problems = []
    queries = list(_exprs()) + [(f"variable {n}", s) for n, s, _ in _variable_queries()]
    for where, expr in queries:
        selectors, grouping = _selectors(expr)
        assert selectors, f"{where}: no metric selector in {expr}"
        available: set[str] = set(TARGET_LABELS)
        for name, labels in selectors:
            if name not in registered:
                problems.append(f"{where}: metric {name} is not exported by scaler/metrics.py")
                continue
            available |= registered[name]
            unknown = labels - registered[name] - TARGET_LABELS
            if unknown:
                problems.append(f"{where}: {name} has no label(s) {sorted(unknown)}")
        if grouping - available:
            problems.append(f"{where}: grouping by unknown label(s) {sorted(grouping - available)}")
    for name, selector, label in _variable_queries():
        (metric, _), = _selectors(selector)[0]
        if metric in registered and label not in registered[metric] | TARGET_LABELS:
            problems.append(f"variable {name}: {metric} has no label {label}")
    assert not problems, "\n".join(problems)


# =========================================================================== dashboard: real Prometheus
def _controller_history(end: datetime, ticks: int) -> list[Any]:
    """MetricSeries of a real ControllerMetrics recorded over `ticks` one-minute ticks up to `end`."""
    from prometheus_client import CollectorRegistry

    from scaler.metrics import ControllerMetrics
    from support.prometheus import MetricSeries

    metrics = ControllerMetrics(CollectorRegistry())
    points: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, list[float], list[float]]] = {}
    for i in range(ticks):
        now = end - timedelta(minutes=ticks - 1 - i)
        _record_tick(metrics, now, i)
        for family in metrics.registry.collect():
            for s in family.samples:
                if s.name.endswith("_created"):
                    continue
                kind = "counter" if family.type == "counter" and s.name.endswith("_total") else "gauge"
                labels = tuple(sorted({**s.labels, "job": "ebbtide", "instance": "10.0.0.7:8080"}.items()))
                entry = points.setdefault((s.name, labels), (kind, [], []))
                entry[1].append(now.timestamp())
                entry[2].append(float(s.value))
    return [MetricSeries(name, dict(labels), ts, vs, kind=kind) for (name, labels), (kind, ts, vs) in points.items()]


def _api(url: str, path: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=30) as resp:  # noqa: S310 (loopback)
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]


@pytest.mark.prometheus
def test_dashboard_queries_return_data_from_real_prometheus(prometheus_factory: Any) -> None:
    end = datetime(2024, 11, 12, 12, 0, tzinfo=timezone.utc)
    server = prometheus_factory(_controller_history(end, ticks=60), name="dashboard")
    at = str(end.timestamp())
    empty = []
    for where, expr in _exprs():
        expr = _substitute(expr).replace("time()", at)  # "seconds since the last tick" at the data's end
        result = _api(server.url, "/api/v1/query", query=expr, time=at)["result"]
        values = [float(r["value"][1]) for r in result]
        if not values or not all(math.isfinite(v) for v in values):
            empty.append(f"{where}: {expr} -> {result}")
    assert not empty, "queries without data:\n" + "\n".join(empty)
    start = str((end - timedelta(hours=2)).timestamp())
    for name, selector, label in _variable_queries():
        got = _api(server.url, f"/api/v1/label/{label}/values", **{"match[]": _substitute(selector)},
                   start=start, end=at)
        expected = {"job": {"ebbtide"}, "workload": set(WORKLOADS), "tier": set(TIERS)}[name]
        assert set(got) == expected, f"variable {name}: {got}"
    # Hand-computed: the savings stat over the last 30 min sums (30 - planned) x 1/60 h per tick and workload.
    stat = next(e for _, e in _exprs() if "increase(ebbtide_estimated_savings" in e and "$__range" in e)
    got = float(_api(server.url, "/api/v1/query", query=_substitute(stat), time=at)["result"][0]["value"][1])
    per_tick = [sum(30 - (20 - (i % 10) - k) for k in range(len(WORKLOADS))) / 60 for i in range(60)]
    # Prometheus 2.x ranges include both ends: the 31 samples of the last 30 min give exactly the last
    # 30 ticks' savings (3.x drops the first sample and extrapolates: ~1% off).
    assert got == pytest.approx(sum(per_tick[-30:]), rel=0.02)


# =========================================================================== chart
@pytest.fixture(scope="module")
def helm_binary() -> str:
    from test_chart import _helm_path

    path = _helm_path()
    require_component("`helm`", path is not None, "run `bash .ci/install-helm.sh`")
    return path  # type: ignore[return-value]


def _template(helm: str, tmp: Path, *args: str) -> list[dict[str, Any]]:
    env = {**os.environ, "HELM_CACHE_HOME": str(tmp / "c"), "HELM_CONFIG_HOME": str(tmp / "f"),
           "HELM_DATA_HOME": str(tmp / "d")}
    out = subprocess.run([helm, "template", "ebbtide", str(CHART), "--namespace", "ebbtide-system",
                          "--kube-version", "1.33.0", *args], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _dashboard_configmaps(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == "ConfigMap" and "ebbtide.json" in o.get("data", {})]


@pytest.mark.xdist_group("helm-chart")  # with tests/test_chart.py: one first-time helm install
def test_chart_ships_dashboard_only_when_enabled(helm_binary: str, tmp_path: Path) -> None:
    import kubernetes_validate

    assert not _dashboard_configmaps(_template(helm_binary, tmp_path))
    objs = _template(helm_binary, tmp_path, "--set", "grafanaDashboard.enabled=true,grafanaDashboard.namespace=monitoring,"
                     "grafanaDashboard.annotations.grafana_folder=Ebbtide")
    (cm,) = _dashboard_configmaps(objs)
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Ebbtide"}
    assert json.loads(cm["data"]["ebbtide.json"]) == _dashboard()
    kubernetes_validate.validate(cm, "1.33.0", strict=True)
    out = _template(helm_binary, tmp_path, "--set", "grafanaDashboard.enabled=true")
    assert _dashboard_configmaps(out)[0]["metadata"]["namespace"] == "ebbtide-system"
