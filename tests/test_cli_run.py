"""`ebbtide run`'s effective settings (scaler.cli.run.parse_settings): flags, then EBBTIDE_*
variables, then defaults; and one `--once` tick on each fitting executor. (The chart's rendered
args and env go through the same settings function in tests/test_chart.py.)

Cases:
- defaults with an empty environment (port 8080, INFO, leader election off, Lease `ebbtide`/15 s/5 s,
  local executor with the executor's own worker count, 8 queries in flight, no state ConfigMap);
- every flag has an EBBTIDE_<FLAG> fallback, read when the flag is absent;
- a flag wins over its variable; `--no-leader-elect` turns an inherited `true` off; empty = unset;
- log level in any case (`info`, `Warn`); durations parsed (`1m30s`); executor in any case;
- errors name the flag or the variable: bad switch, port, log level, duration, non-whole lease
  duration, retry period not shorter than the lease, missing policy, --at without a zone, unknown
  executor, --scheduler without the dask executor (flag or variable), dask without --scheduler,
  fit workers or query concurrency not a whole number >= 1;
- `ebbtide run` exits 2 with `error: EBBTIDE_LOG_LEVEL: ...` (no traceback), and with the
  scheduler's flag named for `--executor dask` alone;
- [slow] `ebbtide run --once` with the real model on a fake Prometheus (two workloads, 10 days
  hourly, seeded) and a fake cluster: the default path, `--executor inline` and `--executor local`
  (2 spawned workers) write identical audit lines (forecast figures in the reasons included), and
  their targets, trust and reasons equal a tick of the sequential LiveForecasterCache on the same
  data; every workload was fitted and trusted, and steps down by the 20 % limit (90 -> 72, 40 -> 32).
"""

from __future__ import annotations

import io
import json
import socket
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from policies.errors import EbbtideError
from scaler.cli.run import ENV_VARS, parse_settings

BASE = ["run", "--policy", "p.yaml"]


def test_defaults_with_an_empty_environment():
    s = parse_settings(BASE, {})
    assert (s.policy, s.http_port, s.http_host, s.log_level, s.audit_log) == ("p.yaml", 8080, "0.0.0.0", "INFO", "-")
    assert (s.leader_elect, s.lease_name, s.lease_duration_s, s.lease_retry_period_s) == (False, "ebbtide", 15, 5.0)
    assert (s.once, s.dry_run, s.prometheus_url, s.at) == (False, False, None, None)
    assert s.identity == socket.gethostname()
    assert (s.executor, s.scheduler, s.fit_workers, s.query_concurrency) == ("local", None, None, 8)
    assert s.state_configmap is None  # planner memory kept in the process only, as before


def test_every_flag_falls_back_to_its_variable():
    env = {"EBBTIDE_POLICY": "/etc/p.yaml", "EBBTIDE_ONCE": "1", "EBBTIDE_DRY_RUN": "yes",
           "EBBTIDE_KUBECONFIG": "/k", "EBBTIDE_CONTEXT": "kind-x", "EBBTIDE_PROMETHEUS_URL": "http://p:9090",
           "EBBTIDE_HTTP_PORT": "9091", "EBBTIDE_HTTP_HOST": "127.0.0.1", "EBBTIDE_AUDIT_LOG": "/tmp/a.jsonl",
           "EBBTIDE_LEADER_ELECT": "TRUE", "EBBTIDE_LEASE_NAME": "lead", "EBBTIDE_LEASE_NAMESPACE": "ops",
           "EBBTIDE_LEASE_DURATION": "1m30s", "EBBTIDE_LEASE_RETRY_PERIOD": "2500ms",
           "EBBTIDE_IDENTITY": "pod-7", "EBBTIDE_AT": "2026-11-11T20:00:00+08:00", "EBBTIDE_LOG_LEVEL": "debug",
           "EBBTIDE_EXECUTOR": "Dask", "EBBTIDE_SCHEDULER": "tcp://dask:8786", "EBBTIDE_FIT_WORKERS": "3",
           "EBBTIDE_QUERY_CONCURRENCY": "16", "EBBTIDE_STATE_CONFIGMAP": "ebbtide-state",
           "EBBTIDE_STATE_NAMESPACE": "ops"}
    assert set(env) == set(ENV_VARS.values())  # the test covers every variable
    s = parse_settings(["run"], env)
    assert (s.policy, s.once, s.dry_run, s.kubeconfig, s.context) == ("/etc/p.yaml", True, True, "/k", "kind-x")
    assert (s.prometheus_url, s.http_port, s.http_host, s.audit_log) == \
        ("http://p:9090", 9091, "127.0.0.1", "/tmp/a.jsonl")
    assert (s.leader_elect, s.lease_name, s.lease_namespace) == (True, "lead", "ops")
    assert (s.lease_duration_s, s.lease_retry_period_s, s.identity) == (90, 2.5, "pod-7")
    assert s.at == datetime(2026, 11, 11, 12, 0, tzinfo=timezone.utc) and s.log_level == "DEBUG"
    assert (s.executor, s.scheduler, s.fit_workers, s.query_concurrency) == ("dask", "tcp://dask:8786", 3, 16)
    assert (s.state_configmap, s.state_namespace) == ("ebbtide-state", "ops")


