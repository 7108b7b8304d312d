"""The replay's building blocks against hand-computed sequences.

Cases:
- cluster: a pod is ready exactly pod_startup after creation; scale-down removes starting pods
  first, then the youngest ready ones; ready <= replicas always (property).
- replica calculator: within tolerance -> unchanged; scale-up/down = ceil(ratio x ready); a
  scale-up with starting pods recomputes over all pods and holds when within tolerance.
- HPA behaviour: scale-up limit max(+4 pods, +100%) per 15 s (2 -> 6 -> 12 -> 24 -> 48 -> 96,
  where 8000 / 96 pods is within tolerance); scale-down waits for the 300 s stabilisation
  window (first at drop + 285 s); the initial recommendation blocks scale-down right after
  start; below minReplicas jumps at once; a missing metric changes nothing.
- metric lag and start-up delay through the runner: a demand step is seen 150 s late, the new
  pods serve 60 s later; hand-computed means, shortfall minutes and share.
- war state: held replicas = ceil(peak / per_replica x (1 + headroom)), from start - pod_startup
  to end + 7 d, the peak taken over [start, end) (not the interval after the end); in the replay
  the static strategy holds it inside the window only.
- demand shape: `linear` runs on lines between interval midpoints (edges and points next to a
  missing one held, NaN outside); on an hourly ramp it spares the HPA most of the shortfall the
  step-held jumps make.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.series import Series
from policies.events import Event
from policies.loading import load_policy_text
from scaler.plans import Plan
from scaler.replay import HpaReplay, HpaSettings, SimulatedCluster, calculate_replicas, replay
from scaler.replay.warstate import peak_replicas, war_floor, war_windows

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
S = HpaSettings()


# --------------------------------------------------------------------------- cluster
def test_pod_ready_exactly_after_startup():
    c = SimulatedCluster(2, pod_startup_s=60, now_s=0)
    assert c.scale(5, 100)
    assert (c.replicas, c.ready(100), c.ready(159), c.ready(160)) == (5, 2, 2, 5)


def test_scale_down_removes_starting_pods_first():
    c = SimulatedCluster(4, pod_startup_s=60, now_s=0)
    c.scale(7, 10)          # 3 pods starting until 70
    c.scale(5, 20)          # removes 2 of the starting ones
    assert (c.replicas, c.ready(20), c.ready(70)) == (5, 4, 5)
    c.scale(3, 80)          # all ready: the youngest go
    assert (c.replicas, c.ready(80)) == (3, 3)
    assert c.actions == 3
    assert not c.scale(3, 90)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 200)), min_size=1, max_size=30))
def test_ready_never_exceeds_replicas(ops):
    c = SimulatedCluster(3, pod_startup_s=45, now_s=0)
    t = 0
    for target, gap in ops:
        t += gap
        c.scale(target, t)
        assert 0 <= c.ready(t) <= c.replicas == target
        assert c.ready(t + 45) == c.replicas


# --------------------------------------------------------------------------- calculator
@pytest.mark.parametrize("demand, current, ready, expected", [
    (850, 10, 10, 10),    # ratio 850/800 = 1.0625: within 10%
    (720, 10, 10, 10),    # 0.9: on the tolerance edge, unchanged
    (900, 10, 10, 12),    # 1.125 -> ceil(11.25)
    (400, 10, 10, 5),     # 0.5 -> 5
    (1000, 10, 10, 13),   # 1.25 -> ceil(12.5)
    (1000, 12, 10, 12),   # 2 pods starting: 1000 / (12 x 80) = 1.04, within tolerance -> hold
    (1200, 12, 10, 15),   # starting pods count as 0: 1200 / 960 = 1.25 -> ceil(15)
    (400, 12, 10, 5),     # scale-down ignores starting pods: ratio over ready 0.5 -> 5
    (500, 3, 0, 3),       # no ready pod reports a metric: nothing to do
])
def test_replica_calculator(demand, current, ready, expected):
    assert calculate_replicas(demand, current, ready, 100.0, S) == expected


# --------------------------------------------------------------------------- behaviour
def _run_hpa(demand_at, seconds, start_replicas, startup_s=0.0, min_replicas=1, max_replicas=200):
    """Sync every 15 s over [0, seconds); returns the replicas after each sync."""
    hpa = HpaReplay(S, per_replica=100.0, max_replicas=max_replicas)
    c = SimulatedCluster(start_replicas, startup_s, 0)
    out = []
    for t in range(0, seconds, 15):
        c.scale(hpa.sync(t, demand_at(t), c.replicas, c.ready(t), min_replicas), t)
        out.append(c.replicas)
    return out


def test_scale_up_limited_to_larger_of_4_pods_or_100_percent():
    seq = _run_hpa(lambda t: 8000.0, 120, start_replicas=2)  # needs 8000 / 80 = 100
    # 96 pods carry 8000 / 96 = 83.3 each: ratio 1.04, within tolerance, so the HPA stops there.
    assert seq[:7] == [6, 12, 24, 48, 96, 96, 96]


def test_scale_down_waits_for_stabilisation_window():
    drop_s = 600
    seq = _run_hpa(lambda t: 800.0 if t < drop_s else 400.0, 1200, start_replicas=10)
    times = list(range(0, 1200, 15))
    first_down = next(t for t, r in zip(times, seq) if r < 10)
    # Recommendations of 10 made up to drop - 15 leave the window (t > now - 300) at drop + 285.
    assert first_down == drop_s + 300 - 15
    assert seq[times.index(first_down)] == 5


def test_no_scale_down_right_after_the_hpa_appears():
    seq = _run_hpa(lambda t: 100.0, 400, start_replicas=10)  # wants 2
    times = list(range(0, 400, 15))
    assert all(r == 10 for t, r in zip(times, seq) if t < 300)
    assert seq[times.index(300)] == 2


def test_below_min_jumps_at_once_and_missing_metric_holds():
    hpa = HpaReplay(S, per_replica=100.0, max_replicas=50)
    assert hpa.sync(0, 100.0, 2, 2, min_replicas=30) == 30       # no +4/+100% limit
    assert hpa.sync(15, math.nan, 30, 30, min_replicas=1) == 30  # no metric: nothing
    assert hpa.sync(30, 99999.0, 60, 60, min_replicas=1) == 50   # above max: lowered


# --------------------------------------------------------------------------- through the runner
POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 1m}
workloads:
  - name: web
    target: {kind: Deployment, namespace: default, name: web}
    demand: {query: 'demand', per_replica: 100}
    pod_startup: 60s
    scaling: {min_replicas: 1, max_replicas: 200, headroom: 0.15}
    forecast: {min_history: 30d, lookback: 40d}
"""


