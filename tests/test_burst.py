"""The burst allowance on fine-step history: its duty, and the headroom counted inside the
allowance as far as it stands (scaler.safety.burst_duty, scaler.planning step 1b). Values
worked by hand.

Cases:
- burst_duty: (lead end - observation) / step, capped at 1, never negative, step must be > 0
  (hourly 0.0708, 5-minute 0.85 for a 4m15s span);
- the planner on 5-minute history: the allowance is observed x B / (1 + headroom) ** duty, so
  capacity is observed x B x (1 + headroom) ** (1 - duty) (hand-computed pods, against
  observed x B x (1 + headroom) before); the reason names the quantile, the pairs, the duty and
  the divisor; on hourly history (duty 0.07) almost the whole headroom stays on top; a divided
  allowance below the observation leaves what the demand step sized.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from planner_helpers import MIN, NOW, obs, policy, state, step, untrusted, workload
from scaler.planning import plan
from scaler.plans import RecentDemand
from scaler.safety import burst_duty

def test_burst_duty_is_the_share_of_a_step_the_lead_window_reaches_past_the_observed_point():
    span = timedelta(seconds=255)  # metric lag 2m30s + lead 1m45s
    assert burst_duty(NOW, NOW + span, timedelta(hours=1)) == pytest.approx(255 / 3600)
    assert burst_duty(NOW, NOW + span, timedelta(minutes=5)) == pytest.approx(0.85)
    assert burst_duty(NOW, NOW + span, timedelta(minutes=2)) == 1.0
    assert burst_duty(NOW, NOW - MIN, timedelta(minutes=5)) == 0.0
    with pytest.raises(ValueError):
        burst_duty(NOW, NOW + span, timedelta(0))


# 5-minute history, 21 complete points from 10:10 to 11:50 (the observation at 11:57:30 lies in
# [11:55, 12:00), the lead window to 12:01:45 reaches [12:00, 12:05)): 800, 1400, 600 repeated.
# Growth (next + 100) / (base + 100), per_replica 100: 7 x 1500 / 900 = 1.6667 (from 800),
# 7 x 700 / 1500 = 0.4667 (from 1400), 6 x 900 / 700 = 1.2857 (from 600); 20 pairs, sorted
# 0.4667 x 7, 1.2857 x 6, 1.6667 x 7: "higher" q0.9 = element ceil(0.9 x 19) = 18 -> 1.6667.
FIVE = RecentDemand(NOW - timedelta(minutes=110), timedelta(minutes=5), tuple([800.0, 1400.0, 600.0] * 7))
# The level is the observation itself here (burst_smoothing off): smoothed levels are
# tests/test_burst_smoothing.py's.
WL = workload(headroom=0.25, pod_startup="45s", quantile=0.9, burst_smoothing=False)  # lead 1m45s; span 4m15s -> duty 0.85
INSIDE = 1.25 ** 0.85  # 1.2087


def five_min(demand: float, history: RecentDemand = FIVE):
    return obs(demand, at=NOW - timedelta(seconds=150), recent_demand=history)


def test_on_five_minute_history_the_headroom_counts_inside_the_allowance_for_its_duty():
    p = plan(untrusted(), five_min(1000), WL, policy(WL), state(8), NOW)
    b = step(p, "burst")
    assert b.after == pytest.approx(1000 * (1500 / 900) / INSIDE)  # 1378.9
    # capacity 1000 x 1.6667 x 1.25 ** 0.15 = 1723.6 -> ceil(17.236) = 18 pods (with the whole
    # headroom on top of the allowance it was ceil(20.83) = 21)
    assert step(p, "headroom").after == 18 and p.target_replicas == 18
    # printed to 4 digits: 1000 x 1.67 / 1.21 would be 1380.2, not the 1378.9 sized for
    assert "q0.9 of the growth realised over the next 5m history point in the last 7d is 1.667 (20 pairs)" in b.reason
    assert "on 85% of the time" in b.reason and f"/ {INSIDE:.4g}" in b.reason


def test_on_hourly_history_almost_the_whole_headroom_stays_on_top():
    hourly = RecentDemand(NOW - timedelta(hours=22), timedelta(hours=1), tuple([800.0, 1400.0, 600.0] * 7))
    p = plan(untrusted(), five_min(1000, hourly), WL, policy(WL), state(8), NOW)
    # observed at 11:57:30 in [11:00, 12:00); the lead window to 12:01:45 reaches 12:00: duty 255 / 3600
    inside = 1.25 ** (255 / 3600)  # 1.0159
    assert step(p, "burst").after == pytest.approx(1000 * (1500 / 900) / inside)  # 1640.6
    assert p.target_replicas == 21  # ceil(1640.6 x 1.25 / 100) = ceil(20.51)
    assert "on 7% of the time" in step(p, "burst").reason


def test_a_divided_allowance_below_the_observation_leaves_the_sized_demand():
    # headroom 2: 3 ** 0.85 = 2.544 > 1.6667, so observed x B / 2.544 < observed: nothing added
    big = workload(headroom=2.0, pod_startup="45s", quantile=0.9)
    p = plan(untrusted(), five_min(1000), big, policy(big), state(8), NOW)
    assert step(p, "burst").after == 1000 and "already covers" in step(p, "burst").reason
    assert p.target_replicas == 30  # ceil(1000 x 3 / 100)
