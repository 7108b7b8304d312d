"""`ebbtide run` and `ebbtide replay` give the planner the same inputs, tick by tick.

The replay's figures stand for the controller only if both observe the same way. Here the same
bursty 5-minute trace is served to both: to the replay as the trace, to a Controller through a
Prometheus stand-in whose every evaluation returns the demand `demand.lag` (150 s) old, instant
values stamped with the evaluation time (as Prometheus stamps a `rate()`), range points on the
grid asked for. The forecast is kept out (min_history above the trace: reactive sizing in both),
so what is compared is the observation (demand, its time, the burst allowance's history) and
the plans made from it, over three hours of one-minute ticks with the burst allowance on and off.
Before `demand.lag`, the controller stamped the sample at `now` and read the history's points as
the buckets starting where they were read (the third test, `lag: 0s`): on this run every
observation differed from the replay's, the allowance stood on 36 of 180 ticks instead of 144,
and 61 of the 180 targets differed. At the reference policy's 15 s tick (a quarter of the step,
taken once per 5 minutes) the two also agree on all 240 ticks of an hour.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

import controller_fakes as f
from forecaster.history import InstantValue, StaticMetricsSource
from forecaster.series import Series
from policies.loading import load_policy_text
from scaler.controller import Controller, LiveForecasterCache
from scaler.planning import plan
from scaler.replay import replay

START = pd.Timestamp("2026-10-01", tz="UTC")
LAG = timedelta(seconds=150)
POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 1m}
workloads:
  - name: edge
    target: {kind: Deployment, namespace: live, name: edge}
    demand: {query: 'demand', per_replica: 100}
    pod_startup: 45s
    scaling: {min_replicas: 1, max_replicas: 400, headroom: 0.25, max_scale_down_fraction: 0.1,
              stabilization: 5m, scale_down_cooldown: 10m}
    forecast: {lookback: 30d, min_history: 30d, step: 5m, horizon: 6h}
"""


def _trace() -> Series:
    rng = np.random.default_rng(11)
    t = pd.date_range(START, periods=12 * 24 * 10, freq="5min")
    hour = t.hour + t.minute / 60
    values = (2000 + 1200 * np.sin(2 * np.pi * (hour - 9) / 24)) * rng.lognormal(0.0, 0.35, t.size)
    return Series(pd.Series(values, index=t), timedelta(minutes=5), "demand")


class LaggedPrometheus:
    """Every evaluation at time T returns the trace point holding T - lag: instant values are
    stamped T (as Prometheus stamps an expression), range points are on the grid asked for."""

    def __init__(self, trace: Series, lag: timedelta):
        self.inner, self.lag = StaticMetricsSource({"demand": trace}), lag

    def range(self, query, start, end, step):
        s = self.inner.range(query, start - self.lag, end - self.lag, step)
        return Series(s.values.set_axis(s.index + pd.Timedelta(self.lag)), s.step, s.name)

    def instant(self, query, at):
        v = self.inner.instant(query, at - self.lag)
        return None if v is None else InstantValue(v.value, at)


def _recording(log: list):
    def planner(forecast, quality, workload, policy, state, now):
        p = plan(forecast, quality, workload, policy, state, now)
        log.append((now, quality, state.cluster.replicas, p.target_replicas, p.steps[1].reason))
        return p
    return planner


def _runs(policy_text: str, ticks: int = 180, controller_text: str | None = None):
    """(replay's ticks, controller's ticks) over the same trace; the controller plans with
    `controller_text` when given (the replay always with `policy_text`)."""
    policy = load_policy_text(policy_text)
    ctl_policy = load_policy_text(controller_text) if controller_text else policy
    trace = _trace()
    t0 = (START + pd.Timedelta(days=8, hours=9)).to_pydatetime()
    tick = policy.schedule.tick
    in_replay: list = []
    replay(trace, policy, planner=_recording(in_replay), start=t0, end=t0 + ticks * tick)
    in_controller: list = []
    clock = f.Clock(t0)
    cluster = f.FakeCluster({"edge": in_replay[0][2]})  # the replay's warm start
    c = Controller(clock, LaggedPrometheus(trace, LAG), cluster, LiveForecasterCache(f.factory_of(f.ConstantModel)),
                   planner=_recording(in_controller))
    for _ in range(ticks):
        c.tick(ctl_policy, dry_run=False, fit=True)
        clock.advance(tick)
    return in_replay[:ticks], in_controller


