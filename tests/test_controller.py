"""One controller tick with fakes (no Prophet, no Prometheus, no Kubernetes).

Cases:
- history window: the last complete bucket before now, on the epoch grid of the step;
- recent_demand (the burst allowance's input): complete points only, the last `lookback` of them,
  by hand; None without history or with lookback 0;
- a trusted forecast -> the hand-computed plan (10 -> 33) -> exactly one apply, live; the audit
  line carries the plan, its reasons and the apply result; gauges and write counter set;
- --dry-run / policy dry_run: apply called with dry_run=True, the cluster unchanged, no write counted;
- Prometheus down for every query: 0 scale-downs over 5 ticks, the tick holds and says so,
  one query per tick (the rest skipped), ebbtide_prometheus_errors_total counts them;
- Prometheus lost mid-run after a scale-down: no further scale-down while it is down;
- `ebbtide run --once` against a closed Prometheus port: exit 0, held, no scale-down, reported;
- forecast failure -> reactive sizing (hand-computed 33), error counted, retry only after FIT_RETRY;
- too little history -> reactive, no fit at all;
- a forecast whose rolling check misses (WAPE 0.50 > 0.35) and foresees no growth -> not
  trusted, reactive;
- a forecast twice too high with the right daily shape -> trusted on its growth (level not),
  and the same check through judge_issued without per_replica (level only) -> not trusted; the
  forecast both caches serve says so (`level_trusted` False);
- refits on the workload's own interval, warm-started with the previous fit's params;
- cluster read failure -> no plan, no apply, report not ok; apply failure -> reported, memory kept;
- observed demand: ebbtide_observed_demand is the sample the tick planned with, absent while
  Prometheus is down; ebbtide_forecast_demand is absent while a plan has no forecast;
- a reload that drops a workload and the bitrate section removes their series from /metrics;
- bitrate is planned with `bitrate.workload` only (default: the first workload);
- [slow] Kubernetes API faults through Controller.tick on the kmock emulator (real KubeCluster):
  409, 429 (Retry-After) and 500 on the scale patch and a 500-after-commit on the bitrate
  ConfigMap are retried and the final state is the plan's; a ConfigMap failing for good rolls
  the replicas back (nothing partial), the error is reported and counted (figures printed);
- `--at`'s ShiftedClock: its first reading is the start however long after it was made, then it
  runs at wall speed in whole seconds.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import controller_fakes as f
from forecaster.history import StaticMetricsSource
from policies.loading import load_policy_text
from scaler.controller import FIT_RETRY, AuditLog, Controller, LiveForecasterCache, history_window
from scaler.metrics import ControllerMetrics
from scaler.plans import recent_demand
from support.kube import kube_env  # noqa: F401 (fixture)


def controller(source, cluster, *, model=f.ConstantModel, models=None, clock=None):
    metrics = ControllerMetrics()
    buf = io.StringIO()
    c = Controller(clock or f.Clock(), source, cluster, LiveForecasterCache(f.factory_of(model, models)),
                   metrics=metrics, audit=AuditLog(buf))
    return c, metrics, buf


def audit_lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_history_window_ends_with_the_last_complete_bucket():
    now = datetime(2026, 11, 20, 12, 3, 17, tzinfo=timezone.utc)
    start, end = history_window(now, timedelta(days=1), timedelta(minutes=5))
    assert end == datetime(2026, 11, 20, 11, 55, tzinfo=timezone.utc)
    assert start == datetime(2026, 11, 19, 11, 55, tzinfo=timezone.utc)


def test_trusted_forecast_gives_the_hand_computed_plan_and_one_live_apply():
    cluster = f.FakeCluster({"edge": 10})
    c, metrics, buf = controller(f.flat_source(3000), cluster)
    report = c.tick(f.make_policy(), dry_run=False, fit=True)
    # The forecast is flat (upper 3300 now and over the lead window), so the expected growth is 1:
    # sized demand = (observed 3000 + 100) x 1 - 100; ceil(3000 x 1.1 / 100) = 33.
    assert cluster.applies == [("edge", 33, False)]
    assert cluster.replicas["edge"] == 33
    out = report.outcomes[0]
    assert report.ok and not out.held and out.wrote
    assert out.plan.forecast_trusted and out.plan.steps[0].name == "demand"
    (line,) = audit_lines(buf)
    assert line["kind"] == "plan" and line["workload"] == "edge"
    assert (line["current_replicas"], line["target_replicas"], line["dry_run"]) == (10, 33, False)
    assert line["reasons"][0].startswith("sized for demand 3000: (observed 3000 + one pod's 100) x expected growth 1 ")
    # the planner got the history's complete points and the observation placed demand.lag (150 s)
    # before its sample: the burst allowance looks one point ahead, on (150 s + the 2 m lead window)
    # / 5 m = 90% of the time (40% were the sample taken as current), and the flat history's growth
    # of 1 adds nothing
    assert out.plan.steps[1].name == "burst" and line["reasons"][1].startswith("3000 already covers")
    assert "over the next 5m history point" in line["reasons"][1] and "on 90% of the time" in line["reasons"][1]
    assert line["reasons"][2] == "ceil(3000 x (1 + 0.1) / 100 per replica) = 33 replicas"
    assert line["applied"]["changed"] is True and line["wrote"] is True
    assert metrics.value("ebbtide_planned_replicas", {"workload": "edge"}) == 33
    assert metrics.value("ebbtide_current_replicas", {"workload": "edge"}) == 10
    assert metrics.value("ebbtide_forecast_trusted", {"workload": "edge"}) == 1
    assert metrics.value("ebbtide_forecast_demand", {"workload": "edge", "quantile": "upper"}) == pytest.approx(3300)
    assert metrics.value("ebbtide_writes_total", {"workload": "edge"}) == 1
    # Savings: (50 max - 33 planned) x 1 min = 17/60 replica-hours.
    assert metrics.value("ebbtide_estimated_savings_replica_hours_total", {"workload": "edge"}) == pytest.approx(17 / 60)


@pytest.mark.parametrize("flag, in_policy", [(True, False), (False, True)])
def test_dry_run_calls_apply_with_dry_run_and_writes_nothing(flag, in_policy):
    cluster = f.FakeCluster({"edge": 10})
    c, metrics, buf = controller(f.flat_source(3000), cluster)
    policy = f.make_policy(dry_run=in_policy)
    report = c.tick(policy, dry_run=flag or policy.dry_run, fit=True)
    assert cluster.applies == [("edge", 33, True)]
    assert cluster.replicas["edge"] == 10
    assert not report.outcomes[0].wrote
    assert metrics.value("ebbtide_writes_total", {"workload": "edge"}) is None
    assert audit_lines(buf)[0]["dry_run"] is True


def test_prometheus_down_holds_every_tick_with_zero_scale_downs():
    cluster = f.FakeCluster({"edge": 20})
    source = f.DownSource()
    clock = f.Clock()
    c, metrics, buf = controller(source, cluster, clock=clock)
    policy = f.make_policy()
    for _ in range(5):
        report = c.tick(policy, dry_run=False, fit=True)
        clock.advance(timedelta(minutes=1))
        out = report.outcomes[0]
        assert out.held and out.plan.guard_active and not out.plan.data_ok
        assert any("connection refused" in p for p in out.problems)
        assert any("skipped" in p for p in out.problems)
    scale_downs = [a for a in cluster.applies if a[1] < 20]
    assert scale_downs == []
    assert cluster.replicas["edge"] == 20
    assert source.calls == 5  # one query per tick; the others were skipped
    assert metrics.value("ebbtide_prometheus_errors_total") == 5
    assert metrics.value("ebbtide_quality_guard_active", {"workload": "edge"}) == 1
    assert metrics.value("ebbtide_data_ok", {"workload": "edge"}) == 0
    assert all("quality_guard" in [s["step"] for s in line["steps"]] for line in audit_lines(buf))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_demand_that_is_not_a_number_holds_and_says_so(bad):
    from forecaster.history import InstantValue

    class NotANumber(StaticMetricsSource):
        def instant(self, query, at):
            v = super().instant(query, at)
            return InstantValue(bad, v.timestamp) if query == f.DEMAND_Q and v is not None else v

    base = f.flat_source(500)
    cluster = f.FakeCluster({"edge": 20})
    c, _, _ = controller(NotANumber(base._series), cluster)
    out = c.tick(f.make_policy(), dry_run=False, fit=True).outcomes[0]
    assert out.held and not out.plan.data_ok and cluster.replicas["edge"] == 20
    assert any(f"returned {bad} (not a finite number)" in p for p in out.problems), out.problems


def test_prometheus_lost_mid_run_stops_scale_downs():
    cluster = f.FakeCluster({"edge": 40})
    source = f.SwitchableSource(f.flat_source(1000, end=f.NOW + timedelta(hours=1)))
    clock = f.Clock()
    c, metrics, _ = controller(source, cluster, clock=clock)
    policy = f.make_policy()
    c.tick(policy, dry_run=False, fit=True)
    assert cluster.replicas["edge"] == 36  # 10% step limit: 40 - 4 (sized 1100 x 1.1 / 100 -> 13)
    assert metrics.value("ebbtide_observed_demand", {"workload": "edge"}) == 1000  # the sample planned with
    source.down = True
    before = len(cluster.applies)
    for _ in range(5):
        clock.advance(timedelta(minutes=1))
        c.tick(policy, dry_run=False, fit=True)
    downs = [a for a in cluster.applies[before:] if a[1] < 36]
    assert downs == [] and cluster.replicas["edge"] == 36
    assert source.failed == 5
    assert metrics.value("ebbtide_observed_demand", {"workload": "edge"}) is None  # no sample: a gap, not stale


def test_run_once_with_prometheus_unreachable_exits_0_and_holds(tmp_path, monkeypatch, capsys):
    from support.prometheus import free_port

    import scaler.cli.run as run_cli
    from scaler.cli import main

    cluster = f.FakeCluster({"edge": 20})
    monkeypatch.setattr(run_cli, "_cluster", lambda args: cluster)
    monkeypatch.delenv("EBBTIDE_PROMETHEUS_URL", raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f.policy_yaml())
    code = main(["run", "--policy", str(policy), "--once", "--at", f.NOW.isoformat(),
                 "--prometheus-url", f"http://127.0.0.1:{free_port()}"])
    out, err = capsys.readouterr()
    assert code == 0
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert line["target_replicas"] >= line["current_replicas"] == 20
    assert line["data_ok"] is False and line["guard_active"] is True
    assert "connection refused" in err and "held" in err
    assert [a for a in cluster.applies if a[1] < 20] == []
    # the plan's own reason names the cause, not "the query returned no sample" (reasons audit)
    said = [s["reason"] for s in line["steps"] if "demand data missing" in s["reason"]]
    assert said and all("connection refused" in s for s in said)


def test_forecast_failure_falls_back_to_reactive_and_retries_later():
    cluster = f.FakeCluster({"edge": 10})
    clock = f.Clock()
    made = []
    c, metrics, _ = controller(f.flat_source(3000, end=f.NOW + timedelta(hours=1)), cluster,
                               model=f.FailingModel, models=made, clock=clock)
    policy = f.make_policy()
    report = c.tick(policy, dry_run=False, fit=True)
    plan = report.outcomes[0].plan
    assert not plan.forecast_trusted and plan.steps[0].name == "reactive"
    assert "forecast failed: Stan optimizer failed to converge" in plan.steps[0].reason
    assert plan.target_replicas == 33  # ceil(3000 x 1.1 / 100)
    assert report.ok  # reactive sizing is a completed tick
    assert metrics.value("ebbtide_errors_total", {"kind": "forecast"}) == 1
    n_made = len(made)
    clock.advance(FIT_RETRY - timedelta(minutes=1))
    c.tick(policy, dry_run=False, fit=True)
    assert len(made) == n_made  # not retried before FIT_RETRY
    clock.advance(timedelta(minutes=1))
    c.tick(policy, dry_run=False, fit=True)
    assert len(made) > n_made
    assert metrics.value("ebbtide_errors_total", {"kind": "forecast"}) == 2


def test_too_little_history_is_reactive_without_fitting():
    made = []
    c, _, _ = controller(f.flat_source(3000, days=2), f.FakeCluster({"edge": 10}), models=made)
    plan = c.tick(f.make_policy(), dry_run=False, fit=True).outcomes[0].plan
    assert made == []
    assert plan.steps[0].name == "reactive"
    # the source's 2 days end at now; the buckets complete at now - demand.lag (150 s) end 5 min earlier
    assert "only 1d23h55m of history, need 7d" in plan.steps[0].reason


def test_a_forecast_that_missed_recent_demand_is_not_trusted():
    n = int(timedelta(days=8) / f.STEP) + 1
    values = np.full(n, 3000.0)
    # the last 6 h of complete buckets (the trust window = horizon 6h) doubled: the point at now is
    # not complete at now - demand.lag, so 73 points
    values[-73:] = 6000.0
    source = StaticMetricsSource({f.DEMAND_Q: f.series(values), f.SLI_Q: f.series(np.full(n, 0.005))})
    plan = controller(source, f.FakeCluster({"edge": 10}))[0].tick(f.make_policy(), dry_run=False, fit=True) \
        .outcomes[0].plan
    # The bootstrap origin 6 h back forecast 3000 for actuals of 6000: WAPE = 3000/6000 = 0.50.
    assert not plan.forecast_trusted
    assert "WAPE 0.50 above bound 0.35" in plan.steps[0].reason


class DoubleShapeModel:
    """Forecasts twice the true daily curve of `_curve` (right shape, level 2x)."""

    name = "double-shape"

    def fit(self, history, init=None):
        return self

    def predict(self, index):
        import pandas as pd

        from forecaster.series import Forecast

        y = 2.0 * _curve(index)
        return Forecast(pd.DataFrame({"yhat": y, "yhat_lower": 0.9 * y, "yhat_upper": 1.1 * y}, index=index),
                        self.name, upper_quantile=0.9)


def _curve(index):
    """A daily curve rising from 03:00 to 15:00 UTC (through the trust window before 12:00)."""
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    return 3000.0 * (1.0 + 0.5 * np.sin(2 * np.pi * (hours - 9.0) / 24.0))


def test_a_forecast_with_the_right_shape_at_a_wrong_level_is_trusted_on_its_growth():
    n = int(timedelta(days=8) / f.STEP) + 1
    hist = f.series(np.zeros(n))
    hist = f.series(_curve(hist.index), name=f.DEMAND_Q)
    policy = f.make_policy()
    wl = policy.workloads[0]
    window, span = timedelta(hours=6), timedelta(days=8)
    v = LiveForecasterCache.judge_issued(hist, DoubleShapeModel, (), window, span, wl.forecast,
                                         wl.demand.per_replica)
    assert v.trusted and v.level_trusted is False
    assert "growth better than reactive sizing" in v.reasons[0]
    assert "level not trusted: WAPE 1.00 above bound 0.35" in v.reasons[0]
    # Without the workload's per_replica the shared check judges the level alone.
    v = LiveForecasterCache.judge_issued(hist, DoubleShapeModel, (), window, span, wl.forecast)
    assert not v.trusted and v.reasons == ("WAPE 1.00 above bound 0.35 over 1 origin",)
    # The forecast served to the planner carries both flags, in this process and through the
    # fit workers' path (scaler.fitting), so the planner keeps the level out of what sizes to it.
    from scaler.fitting import InlineExecutor, ParallelForecasterCache

    for cache in (LiveForecasterCache(f.factory_of(DoubleShapeModel)),
                  ParallelForecasterCache(InlineExecutor(), f.factory_of(DoubleShapeModel))):
        assert cache.refit(wl, policy.events, hist, f.NOW).ok
        served = cache.forecast(wl, f.NOW)
        assert served.forecast is not None and served.trusted and served.level_trusted is False


def _shop(index):
    """A shop open 00:00-05:00 UTC at a daily curve, closed (zero demand) the rest of the day."""
    open_hours = index.hour.to_numpy() < 5
    return np.where(open_hours, _curve(index), 0.0)


class ShopModel:
    """Forecasts `_shop` right, with 30 (1% of the level) in closed hours, as a fitted model does."""

    name = "shop"

    def fit(self, history, init=None):
        return self

    def predict(self, index):
        import pandas as pd

        from forecaster.series import Forecast

        y = np.maximum(_shop(index), 30.0)
        return Forecast(pd.DataFrame({"yhat": y, "yhat_lower": 0.9 * y, "yhat_upper": 1.1 * y}, index=index),
                        self.name, upper_quantile=0.9)


def test_a_closed_shops_quiet_hours_do_not_cost_the_forecast_its_trust():
    """At 12:00 the trust window (the last 6 h) saw no demand: the check moves back to the 6 h up
    to 05:00, the last demand, where the forecast was right (it scored the zeros: WAPE infinite)."""
    n = int(timedelta(days=8) / f.STEP) + 1
    hist = f.series(np.zeros(n))
    hist = f.series(_shop(hist.index), name=f.DEMAND_Q)
    policy = f.make_policy()
    wl = policy.workloads[0]
    from scaler.fitting import InlineExecutor, ParallelForecasterCache

    for cache in (LiveForecasterCache(f.factory_of(ShopModel)),
                  ParallelForecasterCache(InlineExecutor(), f.factory_of(ShopModel))):
        outcome = cache.refit(wl, policy.events, hist, f.NOW)
        assert outcome.ok and outcome.trusted, outcome.message
        assert outcome.message.endswith("no demand in the last 6h: judged on the 6h up to the last demand, "
                                        "2026-11-20T05:00:00+00:00")
        served = cache.forecast(wl, f.NOW)
        assert served.trusted and served.level_trusted


def test_refits_on_the_workloads_interval_with_warm_start():
    made = []
    clock = f.Clock()
    c, _, _ = controller(f.flat_source(3000, end=f.NOW + timedelta(hours=7)), f.FakeCluster({"edge": 10}),
                         models=made, clock=clock)
    policy = f.make_policy()
    c.tick(policy, dry_run=False, fit=True)
    first = len(made)  # the bootstrap backtest model and the served model
    clock.advance(timedelta(hours=5, minutes=59))
    c.tick(policy, dry_run=False, fit=True)
    assert len(made) == first
    clock.advance(timedelta(minutes=1))
    c.tick(policy, dry_run=False, fit=True)
    assert len(made) > first
    assert made[-1].init_seen == {"level": pytest.approx(3000.0)}


def test_cluster_read_failure_gives_no_plan_and_no_apply():
    cluster = f.FakeCluster({"edge": 10}, fail_read=True)
    c, metrics, buf = controller(f.flat_source(3000), cluster)
    report = c.tick(f.make_policy(), dry_run=False, fit=True)
    assert not report.ok and report.outcomes[0].plan is None
    assert "cannot read the cluster" in report.outcomes[0].error
    assert cluster.applies == []
    assert metrics.value("ebbtide_errors_total", {"kind": "cluster_read"}) == 1
    assert audit_lines(buf)[0]["kind"] == "error"


def test_apply_failure_is_reported_and_does_not_advance_memory():
    cluster = f.FakeCluster({"edge": 10}, fail_apply=True)
    c, metrics, buf = controller(f.flat_source(3000), cluster)
    report = c.tick(f.make_policy(), dry_run=False, fit=True)
    out = report.outcomes[0]
    assert not report.ok and out.error == "apply failed: HTTP 500 after 4 attempts"
    assert not out.wrote
    kept = c.memory["edge"]  # what the tick observed, and no action: no cooldown started
    assert (kept.last_scale_up_at, kept.last_scale_down_at, kept.last_step_down_at, kept.burst_pods) == (
        None, None, None, 0)
    assert metrics.value("ebbtide_errors_total", {"kind": "apply"}) == 1
    assert audit_lines(buf)[0]["error"] == "apply failed: HTTP 500 after 4 attempts"


# --------------------------------------------------------------------------- Kubernetes faults through the tick
BITRATE = """\
bitrate:
  ladder: [{name: 1080p, kbps: 6000}, {name: 720p, kbps: 3000}, {name: 480p, kbps: 1200}]
  tiers: [{name: core, hd_floor: 720p, share: 0.3}, {name: edge, hd_floor: 480p, share: 0.7}]
  rules: [{name: midday, hours: "10:00-14:00", timezone: UTC, caps: {edge: 480p}}]
  step_rungs: 1
  target: {namespace: live, name: ebbtide-bitrate, key: policy.json, format: json}
