"""The safety steps one by one (scaler.safety), hand-computed.

Cases:
- fmt: numbers in reasons as people read them: whole numbers plain, 4 significant digits below
  10,000, the nearest whole number from there (never `1.326e+05`), none, infinities.
- replicas_for: ceiling with headroom, binary noise not rounded up, zero demand.
- scale_step: at least one pod, floor of the fraction.
- check_demand: fresh, missing, stale, from the future, NaN/inf/negative, 100x jump judged
  against the largest reference, no reference -> accepted.
- check_slis: above/below, equal is no breach, missing/None/NaN/stale readings, union of
  actions, longest hold.
- guard_state: breach starts the hold, a later breach extends it, the hold expires, data
  problems guard without a hold, held actions kept.
- clamp, limit_scale_down, stabilise, cooldowns, apply_guard: values and reasons; the step
  limit and the scale-down cooldown let the pods bought by the burst allowance alone go.
- points_ahead: lead window inside the observed point, reaching the next one, ending exactly on
  a boundary, two points ahead; min_burst_pairs per quantile.
- burst_growth: the "higher" quantile of one- and two-point growth worked by hand (the level
  being the point itself), at least 1, pairs with NaN dropped (then too few), ahead 0 or a
  history too short -> None. Smoothed levels: tests/test_burst_smoothing.py.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from planner_helpers import MIN, NOW
from policies.schema import QualitySli
from scaler.plans import SliReading
from scaler.safety import (
    DemandCheck, GuardState, QualityCheck, apply_guard, burst_growth, check_demand, check_slis, clamp, confirm_jump,
    cooldowns, fmt, guard_state, limit_scale_down, min_burst_pairs, points_ahead, prune_recommendations, replicas_for,
    scale_step, stabilise,
)

STALE = timedelta(minutes=5)


@pytest.mark.parametrize(("x", "text"), [
    (950.0, "950"), (1045.5, "1046"), (0.02, "0.02"), (2 / 3, "0.6667"), (9999.4, "9999"),
    (132582.889, "132583"), (1.43e6 + 0.5, "1430000"), (-25000.4, "-25000"), (None, "none"),
    (math.inf, "inf"), (1.5e-05, "1.5e-05"),
])
def test_fmt_reads_as_people_write_numbers(x, text):
    assert fmt(x) == text


@pytest.mark.parametrize(("demand", "headroom", "per", "expected"), [
    (950, 0.1, 100, 11), (1000, 0.1, 100, 11), (1001, 0.1, 100, 12), (0, 0.5, 100, 0),
    (300, 0.0, 100, 3), (301, 0.0, 100, 4), (10, 0.15, 3, 4),
])
def test_replicas_for(demand, headroom, per, expected):
    assert replicas_for(demand, headroom, per) == expected


@pytest.mark.parametrize(("current", "fraction", "expected"), [(40, 0.1, 4), (9, 0.1, 1), (0, 0.5, 1), (10, 1.0, 10)])
def test_scale_step(current, fraction, expected):
    assert scale_step(current, fraction) == expected


def test_check_demand_fresh_missing_stale_future():
    assert check_demand(10.0, NOW - MIN, NOW, STALE, [100]) == DemandCheck(10.0, True)
    assert check_demand(10.0, NOW - STALE, NOW, STALE, []).ok  # exactly max_staleness old is fresh
    assert "missing" in check_demand(None, None, NOW, STALE, []).problem
    assert "missing" in check_demand(3.0, None, NOW, STALE, []).problem
    assert "stale" in check_demand(3.0, NOW - 6 * MIN, NOW, STALE, []).problem
    assert "stale" in check_demand(3.0, NOW + 6 * MIN, NOW, STALE, []).problem


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -0.5])
def test_check_demand_non_finite_or_negative(value):
    c = check_demand(value, NOW, NOW, STALE, [100])
    assert not c.ok and c.value is None and "absurd" in c.problem


def test_check_demand_jump_against_largest_reference():
    # largest positive reference is 50: absurd above 5000
    assert check_demand(5000.0, NOW, NOW, STALE, [None, 0, 50, 20, float("nan")]).ok
    c = check_demand(5000.1, NOW, NOW, STALE, [None, 0, 50, 20])
    assert not c.ok and "highest 50" in c.problem
    assert check_demand(1e12, NOW, NOW, STALE, [None, 0]).ok  # nothing to judge a jump against
    assert c.jump == 5000.1  # absurd by its size alone: confirm_jump may believe it
    assert check_demand(float("nan"), NOW, NOW, STALE, [50]).jump is None


def test_confirm_jump_holds_then_believes():
    jump = check_demand(9000.0, NOW, NOW, STALE, [50])
    held = confirm_jump(jump, NOW, None, 2 * MIN)  # starts now: held 2m
    assert not held.demand.ok and held.since == NOW and held.reason == ""
    assert "held 2m more" in held.demand.problem and "jump_confirm 2m" in held.demand.problem
    again = confirm_jump(jump, NOW + MIN, held.since, 2 * MIN)  # a minute on: 1m left
    assert not again.demand.ok and again.since == NOW and "held 1m more" in again.demand.problem
    done = confirm_jump(jump, NOW + 2 * MIN, again.since, 2 * MIN)
    assert done.demand.ok and done.demand.value == 9000.0 and done.since is None
    assert "believed after jump_confirm 2m" in done.reason and "9000 is over 100x" in done.reason
    assert confirm_jump(jump, NOW, None, timedelta(0)).demand.ok  # 0s: at once
    # A missing sample in between keeps the start; a usable one ends the jump.
    missing = check_demand(None, None, NOW + MIN, STALE, [50])
    assert confirm_jump(missing, NOW + MIN, NOW, 2 * MIN).since == NOW
    normal = check_demand(60.0, NOW + MIN, NOW + MIN, STALE, [50])
    kept = confirm_jump(normal, NOW + MIN, NOW, 2 * MIN)
    assert kept.since is None and kept.demand is normal


def _sli(name="rebuffering", threshold=0.02, **kw) -> QualitySli:
    return QualitySli(name=name, query="q", threshold=threshold, **kw)


def test_check_slis_breach_directions_and_equality():
    slis = [_sli(), _sli("hd-share", 0.6, breach_when="below", on_breach=["scale_up"], hold="30m")]
    ok = check_slis(slis, [SliReading("rebuffering", 0.02, NOW), SliReading("hd-share", 0.6, NOW)], NOW, STALE)
    assert ok == QualityCheck()
    both = check_slis(slis, [SliReading("rebuffering", 0.03, NOW), SliReading("hd-share", 0.5, NOW)], NOW, STALE)
    assert [n for n, _ in both.breaches] == ["rebuffering", "hd-share"]
    assert both.actions == ("freeze_scale_in", "restore_bitrate", "scale_up")
    assert both.hold == timedelta(minutes=30)
    assert both.data_ok


def test_check_slis_missing_and_stale_readings():
    slis = [_sli("a"), _sli("b"), _sli("c"), _sli("d")]
    readings = [SliReading("b", None, NOW), SliReading("c", float("nan"), NOW), SliReading("d", 0.0, NOW - 6 * MIN)]
    q = check_slis(slis, readings, NOW, STALE)
    assert not q.breaches and not q.data_ok
    assert q.data_problems[:3] == ("SLI a missing", "SLI b missing", "SLI c missing")
    assert "SLI d stale" in q.data_problems[3]


def test_check_slis_absurd_and_future_readings_are_data_problems():
    # a rebuffering ratio of -1 (a broken recording rule) once read as "within threshold" and let
    # a scale-in and a bitrate cut through
    slis = [_sli("a"), _sli("b"), _sli("c", breach_when="below"), _sli("d")]
    readings = [SliReading("a", -1.0, NOW), SliReading("b", float("inf"), NOW), SliReading("c", float("-inf"), NOW),
                SliReading("d", 0.01, NOW + 6 * MIN)]
    q = check_slis(slis, readings, NOW, STALE)
    assert not q.breaches and not q.data_ok
    assert [p.split(" (")[0] for p in q.data_problems] == ["SLI a absurd", "SLI b absurd", "SLI c absurd",
                                                            "SLI d stale"]
    assert check_slis(slis[:1], [SliReading("a", 0.0, NOW)], NOW, STALE).data_ok  # zero is a reading


def test_guard_state_hold_starts_extends_and_expires():
    breach = QualityCheck((("r", "SLI r in breach"),), (), ("freeze_scale_in",), timedelta(minutes=15))
    fine = DemandCheck(1.0, True)
    g = guard_state(breach, fine, NOW, None, ())
    assert g.active and g.live_breach and g.until == NOW + 15 * MIN and g.held_actions == ("freeze_scale_in",)
    # no breach, within the hold: still active, same actions, same end
    g2 = guard_state(QualityCheck(), fine, NOW + 5 * MIN, g.until, g.held_actions)
    assert g2.active and not g2.live_breach and g2.until == NOW + 15 * MIN and g2.actions == ("freeze_scale_in",)
    # a new breach extends it
    g3 = guard_state(breach, fine, NOW + 10 * MIN, g.until, g.held_actions)
    assert g3.until == NOW + 25 * MIN
    # after the hold: inactive and forgotten
    g4 = guard_state(QualityCheck(), fine, NOW + 15 * MIN, g.until, g.held_actions)
    assert not g4.active and g4.until is None and g4.held_actions == ()


def test_guard_state_data_problem_guards_without_hold():
    g = guard_state(QualityCheck(), DemandCheck(None, False, "demand data stale"), NOW, None, ())
    assert g.active and g.actions == ("freeze_scale_in", "restore_bitrate")
    assert g.until is None and "demand data stale" in g.reasons


def test_clamp_reasons():
    assert clamp(12, 1, 10, "limits")[1].reason == "capped count from 12 to 10 to stay within limits (limits)"
    assert clamp(0, 2, 10, "l")[0] == 2
    assert clamp(5, 2, 10, "l")[0] == 5


def test_limit_scale_down():
    assert limit_scale_down(11, 40, 0.1)[0] == 36
    assert limit_scale_down(38, 40, 0.1)[0] == 38
    assert limit_scale_down(1, 5, 0.1)[0] == 4  # at least one pod per tick
    assert limit_scale_down(50, 40, 0.1)[0] == 50  # scale-up untouched


def test_limit_scale_down_lets_burst_pods_go_first():
    # 40 running, 10 of them bought for a burst that did not come: 40 - 10 - floor(40 x 0.1) = 26
    x, st = limit_scale_down(11, 40, 0.1, speculative=10)
    assert x == 26 and st.reason == (
        "limited scale-down from 40 to 26: the 10 pods the burst allowance bought go at once (the burst they "
        "were bought for did not come), then at most 4 more (4 pods per tick, max_scale_down_fraction 0.1)")
    assert limit_scale_down(33, 40, 0.1, speculative=10)[0] == 33  # within 10 + 4
    assert limit_scale_down(0, 5, 0.5, speculative=9)[0] == 0  # speculative capped at current


def test_prune_and_stabilise():
    recs = ((NOW - 6 * MIN, 45), (NOW - 5 * MIN, 44), (NOW - 4 * MIN, 25), (NOW, 11))
    window = prune_recommendations(recs, NOW, 5 * MIN)
    assert window == ((NOW - 4 * MIN, 25), (NOW, 11))
    assert prune_recommendations(recs, NOW, timedelta(0)) == ((NOW, 11),)
    assert stabilise(11, 40, window, 5 * MIN)[0] == 25
    assert stabilise(11, 20, window, 5 * MIN)[0] == 20  # never above current
    assert stabilise(30, 20, window, 5 * MIN)[0] == 30  # scale-up untouched


def test_cooldowns():
    ten = timedelta(minutes=10)
    assert cooldowns(30, 40, NOW, NOW - 9 * MIN, None, ten, timedelta(0), None)[0] == 40
    assert cooldowns(30, 40, NOW, None, NOW - 10 * MIN, ten, timedelta(0), None)[0] == 30
    # a recent scale-DOWN does not hold the next one (the step limit paces descents)
    assert cooldowns(30, 40, NOW, None, NOW - MIN, ten, timedelta(0), None)[0] == 30
    assert cooldowns(30, 40, NOW, NOW - 11 * MIN, NOW - MIN, ten, timedelta(0), None)[0] == 30
    assert cooldowns(30, 40, NOW, None, None, ten, timedelta(0), None)[0] == 30
    # scale-up cooldown: only up to what demand now needs, never below current
    assert cooldowns(60, 40, NOW, NOW - MIN, None, ten, ten, 50)[0] == 50
    assert cooldowns(60, 40, NOW, NOW - MIN, None, ten, ten, 30)[0] == 40
    assert cooldowns(60, 40, NOW, NOW - MIN, None, ten, ten, None)[0] == 40
    assert cooldowns(60, 40, NOW, NOW - MIN, None, ten, timedelta(0), None)[0] == 60


def test_apply_guard():
    off = GuardState(False, (), False, None, ())
    assert apply_guard(30, 40, 40, off, 4, True)[0] == 30
    freeze = GuardState(True, ("freeze_scale_in",), True, None, ())
    assert apply_guard(30, 40, 40, freeze, 4, True)[0] == 40
    assert apply_guard(30, 40, 45, freeze, 4, True)[0] == 45  # HPA: the pods it runs
    up = GuardState(True, ("freeze_scale_in", "scale_up"), True, None, ())
    assert apply_guard(30, 40, 40, up, 4, True)[0] == 44
    assert apply_guard(50, 40, 40, up, 4, True)[0] == 50
    assert apply_guard(30, 40, 40, up, 4, False)[0] == 40
    held = GuardState(True, ("freeze_scale_in", "scale_up"), False, NOW, ())
    assert apply_guard(30, 40, 40, held, 4, True)[0] == 40  # scale_up only on a live breach


HOUR = timedelta(hours=1)


def test_points_ahead():
    start = NOW - 10 * HOUR  # point 9 is [NOW - 1h, NOW), point 10 [NOW, NOW + 1h)
    lag, lead = timedelta(seconds=150), timedelta(seconds=105)
    assert points_ahead(NOW - lag, NOW + lead, start, HOUR) == 1  # observed in 9, lead window reaches 10
    assert points_ahead(NOW - lag - 2 * MIN, NOW - 2 * MIN + lead, start, HOUR) == 0  # both in point 9
    assert points_ahead(NOW - lag, NOW, start, HOUR) == 1  # ends where point 10 begins: reaches it
    assert points_ahead(NOW + 30 * timedelta(seconds=1), NOW + 11 * MIN, NOW, 5 * MIN) == 2
    assert points_ahead(NOW, NOW - MIN, start, HOUR) == 0  # never negative
    with pytest.raises(ValueError):
        points_ahead(NOW, NOW, start, timedelta(0))


@pytest.mark.parametrize(("quantile", "expected"), [(0.9, 10), (0.95, 20), (0.5, 2), (0.99, 100)])
def test_min_burst_pairs(quantile, expected):
    assert min_burst_pairs(quantile) == expected


BURSTY = [100, 200, 100, 100, 300, 100, 150, 100, 100, 100, 100, 100]
POINT = (1.0,)  # the level is the point itself (no smoothing candidates): the cases worked by hand below


def gp(learnt):
    """(growth, pairs) of a BurstGrowth, or None."""
    return None if learnt is None else (learnt.growth, learnt.pairs)


def test_burst_growth_one_point_ahead():
    # (next + 100) / (now + 100): 1.5, 0.667, 1, 2, 0.5, 1.25, 0.8, 1, 1, 1, 1 (11 pairs);
    # sorted, the "higher" q0.9 is element ceil(0.9 x 10) = 9: 1.5
    assert gp(burst_growth(BURSTY, 1, 0.9, 100, POINT)) == (pytest.approx(1.5), 11)
    # q0.5: element ceil(0.5 x 10) = 5 of 0.5, 0.667, 0.8, 1, 1, [1], ...: 1
    assert gp(burst_growth(BURSTY, 1, 0.5, 100, POINT)) == (1.0, 11)


def test_burst_growth_two_points_ahead_takes_the_higher_of_both():
    # (max(next two) + 100) / (now + 100): 1.5, 0.667, 2, 2, 0.625, 1.25, 0.8, 1, 1, 1 (10 pairs);
    # element ceil(0.9 x 9) = 9 of the sorted ratios: 2
    assert gp(burst_growth(BURSTY, 2, 0.9, 100, POINT)) == (pytest.approx(2.0), 10)


def test_burst_growth_never_below_one():
    assert gp(burst_growth([1000 - 10 * i for i in range(20)], 1, 0.9, 100)) == (1.0, 19)


def test_burst_growth_drops_pairs_with_gaps_and_needs_enough_pairs():
    gappy = list(BURSTY)
    gappy[6] = math.nan  # drops the pairs (5, 6) and (6, 7): 9 left, q0.9 needs 10
    assert burst_growth(gappy, 1, 0.9, 100) is None
    assert gp(burst_growth(gappy, 1, 0.5, 100, POINT)) == (1.0, 9)
    assert burst_growth(BURSTY, 0, 0.9, 100) is None
    assert burst_growth(BURSTY[:2], 2, 0.5, 100) is None


def test_scale_down_cooldown_keeps_only_pods_observed_demand_needed():
    ten = timedelta(minutes=10)
    args = (NOW, NOW - 2 * MIN, None, ten, timedelta(0), None)
    assert cooldowns(10, 17, *args)[0] == 17  # no burst pods: the cooldown keeps all
    x, st = cooldowns(10, 17, *args, speculative=6)
    assert x == 11 and "the 6 pods bought by the burst allowance alone may go" in st.reason
    assert cooldowns(12, 17, *args, speculative=6)[0] == 12
