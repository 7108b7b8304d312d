"""`scaling.scale_down_interval`: one larger scale-down per interval instead of a staircase of
small ones (per_replica 100, headroom 0.1, fraction 0.1, tick 1m, untrusted forecast so the
observed demand alone sizes; 1000 observed needs ceil(1000 x 1.1 / 100) = 11 pods).

Cases:
- ticks_in: whole ticks in a span, at least one (4 in a minute at 15 s).
- scale_down_ticks: 1 with an interval of at most one tick; 0 within the interval of the last
  scale-down; floor(interval / tick) after it or with none yet.
- limit_scale_down with ticks: floor(current x fraction x ticks), at least 1 pod, floored once
  for the interval (15 pods at 10%: 7 in a 5m interval, where five per-tick steps of 1 made 5;
  5 pods: 2, not 5), so a 15 s tick keeps a 1-minute tick's pace with a quarter of the fraction
  and a 1m interval (at most 1 pod a minute at 12 pods, not 4); ticks 0 lets only the burst pods
  go; the reasons say which.
- a descent from 40 to 11 over ticks with memory carried: 40 -> 20 -> (held 4 ticks) -> 11 with a
  5m interval: two deletions instead of the sixteen of the per-tick staircase.
- burst pods go at once within the interval, and releasing them alone does not restart it.
- scale-up inside the interval is immediate.
- the default policy (0s) keeps the per-tick step limit.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from planner_helpers import MIN, NOW, obs, policy, state, step, untrusted, workload
from scaler.planning import plan
from scaler.plans import PlannerMemory
from scaler.safety import limit_scale_down, scale_down_ticks, ticks_in


def _wl(interval: str = "5m", **kw):
    from policies.units import parse_duration

    wl = workload(**kw)
    return wl.model_copy(update={"scaling": wl.scaling.model_copy(
        update={"scale_down_interval": parse_duration(interval)})})


def test_scale_down_ticks():
    five = timedelta(minutes=5)
    assert scale_down_ticks(NOW, None, timedelta(0), MIN) == 1
    assert scale_down_ticks(NOW, NOW - MIN, MIN, MIN) == 1  # an interval of one tick: every tick
    assert scale_down_ticks(NOW, None, five, MIN) == 5
    assert scale_down_ticks(NOW, NOW - 4 * MIN, five, MIN) == 0
    assert scale_down_ticks(NOW, NOW - 5 * MIN, five, MIN) == 5
    assert scale_down_ticks(NOW, NOW - 60 * MIN, five, MIN) == 5  # no accrual beyond the interval
    assert scale_down_ticks(NOW, None, timedelta(minutes=7, seconds=30), MIN) == 7
    assert scale_down_ticks(NOW, None, timedelta(minutes=10), timedelta(minutes=2)) == 5


def test_ticks_in():
    assert ticks_in(MIN, timedelta(seconds=15)) == 4
    assert ticks_in(MIN, timedelta(seconds=20)) == 3  # 60 / 20 in floating point is not below 3
    assert ticks_in(MIN, MIN) == 1 and ticks_in(MIN, 2 * MIN) == 1  # at least one
    assert ticks_in(timedelta(minutes=7, seconds=30), MIN) == 7
    with pytest.raises(ValueError, match="tick must be positive"):
        ticks_in(MIN, timedelta(0))


def test_limit_scale_down_with_ticks():
    x, st = limit_scale_down(10, 40, 0.1, ticks=5, interval="scale_down_interval 5m")
    assert x == 20  # floor(40 x 0.1 x 5) = 20 pods
    assert "20 pods: 0.1 of 40 for each of the 5 ticks of scale_down_interval 5m" in st.reason
    assert limit_scale_down(25, 40, 0.1, ticks=5)[0] == 25  # 15 is within 20
    assert limit_scale_down(1, 15, 0.1, ticks=5)[0] == 8  # floor(7.5) = 7 pods, not 5 x max(1, floor(1.5))
    assert limit_scale_down(1, 5, 0.1, ticks=5)[0] == 3  # floor(2.5) = 2 pods, not 5 x 1
    assert limit_scale_down(1, 2, 0.1, ticks=5)[0] == 1  # at least 1 pod per interval
    # A 15 s tick with a quarter of the fraction and a 1m interval keeps the 1-minute tick's pace:
    for current in (3, 12, 40, 57, 200):
        one_minute = limit_scale_down(0, current, 0.1)[0]
        assert limit_scale_down(0, current, 0.025, ticks=4)[0] == one_minute
    assert limit_scale_down(0, 12, 0.025)[0] == 11  # per 15 s tick without the interval: 1 pod, 4 a minute
    x, st = limit_scale_down(5, 17, 0.1, speculative=6, ticks=0, interval="scale_down_interval 5m")
    assert x == 11  # only the 6 burst pods go
    assert "the scale-down beyond them, to 5, is deferred: scale_down_interval 5m has not passed" in st.reason
    assert limit_scale_down(16, 17, 0.1, ticks=0)[0] == 17


def test_descent_is_one_deletion_per_interval():
    wl = _wl("5m", max_replicas=50)
    pol = policy(wl)
    current, mem = 40, PlannerMemory()
    path = []
    for i in range(8):
        p = plan(untrusted(), obs(1000, at=NOW + i * MIN), wl, pol, state(current, memory=mem), NOW + i * MIN)
        current, mem = p.target_replicas, p.memory
        path.append(current)
    # t0: 5 x floor(40 x 0.1) = 20 -> 20; t1-t4: within 5m of it, held; t5: 5 x 2 = 10 -> 11 (needed)
    assert path == [20, 20, 20, 20, 20, 11, 11, 11]
    assert step(
        plan(untrusted(), obs(1000, at=NOW + MIN), wl, pol, state(20, memory=PlannerMemory(last_step_down_at=NOW)),
             NOW + MIN), "step_limit").reason == (
        "scale-down to 11 deferred: last scale-down at 2026-11-20T12:00:00+00:00, scale_down_interval 5m "
        "(4m left); kept 20")

    plain = workload(max_replicas=50)
    current, mem, staircase = 40, PlannerMemory(), []
    for i in range(20):
        p = plan(untrusted(), obs(1000, at=NOW + i * MIN), plain, policy(plain), state(current, memory=mem), NOW + i * MIN)
        current, mem = p.target_replicas, p.memory
        staircase.append(current)
    # 40 36 33 30 27 25 23 21 19 18 17 16 15 14 13 12 11: sixteen deletions
    assert staircase[:17] == [36, 33, 30, 27, 25, 23, 21, 19, 18, 17, 16, 15, 14, 13, 12, 11, 11]
    assert sum(a != b for a, b in zip([40] + staircase, staircase)) == 16
    assert sum(a != b for a, b in zip([40] + path, path)) == 2


def test_burst_pods_go_within_the_interval_without_restarting_it():
    wl = _wl("5m")
    earlier = NOW - 2 * MIN
    mem = PlannerMemory(burst_pods=6, last_step_down_at=earlier)
    # 900 observed needs 10; 17 running, 6 of them for a burst that did not come: 17 - 6 = 11,
    # no step beyond them within 5m of the last scale-down
    p = plan(untrusted(), obs(900), wl, policy(wl), state(17, memory=mem), NOW)
    assert p.target_replicas == 11
    assert p.memory.last_step_down_at == earlier and p.memory.burst_pods == 0
    later = plan(untrusted(), obs(900, at=NOW + 3 * MIN), wl, policy(wl), state(11, memory=p.memory), NOW + 3 * MIN)
    assert later.target_replicas == 10 and later.memory.last_step_down_at == NOW + 3 * MIN


def test_scale_up_within_the_interval_is_immediate():
    wl = _wl("5m")
    p = plan(untrusted(), obs(2000), wl, policy(wl), state(8, memory=PlannerMemory(last_step_down_at=NOW - MIN)), NOW)
    assert p.target_replicas == 22  # ceil(2000 x 1.1 / 100)


def test_default_keeps_the_per_tick_step_limit():
    wl = workload()
    assert wl.scaling.scale_down_interval == timedelta(0)
    p = plan(untrusted(), obs(500), wl, policy(wl), state(20, memory=PlannerMemory(last_step_down_at=NOW - MIN)), NOW)
    assert p.target_replicas == 18  # one step of floor(20 x 0.1) = 2, as before