"""


def _seed_edge(env) -> None:
    from support.kube import configmap, deployment

    env.server.seed(deployment("live", "edge", replicas=10, ready=10),
                    configmap("live", "ebbtide-bitrate", {"policy.json": json.dumps(
                        {"tiers": {"core": {"max_rung": "1080p"}, "edge": {"max_rung": "1080p"}}})}))


def _edge_cap(env) -> str:
    doc = json.loads(env.server.get("ConfigMap", "live", "ebbtide-bitrate")["data"]["policy.json"])
    return doc["tiers"]["edge"]["max_rung"]


@pytest.mark.parametrize("doc", ['{"tiers": {"edge": "480p"}}', "[]", "{not json"])
def test_an_unreadable_bitrate_document_leaves_the_replicas_planned_and_itself_untouched(kube_env, doc):
    """Ebbtide never overwrites a bitrate document it cannot read; that held the replicas too
    (no plan at all: "cannot read the cluster"), so a workload under load was not scaled up."""
    from support.kube import configmap, deployment

    kube_env.server.seed(deployment("live", "edge", replicas=10, ready=10),
                         configmap("live", "ebbtide-bitrate", {"policy.json": doc}))
    c, _, buf = controller(f.flat_source(3000), kube_env.cluster())
    out = c.tick(load_policy_text(f.policy_yaml() + BITRATE), dry_run=False, fit=True).outcomes[0]
    assert out.plan is not None and out.plan.bitrate is None and out.error is None
    assert kube_env.server.get("Deployment", "live", "edge")["spec"]["replicas"] == out.plan.target_replicas > 10
    assert kube_env.server.get("ConfigMap", "live", "ebbtide-bitrate")["data"]["policy.json"] == doc
    [problem] = [p for p in out.problems if p.startswith("bitrate not planned")]
    assert "ConfigMap live/ebbtide-bitrate key policy.json" in problem and "replicas planned without it" in problem
    assert audit_lines(buf)[0]["problems"] == list(out.problems)


@pytest.mark.slow
def test_api_faults_through_the_tick_are_retried_and_never_partial(kube_env, capsys):
    from scaler.kube import RetryPolicy

    policy = load_policy_text(f.policy_yaml() + BITRATE)
    _seed_edge(kube_env)
    t = kube_env.transport

    # Transient: 409, 429 and 500 on the scale patch (4 calls, within 5 attempts), and a 500 answered
    # after the ConfigMap patch landed (re-sent: merge patches are idempotent).
    c, metrics, buf = controller(f.flat_source(3000), kube_env.cluster())
    t.fail("PATCH", r"/deployments/edge/scale$", 409)
    t.fail("PATCH", r"/deployments/edge/scale$", 429, retry_after=2)
    t.fail("PATCH", r"/deployments/edge/scale$", 500)
    t.fail("PATCH", r"/configmaps/ebbtide-bitrate$", 500, after=True)
    report = c.tick(policy, dry_run=False, fit=True)
    out = report.outcomes[0]
    plan_cap = {cap.tier: cap.rung for cap in out.plan.bitrate}["edge"]
    replicas = kube_env.server.get("Deployment", "live", "edge")["spec"]["replicas"]
    injected = [r.status for r in t.writes() if r.injected]
    retries = len(kube_env.sleeps)
    assert report.ok and out.wrote and out.error is None
    assert out.plan.target_replicas > 10 and replicas == out.plan.target_replicas  # 3000/100 per replica
    assert plan_cap == "720p" and _edge_cap(kube_env) == plan_cap  # one rung down (step_rungs 1)
    assert sorted(injected) == [409, 429, 500, 500] and retries == 4 and 2.0 in kube_env.sleeps  # Retry-After
    assert metrics.value("ebbtide_errors_total", {"kind": "apply"}) == 0
    assert audit_lines(buf)[0]["applied"]["ok"] is True

    # For good: the ConfigMap refuses every attempt -> the caps stay; the scale-out is kept (capacity
    # is never taken back for a document that cannot be written; a scale-in would be rolled back:
    # tests/test_kube.py), reported as a failed apply.
    _seed_edge(kube_env)
    t.clear()
    c2, metrics2, buf2 = controller(f.flat_source(3000), kube_env.cluster(retry=RetryPolicy(attempts=3)))
    t.fail("PATCH", r"/configmaps/ebbtide-bitrate$", 500, times=3)
    report2 = c2.tick(policy, dry_run=False, fit=True)
    out2 = report2.outcomes[0]
    kept_at = kube_env.server.get("Deployment", "live", "edge")["spec"]["replicas"]
    scale_bodies = [r.body["spec"]["replicas"] for r in t.writes() if r.path.endswith("/scale")]
    assert not report2.ok and "gave up after 3 attempts" in out2.error and out2.wrote  # the replicas changed
    assert scale_bodies == [out2.plan.target_replicas] and kept_at == out2.plan.target_replicas > 10
    assert out2.applied.notes[0].startswith(f"replicas kept at {kept_at} (was 10): a scale-up is not rolled back")
    assert _edge_cap(kube_env) == "1080p"
    assert c2.memory["edge"] == out2.plan.memory  # the scale-up happened: its memory counts
    assert metrics2.value("ebbtide_errors_total", {"kind": "apply"}) == 1
    assert audit_lines(buf2)[0]["error"] == out2.error
    with capsys.disabled():
        print(f"\n[kube faults through Controller.tick] injected {injected}: {retries} retries, final replicas "
              f"{replicas} = plan {out.plan.target_replicas}, edge cap 1080p -> {plan_cap} as planned; ConfigMap "
              f"failing for good: replicas 10 -> {kept_at} kept (a scale-up), caps untouched, apply error reported")


def test_bitrate_is_planned_with_the_named_workload_only():
    from scaler.controller import bitrate_scope

    api = ("  - name: api\n    target: {kind: Deployment, namespace: live, name: api}\n"
           "    demand: {query: 'sum(api)', per_replica: 50}\n    scaling: {max_replicas: 20}\n")
    two = f.policy_yaml(sli=False, extra_workload=api)
    bitrate = ("bitrate:\n  ladder: [{name: 1080p, kbps: 6000}, {name: 720p, kbps: 3000}]\n"
               "  tiers: [{name: core, hd_floor: 720p}]\n")
    default = load_policy_text(two + bitrate)
    assert [bitrate_scope(default, i).bitrate is not None for i in range(2)] == [True, False]
    named = load_policy_text(two + bitrate + "  workload: api\n")
    assert [bitrate_scope(named, i).bitrate is not None for i in range(2)] == [False, True]


def test_a_reload_that_drops_a_workload_or_tier_removes_its_series():
    """A workload (or bitrate tier) the new policy no longer has leaves /metrics at the next tick:
    its last gauges (here the guard on, as Prometheus is down) would otherwise stay for ever and
    keep EbbtideQualityGuardActive firing for a workload nobody runs."""
    api = ("  - name: api\n    target: {kind: Deployment, namespace: live, name: api}\n"
           "    demand: {query: 'sum(api)', per_replica: 50}\n    scaling: {max_replicas: 20}\n")
    bitrate = ("bitrate:\n  ladder: [{name: 1080p, kbps: 6000}, {name: 720p, kbps: 3000}]\n"
               "  tiers: [{name: core, hd_floor: 720p}]\n")
    both = load_policy_text(f.policy_yaml(extra_workload=api) + bitrate)
    c, metrics, _ = controller(f.DownSource(), f.FakeCluster({"edge": 20, "api": 5}))
    c.tick(both, dry_run=False, fit=True)
    for w in ("edge", "api"):
        assert metrics.value("ebbtide_quality_guard_active", {"workload": w}) == 1
        assert metrics.value("ebbtide_planned_replicas", {"workload": w}) is not None
    assert metrics.value("ebbtide_bitrate_cap_kbps", {"tier": "core"}) == 6000
    c.tick(f.make_policy(), dry_run=False, fit=True)  # api and the bitrate section removed
    for name in ("ebbtide_quality_guard_active", "ebbtide_planned_replicas", "ebbtide_current_replicas",
                 "ebbtide_forecast_trusted", "ebbtide_data_ok", "ebbtide_estimated_savings_replica_hours_total"):
        assert metrics.value(name, {"workload": "api"}) is None, name
        assert metrics.value(name, {"workload": "edge"}) is not None, name
    assert metrics.value("ebbtide_bitrate_cap_kbps", {"tier": "core"}) is None
    assert "workload=\"api\"" not in metrics.text()


def test_the_forecast_gauge_is_removed_while_a_plan_has_no_forecast():
    from types import SimpleNamespace

    metrics = ControllerMetrics()
    plan = SimpleNamespace(workload="edge", target_replicas=4, current_replicas=4, forecast_trusted=False,
                           guard_active=False, data_ok=True, bitrate=None)
    labels = {"workload": "edge", "quantile": "upper"}
    metrics.record_plan(plan, 10, timedelta(minutes=1), (90.0, 120.0), wrote=False, observed_demand=100.0)
    assert metrics.value("ebbtide_forecast_demand", labels) == 120.0
    metrics.record_plan(plan, 10, timedelta(minutes=1), None, wrote=False, observed_demand=100.0)
    assert metrics.value("ebbtide_forecast_demand", labels) is None  # not the old forecast held as current
    assert metrics.value("ebbtide_forecast_demand", {**labels, "quantile": "yhat"}) is None


def test_recent_demand_keeps_complete_points_of_the_lookback():
    from forecaster.series import Series
    import pandas as pd

    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
    idx = pd.date_range(t0, periods=6, freq="5min")  # points 00:00 .. 00:25
    hist = Series(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], index=idx), timedelta(minutes=5), "d")
    # at 00:27 point 00:25 is in progress: complete are 0..4; the last 15 min of them: 3 points
    r = recent_demand(hist, t0 + timedelta(minutes=27), timedelta(minutes=15))
    assert r.start == t0 + timedelta(minutes=10) and r.step == timedelta(minutes=5)
    assert r.values == (3.0, 4.0, 5.0)
    r = recent_demand(hist, t0 + timedelta(minutes=30), timedelta(days=1))  # all complete, all kept
    assert r.start == t0 and r.values == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert recent_demand(hist, t0 + timedelta(minutes=2), timedelta(days=1)) is None  # none complete
    assert recent_demand(hist, t0 + timedelta(minutes=30), timedelta(0)) is None
    assert recent_demand(None, t0, timedelta(days=1)) is None


def test_shifted_clock_starts_at_its_first_reading(monkeypatch):
    import scaler.controller as c

    wall = [100.0]
    monkeypatch.setattr(c.time, "monotonic", lambda: wall[0])
    start = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    clock = c.ShiftedClock(start)
    wall[0] += 7.3  # start-up (imports, policy load) before the first tick
    assert clock.now() == start
    wall[0] += 61.6
    assert clock.now() == start + timedelta(seconds=61)
    with pytest.raises(ValueError, match="zone"):
        c.ShiftedClock(datetime(2026, 11, 20, 12, 0))
