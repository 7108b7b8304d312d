"""`ebbtide run` end to end: a REAL Prometheus (backfilled with promtool) holding three weeks of
sales-event history and the SLIs, the kmock Kubernetes emulator holding Deployments, an HPA and
the bitrate ConfigMap, the real forecaster (Prophet), planner and Kubernetes adapter.

Cases:
- `ebbtide run --once` changes exactly the right objects: edge scale 60 -> 54 (10 % step
  limit), the api HPA's minReplicas 30 -> 27, the bitrate document's `edge` tier 1080p -> 720p
  (one rung, rule `midday`), ingest untouched (its SLI is in breach: the guard holds); every
  body sent validates against the Kubernetes 1.30 schemas; one audit line per workload;
- `--dry-run` makes zero writes (and still plans the same targets);
- Prometheus killed mid-run (loop mode, 2 s ticks, leader election configured through the
  chart's EBBTIDE_* variables): after the kill, 0 scale-downs over the following ticks (counted
  and printed), the ticks hold and say so; every plan was made as the Lease holder; SIGTERM ends
  the run (0) and releases the Lease.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from support.kube import configmap, deployment, hpa, kube_env, validate_sent  # noqa: F401 (fixture)
from support.prometheus import MetricSeries

pytestmark = [pytest.mark.prometheus, pytest.mark.slow, pytest.mark.xdist_group("run-integration")]

NOW = datetime(2026, 10, 20, 12, 0, tzinfo=timezone.utc)
STEP_S = 300
SALE = dict(start=datetime(2026, 10, 13, 0, 0, tzinfo=timezone.utc), peak=datetime(2026, 10, 13, 12, 0, tzinfo=timezone.utc),
            end=datetime(2026, 10, 14, 0, 0, tzinfo=timezone.utc))

POLICY = f"""\
apiVersion: ebbtide/v1
dry_run: false
schedule: {{tick: 2s}}
prometheus: {{url: 'http://127.0.0.1:1', timeout: 5s, max_staleness: 5m}}
events:
  - {{name: autumn-sale, kind: sale, start: {SALE['start'].isoformat()}, peak: {SALE['peak'].isoformat()},
     end: {SALE['end'].isoformat()}, ebb: 24h}}
workloads:
  - name: edge
    target: {{kind: Deployment, namespace: live, name: edge}}
    demand: {{query: 'sum(edge_viewers)', per_replica: 100}}
    pod_startup: 60s
    scaling: {{min_replicas: 4, max_replicas: 200, max_scale_down_fraction: 0.1, scale_down_cooldown: 0s,
               stabilization: 0s}}
    forecast: &fc {{lookback: 14d, step: 1h, horizon: 24h, refit_interval: 6h, min_history: 7d, trust_bound: 0.35}}
    quality:
      - {{name: rebuffering, query: 'max(player_rebuffer_ratio)', threshold: 0.02}}
  - name: api
    target: {{kind: Deployment, namespace: shop, name: api}}
    hpa: {{name: api}}
    demand: {{query: 'sum(api_rps)', per_replica: 400}}
    pod_startup: 30s
    scaling: {{min_replicas: 3, max_replicas: 100, max_scale_down_fraction: 0.1, scale_down_cooldown: 0s,
               stabilization: 0s}}
    forecast: *fc
  - name: ingest
    target: {{kind: Deployment, namespace: live, name: ingest}}
    demand: {{query: 'sum(ingest_streams)', per_replica: 40}}
    scaling: {{min_replicas: 2, max_replicas: 60, max_scale_down_fraction: 0.1, scale_down_cooldown: 0s,
               stabilization: 0s}}
    forecast: *fc
    quality:
      - {{name: ingest-drops, query: 'max(ingest_drop_ratio)', threshold: 0.001}}
bitrate:
  ladder: [{{name: 1080p, kbps: 6000}}, {{name: 720p, kbps: 3000}}, {{name: 480p, kbps: 1200}}]
  tiers: [{{name: core, hd_floor: 720p, share: 0.3}}, {{name: edge, hd_floor: 480p, share: 0.7}}]
  rules: [{{name: midday, hours: "10:00-14:00", timezone: UTC, caps: {{edge: 480p}}}}]
  step_rungs: 1
  target: {{namespace: live, name: ebbtide-bitrate, key: policy.json, format: json}}