def test_a_flag_wins_over_its_variable():
    env = {"EBBTIDE_LEADER_ELECT": "true", "EBBTIDE_HTTP_PORT": "9091", "EBBTIDE_LOG_LEVEL": "error",
           "EBBTIDE_LEASE_NAME": "from-env", "EBBTIDE_DRY_RUN": ""}
    s = parse_settings([*BASE, "--no-leader-elect", "--http-port", "0", "--log-level", "Warn",
                        "--lease-name", "from-flag"], env)
    assert (s.leader_elect, s.http_port, s.log_level, s.lease_name, s.dry_run) == \
        (False, 0, "WARNING", "from-flag", False)
    env = {"EBBTIDE_EXECUTOR": "dask", "EBBTIDE_SCHEDULER": "tcp://dask:8786", "EBBTIDE_QUERY_CONCURRENCY": "2"}
    s = parse_settings([*BASE, "--executor", "inline", "--scheduler", "", "--query-concurrency", "1"],
                       {"EBBTIDE_EXECUTOR": "dask", "EBBTIDE_QUERY_CONCURRENCY": "2"})
    assert (s.executor, s.scheduler, s.query_concurrency) == ("inline", None, 1)
    s = parse_settings([*BASE, "--scheduler", "tls://other:8786", "--fit-workers", "1"], env)
    assert (s.executor, s.scheduler, s.fit_workers) == ("dask", "tls://other:8786", 1)


@pytest.mark.parametrize("argv, env, message", [
    (BASE, {"EBBTIDE_LEADER_ELECT": "enabled"}, "EBBTIDE_LEADER_ELECT: 'enabled' is not true or false"),
    (BASE, {"EBBTIDE_HTTP_PORT": "http"}, "EBBTIDE_HTTP_PORT: 'http' is not a port number"),
    ([*BASE, "--http-port", "70000"], {}, "--http-port: 70000 is not a port number"),
    (BASE, {"EBBTIDE_LOG_LEVEL": "verbose"}, "EBBTIDE_LOG_LEVEL: 'verbose' is not a log level"),
    (BASE, {"EBBTIDE_LEASE_DURATION": "15 secs"}, "EBBTIDE_LEASE_DURATION: not a duration"),
    (BASE, {"EBBTIDE_LEASE_DURATION": "1500ms"}, "EBBTIDE_LEASE_DURATION: the Lease's duration is whole seconds"),
    ([*BASE, "--leader-elect", "--lease-retry-period", "15s"], {},
     "--lease-retry-period: 15s must be above 0 and shorter than the lease duration (15s)"),
    (["run"], {}, "--policy (or EBBTIDE_POLICY) is required"),
    ([*BASE, "--at", "2026-11-11T12:00:00"], {}, "--at: time has no zone"),
    ([*BASE, "--executor", "ray"], {}, "--executor: 'ray' is not an executor (one of local, dask, inline)"),
    (BASE, {"EBBTIDE_EXECUTOR": "threads"}, "EBBTIDE_EXECUTOR: 'threads' is not an executor"),
    ([*BASE, "--scheduler", "tcp://d:8786"], {},
     "--scheduler: a Dask scheduler address is only used with --executor dask (the executor is 'local', the default)"),
    ([*BASE, "--executor", "inline"], {"EBBTIDE_SCHEDULER": "tcp://d:8786"},
     "EBBTIDE_SCHEDULER: a Dask scheduler address is only used with --executor dask (the executor is 'inline', "
     "from --executor)"),
    (BASE, {"EBBTIDE_EXECUTOR": "dask"}, "EBBTIDE_EXECUTOR: the dask executor needs --scheduler (or EBBTIDE_SCHEDULER)"),
    ([*BASE, "--executor", "dask", "--scheduler", "tcp://d 8786"], {}, "--scheduler: 'tcp://d 8786' is not a scheduler"),
    ([*BASE, "--fit-workers", "0"], {}, "--fit-workers: must be >= 1 (fit worker processes), got 0"),
    (BASE, {"EBBTIDE_FIT_WORKERS": "two"}, "EBBTIDE_FIT_WORKERS: 'two' is not a whole number"),
    ([*BASE, "--query-concurrency", "-3"], {}, "--query-concurrency: must be >= 1 (Prometheus queries in flight), got -3"),
    (BASE, {"EBBTIDE_QUERY_CONCURRENCY": "8.5"}, "EBBTIDE_QUERY_CONCURRENCY: '8.5' is not a whole number"),
])
def test_errors_name_the_flag_or_the_variable(argv, env, message):
    with pytest.raises(EbbtideError) as exc:
        parse_settings(argv, env)
    assert message in str(exc.value)


