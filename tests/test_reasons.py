"""Plan step reasons say what the step did and why, with numbers that agree with its value (the
reasons audit of 66,986 plans, twelve findings; each case fails on the texts before it).

Cases:
- step_limit after burst pods: only the pods that leave are said to go, the scale-down beyond
  them is counted without them, no "did not come" when no demand sample is usable (F1);
- stabilization: a count above every recommendation says so (the burst pods left out named),
  a 0s window says there is none, a hold at current says the highest is above it (F2);
- step_limit while scale_down_interval is pending: the last scale-down and the time left (F3);
- a held guard names the breach (SLI, reading, threshold, time, hold) and what it blocks (F4);
- factors in demand and burst reasons printed so their arithmetic gives the plan's pods (F5);
- missing demand: the adapter's cause (Observation.demand_problem) when given, else no claim
  that the query answered; the field leaves the inputs digest alone while empty (F6);
- bitrate:rules: conditions joined by "and", traffic and peak labelled, the ebb's event named (F7);
- plurals: 1 pod, 1 replica, 1 rung, the next 1h history point (F8; origins and steps of the
  trust reasons: tests/test_backtest.py, one-point spikes: tests/test_burst_smoothing.py);
- NaN, infinite and negative samples in words; fmt never prints 1e+04 (F9);
- stale samples give their age and max_staleness (F10);
- a jump believed or a collapse accepted is said in the demand step (F11);
- the worked example of docs/planner.md, every reason: tests/test_planning.py (F12).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

import numpy as np
import pytest

from planner_helpers import MIN, NOW, flat, forecast, obs, policy, sli, state, step, trusted, untrusted, workload
from policies.schema import QualitySli
from scaler.planning import _plain, plan
from scaler.plans import Observation, PlannerMemory, RecentDemand, SliReading
from scaler.safety import check_demand, check_slis, fmt, fmt_factors, limit_scale_down, plural, replicas_for, stabilise

STALE = timedelta(minutes=5)


def run(fc, observed, wl=None, current=8, memory=None, now=NOW, pol=None, **state_kw):
    wl = wl or workload()
    return plan(fc, observed, wl, pol or policy(wl), state(current, memory=memory, **state_kw), now)


# --------------------------------------------------------------------------- F1
def test_burst_pods_partly_released_are_counted_as_they_leave():
    # 161 running, 26 bought by the burst allowance; this tick's sizing wants 158: 3 go, 23 stay
    x, st = limit_scale_down(158, 161, 0.5, speculative=26)
    assert x == 158
    assert st.reason == ("3 of the 26 pods the burst allowance bought go at once: this tick's sizing wants 158 "
                         "(the other 23 stay)")


def test_the_scale_down_beyond_the_burst_pods_leaves_them_out():
    # 109 running, 32 burst pods; 53 wanted: 24 beyond them, within 54 (0.025 x 109 x 20 ticks)
    x, st = limit_scale_down(53, 109, 0.025, speculative=32, ticks=20, interval="scale_down_interval 5m")
    assert x == 53
    assert st.reason == (
        "the 32 pods the burst allowance bought go at once (the burst they were bought for did not come); "
        "the scale-down of 24 beyond them is within the step limit of 54 "
        "(54 pods: 0.025 of 109 for each of the 20 ticks of scale_down_interval 5m)")


def test_no_did_not_come_without_a_usable_demand_sample():
    x, st = limit_scale_down(11, 17, 0.1, speculative=6, demand_seen=False)
    assert "did not come" not in st.reason and "no usable demand sample this tick" in st.reason
    # through the planner: demand missing, 6 burst pods in memory (the guard then keeps them)
    p = run(trusted(flat(900)), Observation(None, None), current=17, memory=PlannerMemory(burst_pods=6))
    assert "did not come" not in step(p, "step_limit").reason


# --------------------------------------------------------------------------- F2
def test_stabilisation_does_not_call_a_count_above_the_window_its_highest():
    window = ((NOW, 120),)
    x, st = stabilise(158, 161, window, 5 * MIN, burst_excluded=38)
    assert x == 158
    assert st.reason == ("158 is above every recommendation of the last 5m (highest 120, without the 38 pods "
                         "only the burst allowance buys): stabilisation holds nothing back")
    assert stabilise(54, 60, ((NOW, 33),), timedelta(0))[1].reason == "no stabilisation window (stabilization 0s)"
    x, st = stabilise(11, 20, ((NOW - 4 * MIN, 25), (NOW, 11)), 5 * MIN)
    assert x == 20 and st.reason == (
        "kept 20: the highest recommendation of the last 5m, 25 at 2026-11-20T11:56:00+00:00, is not below it")


# --------------------------------------------------------------------------- F3
def test_a_pending_scale_down_interval_names_the_last_scale_down_and_the_time_left():
    wl = workload(max_replicas=50)
    wl = wl.model_copy(update={"scaling": wl.scaling.model_copy(update={"scale_down_interval": 5 * MIN})})
    mem = PlannerMemory(last_step_down_at=NOW - timedelta(seconds=15), burst_pods=2)
    p = run(untrusted(), obs(1000), wl=wl, current=15, memory=mem)
    s = step(p, "step_limit")
    assert (s.before, s.after) == (11, 13)
    assert s.reason == ("the 2 pods the burst allowance bought go at once (the burst they were bought for did not "
                        "come); the scale-down beyond them, to 11, is deferred: last scale-down at "
                        "2026-11-20T11:59:45+00:00, scale_down_interval 5m (4m45s left); kept 13")


# --------------------------------------------------------------------------- F4
def test_a_held_guard_names_its_breach_and_what_it_blocks():
    wl = workload(quality=[sli(threshold=0.01, hold="15m")])
    breach = run(trusted(flat(900)), obs(900, slis={"rebuffering": 0.05}), wl=wl, current=12)
    assert breach.memory.guard_breach == ("SLI rebuffering in breach (0.05 above 0.01) at "
                                          "2026-11-20T12:00:00+00:00, hold 15m")
    later = NOW + 3 * MIN
    held = run(trusted(flat(900, start=later)), obs(900, at=later, slis={"rebuffering": 0.005}, sli_at=later),
               wl=wl, current=12, memory=breach.memory, now=later)
    assert held.guard_active
    assert step(held, "quality_guard").reason == (
        "blocked scale-in, kept 12: guard held until 2026-11-20T12:15:00+00:00 after the last breach "
        "(SLI rebuffering in breach (0.05 above 0.01) at 2026-11-20T12:00:00+00:00, hold 15m): "
        "no scale-in (freeze_scale_in) and bitrate caps at the ladder top (restore_bitrate)")
    assert held.memory.guard_breach == breach.memory.guard_breach
    over = NOW + 15 * MIN
    done = run(trusted(flat(900, start=over)), obs(900, at=over, slis={"rebuffering": 0.005}, sli_at=over),
               wl=wl, current=12, memory=held.memory, now=over)
    assert not done.guard_active and done.memory.guard_breach == ""


# --------------------------------------------------------------------------- F5
def _pods_from_burst_reason(reason: str, headroom: float, per: float) -> int:
    m = re.match(r"sized for demand \S+: observed (\S+) x burst allowance (\S+) / (\S+),", reason)
    assert m, reason
    level, growth, inside = map(float, m.groups())
    return replicas_for(level * growth / inside, headroom, per)


@pytest.mark.parametrize("demand", [1000.0, 24_390.0, 100_000.0, 243_901.0])
def test_the_burst_reasons_arithmetic_gives_the_plans_pods(demand):
    # growth 1.5 over the next hourly point, headroom inside 1.1 ** (150 / 3600) = 1.00398
    # ("1" at 3 digits: 100000 x 1.5 / 1 would be 1650 pods, the plan buys 1644)
    history = RecentDemand(NOW - timedelta(hours=12) + MIN, timedelta(hours=1),
                           tuple(x * demand / 1000 for x in (900.0, 1400.0, 900.0, 900.0, 900.0, 1400.0, 900.0,
                                                            900.0, 900.0, 900.0, 900.0)))
    wl = workload(burst_smoothing=False, max_replicas=5000)
    p = run(untrusted(), obs(demand, at=NOW - timedelta(seconds=30), recent_demand=history), wl=wl,
            current=math.ceil(demand / 100))  # running pods serve it: no absurd jump
    assert _pods_from_burst_reason(step(p, "burst").reason, 0.1, 100) == step(p, "headroom").after


def test_the_demand_reasons_arithmetic_gives_the_plans_pods():
    # the audit's case: U 88482 when observed, 111450 over the lead window, per 2500, 90683
    # observed: "x 1.25" gives 113979 (57 pods); the plan sizes 114206 (58)
    wl = workload(per_replica=2500, headroom=0.25, max_replicas=800)
    fc = forecast([88482.0, 111450.0, 111450.0] + [111450.0] * 60)
    p = run(trusted(fc), obs(90683.0), wl=wl, current=60)
    s = step(p, "demand")
    m = re.match(r"sized for demand \S+: \(observed (\S+) \+ one pod's (\S+)\) x expected growth (\S+) - ",
                 s.reason)
    o, per, g = map(float, m.groups())
    assert replicas_for((o + per) * g - per, 0.25, 2500) == step(p, "headroom").after == 58
    assert s.reason.endswith(f"; growth (111450 + 2500) / (88482 + 2500) = {m.group(3)}")


def test_fmt_factors_keeps_short_factors_short():
    assert fmt_factors([1.1], lambda f: 980 * f[0] - 100, lambda d: replicas_for(d, 0.1, 100)) == ["1.1"]
    assert fmt_factors([1.359575, 1.031158], lambda f: 243901 * f[0] / f[1],
                       lambda d: replicas_for(d, 0.25, 2500)) == ["1.3596", "1.0312"]


# --------------------------------------------------------------------------- F6
def test_missing_demand_says_why_when_the_adapter_knows():
    failed = Observation(None, None, demand_problem="query 'sum(viewers)' failed: timed out after 1s")
    p = run(trusted(flat(900)), failed, current=12)
    assert step(p, "quality_guard").reason == (
        "blocked scale-in, kept 12: demand data missing (query 'sum(viewers)' failed: timed out after 1s)")
    unknown = run(trusted(flat(900)), Observation(None, None), current=12)
    reason = step(unknown, "quality_guard").reason
    assert "returned no sample" not in reason and "the query failed or returned nothing" in reason
    nan_sample = check_demand(None, NOW, NOW, STALE, [])  # the controller's NaN: a time, no value
    assert nan_sample.problem == ("demand data missing (the sample from 2026-11-20T12:00:00+00:00 holds no finite "
                                  "number)")


def test_an_empty_demand_problem_leaves_the_inputs_digest_as_before():
    o = obs(900)
    assert _plain(o) == [900, NOW.isoformat(), [], [], None, None, None]  # the fields it had before
    assert _plain(PlannerMemory()) == [[], None, None, None, [], None, 0, None, None, None]
    p = run(trusted(flat(900)), o)
    q = run(trusted(flat(900)), Observation(900, NOW, demand_problem="partial answer"))
    assert p.inputs_digest != q.inputs_digest  # when set, it is an input like any other


# --------------------------------------------------------------------------- F7
EBB_BITRATE = {
    "ladder": [{"name": "1080p", "kbps": 4500}, {"name": "720p", "kbps": 2500}, {"name": "480p", "kbps": 1200}],
    "tiers": [{"name": "core", "hd_floor": "720p"}, {"name": "edge", "hd_floor": "480p"}],
    "rules": [{"name": "ebb", "after_event": True, "traffic_below": 0.5, "caps": {"edge": "480p"}}],
}
ENDED = {"name": "singles-day", "kind": "sale", "start": (NOW - timedelta(days=3)).isoformat(),
         "peak": (NOW - timedelta(days=2, hours=12)).isoformat(), "end": (NOW - timedelta(days=2)).isoformat()}


def test_bitrate_rules_label_traffic_peak_and_the_ebbs_event():
    wl = workload()
    pol = policy(wl, events=[ENDED], bitrate=EBB_BITRATE)
    observed = run(trusted(flat(300)), obs(400, lookback_peak=1000.0), wl=wl, pol=pol)
    assert step(observed, "bitrate:rules").reason == (
        "rule ebb applies: traffic 400 (the demand observed now) below 0.5 x peak 1000 (the highest point of the "
        "demand history over the forecast lookback 28d) and in the ebb, 2d after event singles-day ended at "
        f"{ENDED['end']}")
    assert step(observed, "bitrate:edge").reason.startswith("rule ebb applies (bitrate:rules) and caps edge at 480p;")
    forecast_traffic = run(trusted(flat(450)), obs(400, lookback_peak=800.0), wl=wl, pol=pol)
    assert step(forecast_traffic, "bitrate:rules").reason.startswith(
        "rule ebb: traffic 450 (the forecast's yhat over the next 1m) not below 0.5 x peak 800 (the highest point")


# --------------------------------------------------------------------------- F8
def test_counts_of_one_are_singular():
    assert plural(1, "pod") == "1 pod" and plural(2, "pod") == "2 pods" and plural(0, "rung") == "0 rungs"
    assert limit_scale_down(5, 10, 0.05)[1].reason == (
        "limited scale-down from 10 to 9 (at most 1 pod per tick, max_scale_down_fraction 0.05)")
    one = limit_scale_down(10, 11, 0.5, speculative=1)[1].reason
    assert one.startswith("the 1 pod the burst allowance bought goes at once (the burst it was bought for")
    assert step(run(untrusted(), obs(50), current=1), "headroom").reason.endswith("= 1 replica")
    wl = workload()
    cut = dict(EBB_BITRATE, rules=[{"name": "always", "caps": {"edge": "480p"}}])
    p = run(trusted(flat(300)), obs(300), wl=wl, pol=policy(wl, bitrate=cut), caps={"edge": "1080p"})
    assert "(at most 1 rung per tick)" in step(p, "bitrate:edge").reason


# --------------------------------------------------------------------------- F9
@pytest.mark.parametrize(("value", "text"), [
    (math.nan, "not a number"), (math.inf, "infinite"), (-3.0, "negative: -3"), (-2500.4, "negative: -2500"),
])
def test_absurd_samples_in_words(value, text):
    assert check_demand(value, NOW, NOW, STALE, [100]).problem == f"demand data absurd ({text})"


def test_absurd_sli_in_words_and_fmt_without_exponent():
    q = check_slis([QualitySli.model_validate(sli("a"))], [_reading("a", -0.5)], NOW, STALE)
    assert q.data_problems == ("SLI a absurd (negative: -0.5; quality SLIs are ratios, seconds or counts, >= 0)",)
    assert (fmt(9999.7), fmt(9999.5), fmt(-9999.7), fmt(1234.4)) == ("10000", "10000", "-10000", "1234")


def _reading(name, value, at=NOW):
    return SliReading(name, value, at)


# --------------------------------------------------------------------------- F10
def test_stale_samples_give_their_age_and_max_staleness():
    c = check_demand(3.0, NOW - timedelta(minutes=17, seconds=30), NOW, STALE, [])
    assert c.problem == ("demand data stale (sample 17m30s old (from 2026-11-20T11:42:30+00:00); "
                         "max_staleness 5m)")
    future = check_demand(3.0, NOW + 6 * MIN, NOW, STALE, []).problem
    assert "sample time 2026-11-20T12:06:00+00:00 is 6m in the future" in future
    q = check_slis([QualitySli.model_validate(sli("a"))], [_reading("a", 0.1, NOW - 12 * MIN)], NOW, STALE)
    assert q.data_problems == ("SLI a stale (sample 12m old (from 2026-11-20T11:48:00+00:00); max_staleness 5m)",)


# --------------------------------------------------------------------------- F11
def test_a_believed_jump_is_said_where_it_is_sized():
    first = run(trusted(flat(900)), obs(200_000), current=10, memory=PlannerMemory(last_demand=800))
    later = NOW + MIN
    second = run(trusted(flat(900, start=later)), obs(200_000, at=later), current=10, memory=first.memory,
                 now=later)
    demand = step(second, "demand").reason
    assert demand.startswith("sized for demand 200000:")
    assert ("; demand jump since 2026-11-20T12:00:00+00:00 believed after jump_confirm 1m: 200000 is over 100x "
            "every known level, highest 1000; taken for traffic and sized for") in demand
    assert "believed after jump_confirm 1m" not in step(first, "demand").reason


def test_an_accepted_collapse_is_said_where_it_is_sized():
    fc = flat(3500)
    fc.frame["yhat_lower"] = np.full(len(fc.frame), 3000.0)
    mem = PlannerMemory(last_demand=3500.0, collapse_since=NOW - 30 * MIN)
    p = run(trusted(fc), obs(0.0), current=40, memory=mem)
    assert "confirmed after collapse_confirm 30m" in step(p, "demand").reason
    assert "accepted as real" in step(p, "demand").reason
