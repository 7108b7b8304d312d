"""The burst allowance grown from a smoothed level (scaler.safety.burst_growth with smoothing
candidates, scaler.planning step 1b, `scaling.burst_smoothing`).

Cases:
- smoothed_levels: the recursion worked by hand, a missing point keeps the level, NaN before
  the first value, alpha 1 is the values themselves, alpha outside (0, 1] refused; the
  vectorised path and the gap path agree.
- burst_growth against a plain-Python oracle (a loop for the levels, a sorted list for the
  "higher" quantile, the mean pinball loss): growth, pairs, chosen alpha, level and every
  candidate's loss; on a noisy flat series a smoothed level wins and sizes the same coverage
  with less capacity; on a steady daily cycle the point alone wins; ties go to the point.
- the planner: the level now carries the smoothing on to the observation (alpha x observed +
  (1 - alpha) x history level) and the reason names it; `burst_smoothing: false` grows from the
  observation alone; a history that does not end right before the observed point falls back to
  the observation, with the growth learnt from single points (the level it multiplies).
- absurd one-point spikes (a broken metric believed after jump_confirm, then gone) are left out
  of the history, as missing points, by hand; the planner's allowance after one is the one
  without it, and the reason says so.
"""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import timedelta

import pytest

from planner_helpers import NOW, obs, policy, state, step, untrusted, workload
from scaler.planning import plan
from scaler.plans import RecentDemand
from scaler.safety import BURST_SMOOTHING, absurd_spikes, burst_growth, smoothed_levels


def test_smoothed_levels_by_hand():
    assert smoothed_levels([100.0, 200.0, 100.0], 0.5).tolist() == [100.0, 150.0, 125.0]
    gap = smoothed_levels([math.nan, 100.0, math.nan, 200.0], 0.5)
    assert math.isnan(gap[0]) and gap[1:].tolist() == [100.0, 100.0, 150.0]
    same = smoothed_levels([1.0, math.nan, 3.0], 1.0)
    assert same[0] == 1.0 and math.isnan(same[1]) and same[2] == 3.0
    assert all(math.isnan(x) for x in smoothed_levels([math.nan, math.nan], 0.3))
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError):
            smoothed_levels([1.0], bad)


def test_vectorised_and_gap_paths_agree():
    rng = random.Random(3)
    v = [rng.uniform(50, 150) for _ in range(300)]
    with_gap = list(v)
    with_gap[150] = math.nan  # forces the loop path; before the gap both paths saw the same values
    a, b = smoothed_levels(v, 0.3), smoothed_levels(with_gap, 0.3)
    assert a[:150] == pytest.approx(b[:150], rel=1e-12)
    assert b[150] == b[149]


def _oracle(values, ahead, q, per, alpha):
    """(growth, pairs, loss, last level) by plain loops, as the docstring of burst_growth says."""
    levels, level = [], None
    for x in values:
        if x == x:
            level = x if level is None else alpha * x + (1 - alpha) * level
        levels.append(math.nan if level is None else level)
    base = levels if alpha < 1 else list(values)
    ratios, pairs = [], []
    for j in range(len(values) - ahead):
        nxt = values[j + 1: j + 1 + ahead]
        if all(x == x for x in nxt) and values[j] == values[j] and base[j] == base[j]:
            ratios.append((max(nxt) + per) / (base[j] + per))
            pairs.append((base[j], max(nxt)))
    s = sorted(ratios)
    growth = max(1.0, s[math.ceil(q * (len(s) - 1))])
    loss = sum(q * (y - b * growth) if y > b * growth else (1 - q) * (b * growth - y) for b, y in pairs) / len(pairs)
    return growth, len(pairs), loss, levels[-1]


NOISY = [1000.0 + (300.0 if i % 2 else -300.0) * (1 + (i % 7) / 10) for i in range(200)]


def test_burst_growth_matches_the_oracle_and_picks_the_lowest_loss():
    got = burst_growth(NOISY, 1, 0.9, 100)
    expect = {a: _oracle(NOISY, 1, 0.9, 100, a) for a in BURST_SMOOTHING}
    assert [a for a, _ in got.loss] == list(BURST_SMOOTHING)
    for a, loss in got.loss:
        assert loss == pytest.approx(expect[a][2], rel=1e-9)
    best = min(BURST_SMOOTHING, key=lambda a: (expect[a][2], -a))
    assert got.alpha == best and got.alpha < 1.0  # alternating noise: a smoothed level wins
    assert got.growth == pytest.approx(expect[best][0]) and got.pairs == expect[best][1]
    assert got.level == pytest.approx(expect[best][3])
    assert got.point_growth == pytest.approx(expect[1.0][0])  # what a single observation grows by
    # the same coverage with less capacity: the mean of level x growth below the point's
    lv = smoothed_levels(NOISY, best)[:-1]
    point = expect[1.0][0]
    assert sum(b * got.growth for b in lv) < sum(x * point for x in NOISY[:-1])