def hold_planner(forecast, quality, workload, policy, state, now) -> Plan:
    """Keeps whatever runs (the Ebbtide strategy is not under test here)."""
    r = state.cluster.replicas
    return Plan(workload.name, now, r, r, "scale", (), state.memory, False, False, True)


def _trace(values, step=timedelta(minutes=5), start=T0) -> Series:
    idx = pd.date_range(start, periods=len(values), freq=pd.Timedelta(step))
    return Series(pd.Series(np.asarray(values, dtype=float), index=idx), step, "test")


def test_metric_lag_and_startup_delay_hand_computed():
    trace = _trace([800.0] * 12 + [1600.0] * 12)  # one hour at 800, one at 1600
    r = replay(trace, load_policy_text(POLICY), planner=hold_planner)
    tl = r.timeline
    row = tl.iloc[12]  # the interval [T, T + 5 min) where demand jumped at T
    # HPA sees the jump at T + 150 s (lag), asks 20 pods (ratio 2); they are ready at T + 210 s.
    assert row["replicas_hpa"] == pytest.approx((150 * 10 + 150 * 20) / 300)
    assert row["ready_hpa"] == pytest.approx((210 * 10 + 90 * 20) / 300)
    assert (tl["replicas_hpa"].iloc[:12] == 10).all() and (tl["replicas_hpa"].iloc[13:] == 20).all()
    hpa = r.strategies["hpa"]
    assert hpa.under_provisioned_minutes == pytest.approx(3.5)
    assert hpa.under_provisioned_share == pytest.approx(600 * 210 / (800 * 3600 + 1600 * 3600))
    assert hpa.replica_hours == pytest.approx((3600 * 10 + 150 * 10 + (3600 - 150) * 20) / 3600)
    assert hpa.scaling_actions == 1
    # No event: the war-state baseline is the plain HPA.
    assert r.strategies["static"] == hpa
    assert r.war_windows == ()


# --------------------------------------------------------------------------- war state
def _event(start_h, peak_h, end_h):
    at = lambda h: (T0 + timedelta(hours=h)).isoformat()  # noqa: E731
    return Event(name="sale", kind="sale", start=at(start_h), peak=at(peak_h), end=at(end_h))


def test_war_windows_hold_peak_with_headroom():
    trace = _trace([100.0] * 10 + [1000.0] + [100.0] * 13, step=timedelta(hours=1))
    ev = _event(8, 10, 12)
    [w] = war_windows([ev], trace, per_replica=100, headroom=0.15, min_replicas=1, max_replicas=200,
                      pod_startup=timedelta(seconds=60))
    assert w.replicas == peak_replicas(1000, 100, 0.15, 1, 200) == 12  # ceil(11.5)
    assert w.peak_demand == 1000
    assert w.hold_from == ev.start - timedelta(seconds=60)
    assert w.hold_until == ev.end + timedelta(days=7)
    assert war_floor([w], w.hold_from, 1) == 12
    assert war_floor([w], w.hold_until, 1) == 1
    assert war_floor([w], w.hold_from - timedelta(seconds=1), 3) == 3
    far = _event(100, 101, 102)
    assert war_windows([far], trace, per_replica=100, headroom=0.15, min_replicas=1, max_replicas=200,
                       pod_startup=timedelta(seconds=60)) == []