def _same(a, b) -> bool:
    (now_a, obs_a, cur_a, tgt_a, _), (now_b, obs_b, cur_b, tgt_b, _) = a, b
    ra, rb = obs_a.recent_demand, obs_b.recent_demand
    return (now_a == now_b and obs_a.demand_now == obs_b.demand_now and obs_a.demand_at == obs_b.demand_at
            and (ra.start, ra.step) == (rb.start, rb.step) and np.array_equal(ra.values, rb.values, equal_nan=True)
            and (cur_a, tgt_a) == (cur_b, tgt_b))


def test_the_controller_observes_and_plans_as_the_replay_does():
    in_replay, in_controller = _runs(POLICY)
    assert len(in_controller) == len(in_replay) == 180
    differ = [i for i, (a, b) in enumerate(zip(in_replay, in_controller)) if not _same(a, b)]
    assert differ == []
    # the allowance was exercised: on for most ticks, sizing above the observation on some
    on = sum("over the next 5m history point" in r[4] for r in in_controller)
    assert 0.75 * 180 <= on <= 0.95 * 180
    assert any(r[4].startswith("sized for demand") for r in in_controller)
    assert len({r[3] for r in in_controller}) > 5  # the targets moved


def test_with_a_bridge_too():
    text = POLICY.replace("stabilization: 5m,", "stabilization: 5m, burst_bridge: 5m,")
    in_replay, in_controller = _runs(text, ticks=60)
    assert [i for i, (a, b) in enumerate(zip(in_replay, in_controller)) if not _same(a, b)] == []
    # bridged: the allowance stands on every tick, through its 45 s gaps
    assert not any("no unobserved demand" in r[4] for r in in_controller)
    assert all("bridged through its 45s off a 5m point" in r[4] for r in in_controller)


def test_at_the_reference_policys_15_second_tick():
    """The reference policy's timing: a 15 s tick, a quarter of the step taken once per 5m."""
    text = POLICY.replace("schedule: {tick: 1m}", "schedule: {tick: 15s}").replace(
        "max_scale_down_fraction: 0.1,", "max_scale_down_fraction: 0.025, scale_down_interval: 5m,")
    assert text.count("15s") == 1 and text.count("0.025") == 1
    in_replay, in_controller = _runs(text, ticks=240)
    assert len(in_controller) == len(in_replay) == 240
    assert [i for i, (a, b) in enumerate(zip(in_replay, in_controller)) if not _same(a, b)] == []
    assert in_controller[1][0] - in_controller[0][0] == timedelta(seconds=15)
    # the lead window is 45 s + 15 s: the allowance is on 70% of each 5-minute point
    on = sum("over the next 5m history point" in r[4] for r in in_controller)
    assert 0.6 * 240 <= on <= 0.8 * 240
    assert len({r[3] for r in in_controller}) > 5


def test_the_controller_before_demand_lag_would_not_have():
    """The same run with the sample taken as current (lag 0s in the controller's policy, while
    Prometheus still returns demand 150 s old): the observations differ on most ticks."""
    in_replay, in_controller = _runs(POLICY, 60, POLICY.replace("per_replica: 100}", "per_replica: 100, lag: 0s}"))
    differ = [i for i, (a, b) in enumerate(zip(in_replay, in_controller)) if not _same(a, b)]
    assert len(differ) > 30