def test_a_steady_daily_cycle_keeps_the_point_alone():
    cycle = [1000.0 + 800.0 * math.sin(2 * math.pi * h / 24) for h in range(24 * 7)]
    got = burst_growth(cycle, 1, 0.95, 100)
    assert got.alpha == 1.0  # a smoothed level lags the morning rise
    assert got.loss[0][1] == min(loss for _, loss in got.loss)


def test_ties_go_to_the_point_and_one_candidate_is_the_point():
    flat = [500.0] * 40  # every level equals every point: equal losses
    assert burst_growth(flat, 1, 0.9, 100).alpha == 1.0
    only = burst_growth(NOISY, 1, 0.9, 100, alphas=(1.0,))
    assert only.alpha == 1.0 and len(only.loss) == 1


# 5-minute history, the noisy series, 200 complete points ending at [11:50, 11:55); the
# observation at 11:57:30 lies in [11:55, 12:00), the lead window (1m45s) reaches [12:00, 12:05).
STEP = timedelta(minutes=5)
HIST = RecentDemand(NOW - 200 * STEP - STEP, STEP, tuple(NOISY))
WL = dict(headroom=0.25, pod_startup="45s", quantile=0.9, max_replicas=500)
INSIDE = 1.25 ** 0.85


def _plan(wl, history=HIST, demand=700.0):
    return plan(untrusted(), obs(demand, at=NOW - timedelta(seconds=150), recent_demand=history),
                wl, policy(wl), state(8), NOW)


def test_the_planner_carries_the_smoothing_on_to_the_observation():
    learnt = burst_growth(NOISY, 1, 0.9, workload(**WL).demand.per_replica)
    p = _plan(workload(**WL))
    level = learnt.alpha * 700 + (1 - learnt.alpha) * learnt.level
    assert step(p, "burst").after == pytest.approx(level * learnt.growth / INSIDE)
    assert f"= {learnt.alpha:g} x observed 700" in step(p, "burst").reason
    assert "predicted the history's bursts best" in step(p, "burst").reason


def test_burst_smoothing_false_grows_from_the_observation():
    learnt = burst_growth(NOISY, 1, 0.9, 100, alphas=(1.0,))
    p = _plan(workload(**WL, burst_smoothing=False))
    assert step(p, "burst").after == pytest.approx(700 * learnt.growth / INSIDE)
    assert "observed 700 x burst allowance" in step(p, "burst").reason


def test_a_history_that_stops_short_of_the_observed_point_grows_from_the_observation():
    short = RecentDemand(HIST.start - 2 * STEP, STEP, HIST.values)  # ends two points before
    point = burst_growth(NOISY, 1, 0.9, 100, alphas=(1.0,))
    assert burst_growth(NOISY, 1, 0.9, 100).alpha < 1.0  # smoothing would win, but cannot reach
    p = _plan(workload(**WL), history=short)
    assert "does not reach the observed point" in step(p, "burst").reason
    # the lead window reaches one point beyond the observed one as before; the level is the
    # point, so the growth is the one learnt from points
    assert step(p, "burst").after == pytest.approx(700 * point.growth / INSIDE)


def test_absurd_spikes_by_hand():
    assert absurd_spikes([5, 6, 1e15, 5, 6]).tolist() == [False, False, True, False, False]
    # a jump that stays is traffic; a spike in the last point has nothing after it yet
    assert not absurd_spikes([5, 6, 1e15, 1e15, 6]).any()
    assert not absurd_spikes([5, 6, 1e15]).any()
    # each spike is measured against the points before it, earlier spikes left out; a missing
    # point after a spike: the next finite one decides
    assert absurd_spikes([5, 6, 1e4, 5, 1e15, math.nan, 6]).tolist() == [False, False, True, False, True, False,
                                                                        False]
    # 100x exactly, and a fall back by less than 100x, are kept
    assert not absurd_spikes([5, 6, 600, 5, 6]).any()
    assert not absurd_spikes([5, 6, 601, 6.1, 6]).any()
    # nothing before but zeros: one visitor on an empty night is no spike
    assert not absurd_spikes([0, 0, 1, 0, 0]).any()


def test_a_broken_metrics_spike_does_not_size_the_allowance_for_hours():
    # a sample of 1e15 believed after jump_confirm, then demand back to normal: the allowance
    # is learnt as if the point were missing, and the reason says so
    spiked = list(NOISY)
    spiked[-6] = 1e15
    gapped = list(NOISY)
    gapped[-6] = math.nan
    with_spike = burst_growth(spiked, 1, 0.9, 100)
    assert with_spike.spikes == 1
    assert with_spike == dataclasses.replace(burst_growth(gapped, 1, 0.9, 100), spikes=1)
    p = _plan(workload(**WL), history=RecentDemand(HIST.start, STEP, tuple(spiked)))
    assert step(p, "burst").after == pytest.approx(step(_plan(workload(**WL), history=RecentDemand(
        HIST.start, STEP, tuple(gapped))), "burst").after)
    assert step(p, "burst").after < 2000
    assert "1 one-point spike over 100x everything before it, gone the next point, left out" \
        in step(p, "burst").reason
