"""`scaling.burst_bridge`: the burst allowance kept through its short off-time in each history
point instead of its pods being deleted and created again (scaler.planning step 1b).

Cases (the 5-minute history of tests/test_burst.py; values worked by hand):
- the lead window inside the observed point (allowance off, off-time 45 s a point): bridge 0s
  adds nothing, as before; bridge 5m sizes the same allowance as when on (1000 x 1.6667 /
  1.25 ** 0.85 = 1378.9, 18 pods) and says "bridged";
- a bridge shorter than the off-time (30s) leaves it off; hourly history (off 56m15s a point)
  is not bridged by 5m;
- the tick where the lead window does reach the next point is the same with and without it;
- a negative bridge is refused by the schema;
- on a replay of a noisy 5-minute trace: fewer scaling actions with the bridge, and no more
  demand unserved.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from forecaster.series import Series
from planner_helpers import NOW, obs, policy, state, step, untrusted, workload
from policies.schema import Workload
from scaler.planning import plan
from scaler.plans import RecentDemand
from scaler.replay import replay

FIVE = RecentDemand(NOW - timedelta(minutes=110), timedelta(minutes=5), tuple([800.0, 1400.0, 600.0] * 7))
HOURLY = RecentDemand(NOW - timedelta(hours=22), timedelta(hours=1), tuple([800.0, 1400.0, 600.0] * 7))
INSIDE = 1.25 ** 0.85


def wl(bridge: str) -> Workload:
    return workload(headroom=0.25, pod_startup="45s", quantile=0.9, burst_smoothing=False,  # lead 1m45s
                    burst_bridge=bridge)


def off_tick(bridge: str, history: RecentDemand = FIVE):
    """11:58: observed at 11:55:30 (2m30s lag) in [11:55, 12:00); the lead window ends 11:59:45,
    inside that point: the allowance is off (span 4m15s, on 85% of a 5-minute point)."""
    now = NOW - timedelta(minutes=2)
    w = wl(bridge)
    return plan(untrusted(), obs(1000, at=now - timedelta(seconds=150), recent_demand=history),
                w, policy(w), state(8), now)


def test_without_a_bridge_the_allowance_is_off_inside_the_observed_point():
    p = off_tick("0s")
    assert "no unobserved demand" in step(p, "burst").reason
    assert step(p, "burst").after == 1000 and p.target_replicas == 13  # ceil(1000 x 1.25 / 100)


def test_a_bridge_at_least_the_off_time_keeps_the_same_allowance_standing():
    p = off_tick("5m")
    b = step(p, "burst")
    assert b.after == pytest.approx(1000 * (1500 / 900) / INSIDE)  # as when on: 1378.9
    assert p.target_replicas == 18
    assert "bridged through its 45s off a 5m point (burst_bridge 5m)" in b.reason
    assert "q0.9 of the growth realised over the next 5m history point" in b.reason


def test_a_bridge_shorter_than_the_off_time_or_hourly_history_is_not_bridged():
    assert "no unobserved demand" in step(off_tick("30s"), "burst").reason
    # hourly: the allowance is off 3375 s of every 3600 s point, far beyond 5m
    hourly = off_tick("5m", HOURLY)
    assert "no unobserved demand" in step(hourly, "burst").reason and hourly.target_replicas == 13


def test_where_the_allowance_is_on_anyway_the_bridge_changes_nothing():
    w0, w5 = wl("0s"), wl("5m")
    o = obs(1000, at=NOW - timedelta(seconds=150), recent_demand=FIVE)  # lead window reaches 12:00
    p0, p5 = plan(untrusted(), o, w0, policy(w0), state(8), NOW), plan(untrusted(), o, w5, policy(w5), state(8), NOW)
    assert p0.target_replicas == p5.target_replicas == 18
    assert step(p0, "burst").after == step(p5, "burst").after
    assert "bridged" in step(p5, "burst").reason and "bridged" not in step(p0, "burst").reason


def test_a_negative_bridge_is_refused():
    data = wl("0s").model_dump(mode="json")
    data["scaling"]["burst_bridge"] = "-1m"
    with pytest.raises(ValidationError, match="burst_bridge"):
        Workload.model_validate(data)


def _noisy_five_minute_trace() -> Series:
    rng = np.random.default_rng(7)
    t = pd.date_range("2026-10-01", periods=12 * 24 * 12, freq="5min", tz="UTC")
    hour = t.hour + t.minute / 60
    base = 2000 + 1200 * np.sin(2 * np.pi * (hour - 9) / 24)
    values = base * rng.lognormal(0.0, 0.35, t.size)  # bursty counts: the allowance stands most of the time
    return Series(pd.Series(values, index=t), timedelta(minutes=5), "noisy")


def _replay_policy(bridge: str):
    return policy(workload(per_replica=100, headroom=0.25, pod_startup="45s", max_replicas=400, min_replicas=1,
                           burst_bridge=bridge))


@pytest.mark.slow
def test_replayed_with_a_bridge_fewer_scaling_actions_and_no_more_demand_unserved():
    series = _noisy_five_minute_trace()
    start = series.values.index[0] + pd.Timedelta(days=9)
    runs = {b: replay(series, _replay_policy(b), start=start.to_pydatetime()).strategies["ebbtide"]
            for b in ("0s", "5m")}
    off, on = runs["0s"], runs["5m"]
    assert on.scaling_actions < 0.75 * off.scaling_actions
    assert on.under_provisioned_share <= off.under_provisioned_share + 1e-9
    assert on.replica_hours >= off.replica_hours  # the pods kept through the gaps cost something