def test_run_exits_2_with_the_variable_named(monkeypatch, capsys):
    from scaler.cli import main

    monkeypatch.setenv("EBBTIDE_LOG_LEVEL", "loud")
    assert main([*BASE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: EBBTIDE_LOG_LEVEL: 'loud' is not a log level") and "Traceback" not in err


def test_run_exits_2_naming_the_scheduler_flag_for_dask_alone(monkeypatch, capsys):
    from scaler.cli import main

    monkeypatch.delenv("EBBTIDE_SCHEDULER", raising=False)
    assert main([*BASE, "--executor", "dask"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --executor: the dask executor needs --scheduler") and "Traceback" not in err


# --------------------------------------------------------------------------- one tick per executor
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
EXECUTOR_POLICY = """\
apiVersion: ebbtide/v1
dry_run: true
prometheus: {url: 'http://prometheus.invalid:9090', max_staleness: 2h}
workloads:
  - name: edge
    target: {kind: Deployment, namespace: live, name: edge}
    demand: {query: 'sum(edge_viewers)', per_replica: 100}
    pod_startup: 60s
    scaling: {min_replicas: 2, max_replicas: 200, max_scale_down_fraction: 0.2, scale_down_cooldown: 0s,
               stabilization: 0s}
    forecast: &fc {lookback: 10d, step: 1h, horizon: 6h, refit_interval: 6h, min_history: 7d, trust_bound: 0.5}
    quality:
      - {name: rebuffering, query: 'max(rebuffer_ratio)', threshold: 0.02}
  - name: api
    target: {kind: Deployment, namespace: shop, name: api}
    demand: {query: 'sum(api_rps)', per_replica: 400}
    scaling: {min_replicas: 2, max_replicas: 100, max_scale_down_fraction: 0.2, scale_down_cooldown: 0s,
               stabilization: 0s}
    forecast: *fc
"""


def executor_source():
    """10 days hourly up to NOW: a daily cycle with 3 % seeded noise, and a healthy SLI."""
    from controller_fakes import series

    from forecaster.history import StaticMetricsSource

    n = 10 * 24 + 1
    hours = np.arange(n - 1, -1, -1, dtype=float)  # hours before NOW
    rng = np.random.default_rng(7)
    shape = (1 + 0.4 * np.sin(2 * np.pi * (-hours % 24) / 24)) * (1 + rng.normal(0, 0.03, n))
    step = timedelta(hours=1)
    source = StaticMetricsSource({"sum(edge_viewers)": series(4000 * shape, end=NOW, step=step),
                                  "sum(api_rps)": series(9000 * shape, end=NOW, step=step),
                                  "max(rebuffer_ratio)": series([0.004] * n, end=NOW, step=step)})
    source.display_url = "static (test)"  # what `ebbtide run` logs for a PrometheusSource
    return source


CURRENT = {"edge": 90, "api": 40}


def run_once(monkeypatch, tmp_path, *extra: str) -> list[dict]:
    from controller_fakes import FakeCluster

    import scaler.cli.run as run_module
    import scaler.loop
    from scaler.cli import main

    monkeypatch.setattr(run_module, "_cluster", lambda settings: FakeCluster(dict(CURRENT)))
    monkeypatch.setattr(scaler.loop, "prometheus_source", lambda settings, url=None: executor_source())
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(EXECUTOR_POLICY)
    audit = tmp_path / f"audit{len(list(tmp_path.glob('audit*')))}.jsonl"
    assert main(["run", "--policy", str(policy), "--once", "--at", NOW.isoformat(), "--audit-log", str(audit),
                 *extra]) == 0
    return [json.loads(x) for x in audit.read_text().splitlines()]


@pytest.mark.slow
def test_run_once_plans_the_same_on_every_executor(monkeypatch, tmp_path):
    from controller_fakes import Clock, FakeCluster

    from policies.loading import load_policy_text
    from scaler.controller import AuditLog, Controller, LiveForecasterCache

    default = run_once(monkeypatch, tmp_path)
    inline = run_once(monkeypatch, tmp_path, "--executor", "inline")
    local = run_once(monkeypatch, tmp_path, "--executor", "local", "--fit-workers", "2", "--query-concurrency", "1")
    assert [x["workload"] for x in default] == ["edge", "api"]
    assert inline == default and local == default  # identical plans, reasons, forecasts and inputs digest

    buf = io.StringIO()
    sequential = Controller(Clock(NOW), executor_source(), FakeCluster(dict(CURRENT)), LiveForecasterCache(),
                            audit=AuditLog(buf))
    report = sequential.tick(load_policy_text(EXECUTOR_POLICY), dry_run=True, fit=True)
    assert [r.ok and r.trusted for r in report.refits] == [True, True]  # both fitted and trusted
    reference = [json.loads(x) for x in buf.getvalue().splitlines()]
    keys = ("workload", "current_replicas", "target_replicas", "forecast_trusted", "reasons")
    assert [[x[k] for k in keys] for x in default] == [[x[k] for k in keys] for x in reference]
    assert [x["target_replicas"] for x in default] == [72, 32]  # 20 % steps down: 90 -> 72, 40 -> 32