def test_war_state_peak_is_taken_inside_the_event_not_the_hour_after_it():
    # The event ends at hour 12; the hour starting then (1000) is after it, as the event's own
    # figures ([start, end)) count it: the held replicas come from the 400 inside.
    values = [100.0] * 24
    values[10], values[12] = 400.0, 1000.0
    [w] = war_windows([_event(8, 10, 12)], _trace(values, step=timedelta(hours=1)), per_replica=100,
                      headroom=0.15, min_replicas=1, max_replicas=200, pod_startup=timedelta(seconds=60))
    assert w.peak_demand == 400 and w.replicas == 5  # ceil(4.6); it was 12 from the hour after


def test_linear_demand_runs_between_interval_midpoints():
    from scaler.replay.runner import _grid

    trace = _trace([100.0, 300.0, math.nan, 500.0, 700.0], step=timedelta(hours=1))
    policy = load_policy_text(POLICY)
    step = _grid(trace, policy, S, None, None)
    line = _grid(trace, policy, S, None, None, "linear")
    t0 = int(T0.timestamp())
    at = lambda g, h: g.demand_at(t0 + h * 3600)  # noqa: E731
    assert [at(line, h) for h in (0.0, 0.5, 1.0, 1.25, 1.5)] == [100.0, 100.0, 200.0, 250.0, 300.0]
    assert math.isnan(at(line, 2.5)) and at(line, 1.9) == 300.0 and at(line, 3.2) == 500.0  # a missing neighbour
    assert at(line, 4.0) == 600.0 and at(line, 4.99) == 700.0 and math.isnan(at(line, 5.0))  # edges held
    assert [at(step, h) for h in (0.0, 0.99, 1.0, 1.25)] == [100.0, 100.0, 300.0, 300.0]
    times = line.step_times()
    assert np.array_equal(line.demand_steps(), np.array([line.demand_at(t) for t in times]), equal_nan=True)


def test_linear_demand_spares_the_hpa_the_jumps_step_demand_makes():
    """A ramp written hourly: step-held, each hour boundary is a jump the HPA answers a lag and a
    start-up late (demand above ready capacity every hour); on lines between midpoints the rise
    is gradual and the HPA's +10% tolerance band and headroom cover most of it."""
    from scaler.replay import ReplayOptions, replay_hpa

    trace = _trace([400.0 * 1.5 ** i for i in range(8)], step=timedelta(hours=1))  # 6,834 at the top: 86 pods
    policy = load_policy_text(POLICY)
    step = replay_hpa(trace, policy).summary
    line = replay_hpa(trace, policy, options=ReplayOptions(demand_shape="linear")).summary
    assert step.under_provisioned_share > 0
    assert line.under_provisioned_share < step.under_provisioned_share / 2


def test_an_event_ended_before_the_trace_is_said_not_held():
    """Its 7-day hold reaches into the replay, but its peak is not in the trace: war state is not
    held, so `static` is the plain HPA there, and a note says so (it passed for a war state)."""
    trace = _trace([400.0] * 72, step=timedelta(hours=1))
    ev = _event(-30, -28, -26)  # ended 26 h before the trace's first row
    r = replay(trace, load_policy_text(POLICY), planner=hold_planner, extra_events=[ev])
    assert r.war_windows == () and r.strategies["static"] == r.strategies["hpa"]
    [note] = [n for n in r.notes if n.startswith("war state not held for sale")]
    assert "ended (2026-01-03T22:00:00Z) before the trace's first row" in note
    assert "until 2026-01-10T22:00:00Z the `static` strategy is the plain HPA" in note
    far = _event(-30 * 24, -30 * 24 + 1, -30 * 24 + 2)  # its hold ended long before: nothing to say
    r = replay(trace, load_policy_text(POLICY), planner=hold_planner, extra_events=[far])
    assert not [n for n in r.notes if n.startswith("war state not held")]


def test_static_strategy_holds_floor_inside_window_only():
    # 10 days hourly at 400 (HPA: 5 pods), a one-hour spike to 4000 on day 1.
    values = [400.0] * 240
    values[30] = 4000.0
    trace = _trace(values, step=timedelta(hours=1))
    ev = _event(28, 30, 31)
    r = replay(trace, load_policy_text(POLICY), planner=hold_planner, extra_events=[ev])
    tl = r.timeline.set_index("ts")
    held = peak_replicas(4000, 100, 0.15, 1, 200)  # 46
    ts = lambda h: (T0 + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    assert tl.loc[ts(26), "replicas_static"] == tl.loc[ts(26), "replicas_hpa"] == 5
    # The floor rises pod_startup (60 s) before the ramp: the last minute of hour 27.
    assert tl.loc[ts(27), "replicas_static"] == pytest.approx((59 * 5 + 1 * held) / 60, abs=1e-3)
    assert tl.loc[ts(28), "ready_static"] == held          # ready when the ramp starts
    assert (tl.loc[ts(32):ts(31 + 7 * 24 - 1), "replicas_static"] == held).all()
    # 7 days after the end the floor drops; the HPA scales down after its 5-minute window.
    assert tl.loc[ts(31 + 7 * 24 + 1), "replicas_static"] == 5
    w = r.windows[0]
    assert w.start == ev.end
    assert w.strategies["static"].replica_hours > 4 * w.strategies["hpa"].replica_hours
