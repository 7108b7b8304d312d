"""`ebbtide run`'s effective settings (scaler.cli.run.parse_settings): flags, then EBBTIDE_*
variables, then defaults. Nothing is started. (The chart's rendered args and env go through the
same function in tests/test_chart.py.)

Cases:
- defaults with an empty environment (port 8080, INFO, leader election off, Lease `ebbtide`/15 s/5 s);
- every flag has an EBBTIDE_<FLAG> fallback, read when the flag is absent;
- a flag wins over its variable; `--no-leader-elect` turns an inherited `true` off; empty = unset;
- log level in any case (`info`, `Warn`); durations parsed (`1m30s`);
- errors name the flag or the variable: bad switch, port, log level, duration, non-whole lease
  duration, retry period not shorter than the lease, missing policy, --at without a zone;
- `ebbtide run` exits 2 with `error: EBBTIDE_LOG_LEVEL: ...` (no traceback).
"""

from __future__ import annotations

import socket
from datetime import datetime, timezone

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


def test_every_flag_falls_back_to_its_variable():
    env = {"EBBTIDE_POLICY": "/etc/p.yaml", "EBBTIDE_ONCE": "1", "EBBTIDE_DRY_RUN": "yes",
           "EBBTIDE_KUBECONFIG": "/k", "EBBTIDE_CONTEXT": "kind-x", "EBBTIDE_PROMETHEUS_URL": "http://p:9090",
           "EBBTIDE_HTTP_PORT": "9091", "EBBTIDE_HTTP_HOST": "127.0.0.1", "EBBTIDE_AUDIT_LOG": "/tmp/a.jsonl",
           "EBBTIDE_LEADER_ELECT": "TRUE", "EBBTIDE_LEASE_NAME": "lead", "EBBTIDE_LEASE_NAMESPACE": "ops",
           "EBBTIDE_LEASE_DURATION": "1m30s", "EBBTIDE_LEASE_RETRY_PERIOD": "2500ms",
           "EBBTIDE_IDENTITY": "pod-7", "EBBTIDE_AT": "2026-11-11T20:00:00+08:00", "EBBTIDE_LOG_LEVEL": "debug"}
    assert set(env) == set(ENV_VARS.values())  # the test covers every variable
    s = parse_settings(["run"], env)
    assert (s.policy, s.once, s.dry_run, s.kubeconfig, s.context) == ("/etc/p.yaml", True, True, "/k", "kind-x")
    assert (s.prometheus_url, s.http_port, s.http_host, s.audit_log) == \
        ("http://p:9090", 9091, "127.0.0.1", "/tmp/a.jsonl")
    assert (s.leader_elect, s.lease_name, s.lease_namespace) == (True, "lead", "ops")
    assert (s.lease_duration_s, s.lease_retry_period_s, s.identity) == (90, 2.5, "pod-7")
    assert s.at == datetime(2026, 11, 11, 12, 0, tzinfo=timezone.utc) and s.log_level == "DEBUG"


def test_a_flag_wins_over_its_variable():
    env = {"EBBTIDE_LEADER_ELECT": "true", "EBBTIDE_HTTP_PORT": "9091", "EBBTIDE_LOG_LEVEL": "error",
           "EBBTIDE_LEASE_NAME": "from-env", "EBBTIDE_DRY_RUN": ""}
    s = parse_settings([*BASE, "--no-leader-elect", "--http-port", "0", "--log-level", "Warn",
                        "--lease-name", "from-flag"], env)
    assert (s.leader_elect, s.http_port, s.log_level, s.lease_name, s.dry_run) == \
        (False, 0, "WARNING", "from-flag", False)


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