"""


def history() -> list[MetricSeries]:
    """Three weeks at 5 min up to NOW + 10 min: a daily cycle, a sale 7 days ago and its ebb."""
    t = np.arange(int((NOW - timedelta(days=21)).timestamp()), int((NOW + timedelta(minutes=10)).timestamp()),
                  STEP_S, dtype=float)
    rng = np.random.default_rng(11)
    daily = 1 + 0.3 * np.sin(2 * np.pi * (t % 86400) / 86400)
    start, end = SALE["start"].timestamp(), SALE["end"].timestamp()
    excess = np.where((t >= start) & (t < end), 4.0, 0.0) + np.where(t >= end, 4.0 * np.exp(-(t - end) / 86400), 0.0)
    shape = daily * (1 + excess) * (1 + rng.normal(0, 0.02, t.size))
    ts = list(t)
    return [
        MetricSeries("edge_viewers", {"region": "east"}, ts, list(2000 * shape)),
        MetricSeries("api_rps", {}, ts, list(3000 * shape)),
        MetricSeries("ingest_streams", {}, ts, list(300 * shape)),
        MetricSeries("player_rebuffer_ratio", {}, ts, [0.004] * len(ts)),
        MetricSeries("ingest_drop_ratio", {}, ts, [0.01] * len(ts)),  # 10x its threshold: breach
    ]


@pytest.fixture(scope="module")
def prom(prometheus_factory):
    return prometheus_factory(history(), name="run")


def seed(env) -> None:
    env.server.seed(
        deployment("live", "edge", replicas=60, ready=60),
        deployment("shop", "api", replicas=30, ready=30),
        hpa("shop", "api", "Deployment", "api", min_replicas=30, max_replicas=100),
        deployment("live", "ingest", replicas=20, ready=20),
        configmap("live", "ebbtide-bitrate", {"policy.json": json.dumps({"tiers": {
            "core": {"max_rung": "1080p"}, "edge": {"max_rung": "1080p"}}})}),
    )


def run_cli(monkeypatch, tmp_path, env, prom_url: str, *extra: str) -> tuple[int, list[dict]]:
    import scaler.cli.run as run_cli_module
    from scaler.cli import main

    monkeypatch.setattr(run_cli_module, "_cluster", lambda args: env.cluster())
    monkeypatch.delenv("EBBTIDE_PROMETHEUS_URL", raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    audit = tmp_path / "audit.jsonl"
    code = main(["run", "--policy", str(policy), "--prometheus-url", prom_url, "--at", NOW.isoformat(),
                 "--audit-log", str(audit), *extra])
    lines = [json.loads(x) for x in audit.read_text().splitlines()] if audit.exists() else []
    return code, lines


def test_run_once_changes_exactly_the_right_objects(prom, kube_env, monkeypatch, tmp_path):
    seed(kube_env)
    code, lines = run_cli(monkeypatch, tmp_path, kube_env, prom.url, "--once")
    assert code == 0
    plans = {x["workload"]: x for x in lines}
    assert set(plans) == {"edge", "api", "ingest"}
    assert (plans["edge"]["current_replicas"], plans["edge"]["target_replicas"]) == (60, 54)
    assert (plans["api"]["apply_via"], plans["api"]["current_replicas"], plans["api"]["target_replicas"]) == \
        ("hpa_min_replicas", 30, 27)
    assert plans["ingest"]["guard_active"] and plans["ingest"]["target_replicas"] == 20
    assert plans["api"]["bitrate"] is None and plans["ingest"]["bitrate"] is None  # one document, planned once

    s = kube_env.server
    assert s.get("Deployment", "live", "edge")["spec"]["replicas"] == 54
    assert s.get("HorizontalPodAutoscaler", "shop", "api")["spec"]["minReplicas"] == 27
    assert s.get("Deployment", "shop", "api")["spec"]["replicas"] == 30  # the HPA owns it
    assert s.get("Deployment", "live", "ingest")["spec"]["replicas"] == 20
    doc = json.loads(s.get("ConfigMap", "live", "ebbtide-bitrate")["data"]["policy.json"])
    assert doc["tiers"]["edge"]["max_rung"] == "720p" and doc["tiers"]["core"]["max_rung"] == "1080p"

    writes = kube_env.transport.writes()
    targets = sorted({(w.method, w.path) for w in writes if "/events" not in w.path})
    assert targets == [
        ("PATCH", "/api/v1/namespaces/live/configmaps/ebbtide-bitrate"),
        ("PATCH", "/apis/apps/v1/namespaces/live/deployments/edge/scale"),
        ("PATCH", "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/api"),
    ]
    assert not any("ingest" in w.path for w in writes)
    assert validate_sent(kube_env.transport) == len(writes)


def test_dry_run_makes_zero_writes(prom, kube_env, monkeypatch, tmp_path):
    seed(kube_env)
    code, lines = run_cli(monkeypatch, tmp_path, kube_env, prom.url, "--once", "--dry-run")
    assert code == 0
    assert kube_env.transport.writes() == []
    plans = {x["workload"]: x for x in lines}
    assert plans["edge"]["target_replicas"] == 54 and plans["edge"]["dry_run"] is True
    assert plans["edge"]["applied"]["writes"]  # what it would have written
    assert kube_env.server.get("Deployment", "live", "edge")["spec"]["replicas"] == 60


def replicas_written(w) -> tuple[str, int] | None:
    body = w.body or {}
    if w.path.endswith("/scale"):
        return w.path, body.get("spec", {}).get("replicas")
    if "horizontalpodautoscalers" in w.path and "minReplicas" in body.get("spec", {}):
        return w.path, body["spec"]["minReplicas"]
    return None


def test_prometheus_killed_mid_run_makes_zero_scale_downs(prometheus_factory, kube_env, monkeypatch, tmp_path,
                                                          capsys):
    server = prometheus_factory(history(), name="run-kill")
    seed(kube_env)
    audit = tmp_path / "audit.jsonl"
    killed = {}

    def audit_lines() -> int:
        # The controller appends to the log while this thread reads it: count finished lines only
        # (a half-written last line once raised here, the thread died, and SIGTERM never came).
        return audit.read_text().count("\n") if audit.exists() else 0

    def chaos() -> None:
        # Generous, separate deadlines: each wait ends as soon as its ticks are logged; the
        # deadlines only bound a hung run (a shared, stalled machine once made a single 60 s
        # budget for both phases run out before the three ticks after the kill).
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and audit_lines() < 3:  # the first tick is done
                time.sleep(0.1)
            server.stop()
            killed["writes"] = len(kube_env.transport.writes())
            killed["lines"] = audit_lines()
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and audit_lines() < killed["lines"] + 9:  # 3 more ticks
                time.sleep(0.1)
        finally:  # whatever happened above, end the run so the test reports instead of hanging
            os.kill(os.getpid(), signal.SIGTERM)

    # Leader election on, configured the way the Helm chart does it: environment variables only.
    for name, value in {"EBBTIDE_LEADER_ELECT": "true", "EBBTIDE_LEASE_NAMESPACE": "live",
                        "EBBTIDE_LEASE_NAME": "ebbtide", "EBBTIDE_IDENTITY": "ebbtide-0",
                        "EBBTIDE_LEASE_DURATION": "15s", "EBBTIDE_LEASE_RETRY_PERIOD": "1s",
                        "EBBTIDE_LOG_LEVEL": "info"}.items():
        monkeypatch.setenv(name, value)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    t = threading.Thread(target=chaos, daemon=True)
    t.start()
    try:
        code, lines = run_cli(monkeypatch, tmp_path, kube_env, server.url, "--http-port", "0")
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    t.join(10)
    assert code == 0

    # Scale-downs actually sent (transport) vs the plans that made them (audit lines).
    sent_downs = 0
    last = {"/apis/apps/v1/namespaces/live/deployments/edge/scale": 60,
            "/apis/apps/v1/namespaces/live/deployments/ingest/scale": 20,
            "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/api": 30}
    for w in kube_env.transport.writes():
        got = replicas_written(w)
        if got is not None and got[1] is not None:
            sent_downs += got[1] < last.get(got[0], got[1])
            last[got[0]] = got[1]
    with_data = [x for x in lines if x["data_ok"]]
    without_data = [x for x in lines if not x["data_ok"]]
    downs_with_data = sum(x["wrote"] and x["target_replicas"] < x["current_replicas"] for x in with_data)
    downs_without_data = sum(x["target_replicas"] < x["current_replicas"] for x in without_data)
    held_after_kill = [x for x in lines[killed["lines"]:] if not x["data_ok"]]
    with capsys.disabled():
        print(f"\n[prometheus killed mid-run] scale-downs sent: {sent_downs}; planned with data: "
              f"{downs_with_data}; planned without data (Prometheus dead): {downs_without_data} over "
              f"{len(without_data)} plans (~{len(without_data) // 3} ticks)")
    assert downs_with_data >= 2  # edge and api did step down while data was there
    assert sent_downs == downs_with_data
    assert downs_without_data == 0
    assert len(held_after_kill) >= 6 and ingest_untouched(kube_env)
    assert all("unreachable" in " ".join(x["problems"]) or "refused" in " ".join(x["problems"])
               for x in held_after_kill)
    # It wrote as the Lease holder, and released the Lease on SIGTERM.
    assert all(x["leader"] for x in lines)
    holders = [w.body["spec"].get("holderIdentity") for w in kube_env.transport.writes() if "/leases" in w.path]
    assert holders[0] == "ebbtide-0" and holders[-1] is None
    assert kube_env.server.get("Lease", "live", "ebbtide")["spec"].get("holderIdentity") is None


def ingest_untouched(env) -> bool:
    return env.server.get("Deployment", "live", "ingest")["spec"]["replicas"] == 20
