"""The planner end to end, with hand-computed plans (per_replica 100, headroom 0.1, tick 1m,
pod start-up 60s, so the lead window is 2 minutes).

Cases:
- sizing: observed demand times the growth the forecast quantile expects over the lead window
  (a jump inside it counts, one after it does not); a forecast level above the observation buys
  nothing; untrusted forecast: no growth; missing demand: the forecast level; observed demand
  above the forecast wins; headroom rounding (1000 x 1.1 / 100 = 11).
- clamp to min/max with nomad-style reasons; step limit; stabilisation window; scale-down
  cooldown after a scale-up only; scale-up cooldown (the demand observed now is never delayed).
- the inputs digest of equal policies held in different objects is equal.
- quality guard: breach freezes scale-in and holds for `hold`; expiry; scale_up on breach, once
  per pod start-up, a minute's step whatever the tick; stale, missing and absurd demand; missing SLI reading.
- untrusted forecast: reactive sizing with the trust reasons; no demand -> hold; a forecast that
  ends before now is not used.
- events: pre-scaling before a ramp, not too early, during the ramp; with `event_lookahead` only
  the ramp's forecast that far ahead (hand-computed), the peak's once the window reaches it,
  nothing for a ramp beyond it; hold near an event start
  without a trusted forecast.
- a forecast trusted on its growth only (`level_trusted` False): the ramp is bought for at least
  the observed demand x its growth (a level too low), its own level when that is higher or no
  demand is observed; the bitrate peak leaves its level out (no cut it alone would cause).
- HPA-owned workloads: minReplicas written, HPA max honoured, minReplicas >= 1, freeze at the
  replicas the HPA runs.
- memory carried between ticks; equal inputs -> equal plans and digest; JSON output; bitrate in
  the plan (guard restores it; after_event rules only in an ebb); `now` without a zone refused.
- the worked example of docs/planner.md, step by step, every reason as the docs table shows it.
- burst allowance: while the lead window reaches an unobserved history point, observed demand
  x the recent history's q-growth / (1 + headroom) ** duty (reactive and trusted alike; the
  forecast's growth wins when higher; burst_quantile, when set, instead of quantile); none when the lead window stays in
  the observed point, with burst_lookback 0s, with too little history inside burst_lookback,
  or with an empty history (no step without one); pods bought by the allowance
  alone stay out of the stabilisation window and the cooldown, are remembered as burst_pods,
  and go at once (beyond the step limit) when the observation does not need them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from planner_helpers import (
    MIN, NOW, flat, forecast, growth_only, obs, policy, sli, state, step, trusted, untrusted, workload,
)
from scaler.planning import LEVEL_UNTRUSTED, plan
from scaler.plans import PlannerMemory, RecentDemand, SliReading


def run(fc, observed, wl=None, current=8, memory=None, now=NOW, pol=None, **state_kw):
    wl = wl or workload()
    pol = pol or policy(wl)
    return plan(fc, observed, wl, pol, state(current, memory=memory, **state_kw), now)


# --------------------------------------------------------------------------- sizing
def test_scale_up_for_observed_demand_times_forecast_growth():
    p = run(trusted(forecast([800, 900, 1000] + [1000] * 60)), obs(800), current=8)
    # growth over the lead window (1000 + 100) / (800 + 100) = 1.222, on the observation offset as the ratio is:
    # (800 + 100) x 1.222 - 100 = 1000, the forecast's own level there; x 1.1 / 100 = 11
    assert p.target_replicas == 11
    assert p.apply_via == "scale"
    assert step(p, "demand").before == 1000
    assert step(p, "demand").after == pytest.approx((800 + 100) * 1100 / 900 - 100)
    assert step(p, "headroom").after == 11
    assert "1000" in step(p, "demand").reason and "2m" in step(p, "demand").reason
    assert p.memory.last_scale_up_at == NOW and p.memory.last_scale_down_at is None
    assert p.memory.recommendations == ((NOW, 11),)
    assert p.memory.last_demand == 800
    assert p.forecast_trusted and p.data_ok and not p.guard_active


def test_jump_inside_lead_window_counts_but_not_after_it():
    inside = [500, 500, 1500] + [500] * 60  # 1500 at now + 2m: inside [now, now + 60s + 1m]
    after = [500, 500, 500, 1500] + [500] * 60  # 1500 at now + 3m: outside
    # growth (1500 + 100) / (500 + 100) = 2.667: ((400 + 100) x 2.667 - 100) x 1.1 / 100 = 13.6 -> 14
    assert run(trusted(forecast(inside)), obs(400), current=8).target_replicas == 14
    # no growth: 400 x 1.1 / 100 -> 5, but one tick may remove at most max(1, floor(8 x 0.1)) = 1 pod
    p = run(trusted(forecast(after)), obs(400), current=8)
    assert step(p, "headroom").after == 5
    assert p.target_replicas == 7


def test_forecast_level_above_observed_demand_buys_nothing():
    # the observation settles the level: a forecast 20% above it adds no pods
    p = run(trusted(flat(1200)), obs(1000), current=8)
    assert step(p, "demand").after == 1000 and p.target_replicas == 11


def test_untrusted_forecast_growth_is_not_used_and_missing_demand_uses_the_forecast():
    fc = forecast([500, 500, 1500] + [500] * 60)
    assert run(untrusted(fc), obs(400), current=8).target_replicas == 7  # reactive: 5, one step down
    p = run(trusted(fc), obs(None), current=8)
    assert step(p, "demand").after == 1500 and p.target_replicas == 17  # guard: no scale-in; 1650/100


def test_observed_demand_above_forecast_wins():
    p = run(trusted(flat(500)), obs(1200), current=8)
    assert step(p, "demand").after == 1200
    assert p.target_replicas == 14  # 1320 / 100


def test_headroom_rounding_does_not_buy_a_pod():
    assert run(trusted(flat(1000)), obs(1000), current=11).target_replicas == 11


# --------------------------------------------------------------------------- limits and pacing
def test_clamp_to_max_and_min():
    p = run(trusted(flat(5000)), obs(5000), current=40)
    assert p.target_replicas == 50
    assert step(p, "clamp").reason == (
        "capped count from 55 to 50 to stay within limits (min_replicas 1, max_replicas 50)"
    )
    p = run(trusted(flat(0)), obs(0), wl=workload(min_replicas=2), current=2)
    assert step(p, "clamp").before == 0 and p.target_replicas == 2


@pytest.mark.parametrize(("fraction", "expected"), [(0.1, 36), (0.25, 30), (0.0, 39)])
def test_scale_down_step_limit(fraction, expected):
    p = run(trusted(flat(1000)), obs(1000), wl=workload(max_scale_down_fraction=fraction), current=40)
    assert step(p, "clamp").after == 11
    assert p.target_replicas == expected
    assert p.memory.last_scale_down_at == NOW
    assert p.memory.recommendations == ((NOW, 11),)


def test_stabilisation_holds_at_highest_recent_recommendation():
    mem = PlannerMemory(recommendations=((NOW - 6 * MIN, 45), (NOW - 4 * MIN, 25), (NOW - 2 * MIN, 30)))
    p = run(trusted(flat(1000)), obs(1000), wl=workload(max_scale_down_fraction=0.5), current=40, memory=mem)
    assert step(p, "step_limit").after == 20
    assert step(p, "stabilization").after == 30  # 45 is older than the 5m window
    assert p.target_replicas == 30
    assert p.memory.recommendations == ((NOW - 4 * MIN, 25), (NOW - 2 * MIN, 30), (NOW, 11))


def test_scale_down_cooldown_after_a_scale_up_only():
    recent = PlannerMemory(last_scale_up_at=NOW - 5 * MIN)
    p = run(trusted(flat(1000)), obs(900), current=40, memory=recent)
    assert p.target_replicas == 40
    assert "cooldown" in step(p, "cooldown").reason and "5m left" in step(p, "cooldown").reason
    assert p.memory.last_scale_up_at == recent.last_scale_up_at  # no action taken
    older = PlannerMemory(last_scale_down_at=NOW - 10 * MIN)
    assert run(trusted(flat(1000)), obs(900), current=40, memory=older).target_replicas == 36
    # a scale-down a minute ago does not hold the next step down
    just_down = PlannerMemory(last_scale_down_at=NOW - MIN, last_scale_up_at=NOW - 11 * MIN)
    assert run(trusted(flat(1000)), obs(900), current=40, memory=just_down).target_replicas == 36


def test_scale_up_cooldown_never_delays_demand_observed_now():
    wl = workload(scale_up_cooldown="10m")
    mem = PlannerMemory(last_scale_up_at=NOW - 2 * MIN)
    # observed a minute ago at forecast 900; 2000 ahead: growth 2100 / 1000 = 2.1
    rising = trusted(forecast([900] + [2000] * 100, start=NOW - MIN))
    # forecast wants ceil(((900 + 100) x 2.1 - 100) x 1.1 / 100) = 22, demand now needs ceil(990/100) = 10: only 10
    p = run(rising, obs(900, at=NOW - MIN), wl=wl, current=8, memory=mem)
    assert step(p, "cooldown").before == 22 and p.target_replicas == 10
    # demand now fits 8 pods: the forecast-driven scale-up waits
    assert run(rising, obs(700, at=NOW - MIN), wl=wl, current=8, memory=mem).target_replicas == 8
    # the scale-DOWN cooldown never touches a scale-up: ceil(((700 + 100) x 2.1 - 100) x 1.1 / 100) = 18
    down = PlannerMemory(last_scale_down_at=NOW - MIN)
    assert run(rising, obs(700, at=NOW - MIN), current=8, memory=down).target_replicas == 18


# --------------------------------------------------------------------------- quality guard
def test_breach_freezes_scale_in_and_holds():
    wl = workload(quality=[sli(threshold=0.02, hold="15m")])
    p = run(trusted(flat(1000)), obs(900, slis={"rebuffering": 0.05}), wl=wl, current=40)
    assert p.target_replicas == 40 and p.guard_active
    assert "rebuffering in breach" in step(p, "quality_guard").reason
    assert p.memory.guard_until == NOW + 15 * MIN
    assert p.memory.guard_actions == ("freeze_scale_in", "restore_bitrate")
    # five minutes later the SLI is fine, but the guard holds
    later = NOW + 5 * MIN
    p2 = run(trusted(flat(1000, start=later)), obs(900, at=later, slis={"rebuffering": 0.01}, sli_at=later),
             wl=wl, current=40, memory=p.memory, now=later)
    assert p2.target_replicas == 40 and p2.guard_active
    assert "held until" in step(p2, "quality_guard").reason
    # after the hold, scale-in resumes (one step)
    end = NOW + 16 * MIN
    p3 = run(trusted(flat(1000, start=end)), obs(900, at=end, slis={"rebuffering": 0.01}, sli_at=end),
             wl=wl, current=40, memory=p2.memory, now=end)
    assert not p3.guard_active and p3.target_replicas == 36
    assert p3.memory.guard_until is None


def test_breach_below_threshold_direction():
    wl = workload(quality=[sli("hd-share", threshold=0.6, breach_when="below")])
    assert run(trusted(flat(1000)), obs(900, slis={"hd-share": 0.5}), wl=wl, current=40).target_replicas == 40
    assert run(trusted(flat(1000)), obs(900, slis={"hd-share": 0.7}), wl=wl, current=40).target_replicas == 36


def test_breach_scale_up_one_step_once_per_pod_startup():
    wl = workload(quality=[sli(on_breach=["freeze_scale_in", "restore_bitrate", "scale_up"])])
    p = run(trusted(flat(500)), obs(400, slis={"rebuffering": 0.05}), wl=wl, current=40)
    assert p.target_replicas == 44  # one step = max(1, floor(40 x 0.1)) = 4
    assert p.memory.last_scale_up_at == NOW
    # 30 s later the new pods are still starting (pod start-up 60s): no further step
    t = NOW + timedelta(seconds=30)
    p2 = run(trusted(flat(500, start=t - MIN)), obs(400, at=t, slis={"rebuffering": 0.05}, sli_at=t),
             wl=wl, current=44, memory=p.memory, now=t)
    assert p2.target_replicas == 44
    assert "waits" in step(p2, "quality_guard").reason
    # A 15 s tick with a quarter of the fraction keeps the step up a minute's worth: 4 ticks of
    # 0.025 x 40 = 4 pods, not max(1, floor(40 x 0.025)) = 1.
    quick = workload(max_scale_down_fraction=0.025, quality=wl.model_dump(mode="json")["quality"])
    p3 = run(trusted(flat(500)), obs(400, slis={"rebuffering": 0.05}), wl=quick, current=40,
             pol=policy(quick, tick="15s"))
    assert p3.target_replicas == 44 and "scaled up one step (+4)" in step(p3, "quality_guard").reason


def test_stale_and_missing_demand_freeze_scale_in():
    stale = run(trusted(flat(1000)), obs(900, at=NOW - 10 * MIN), current=40)
    assert stale.target_replicas == 40 and not stale.data_ok and stale.guard_active
    assert "stale" in step(stale, "quality_guard").reason
    missing = run(trusted(flat(1000)), obs(None, at=None), current=40)
    assert missing.target_replicas == 40 and "missing" in step(missing, "quality_guard").reason
    # a stale demand sample is not remembered as the last good level
    assert stale.memory.last_demand is None
    # ...but the trusted forecast still scales up
    assert run(trusted(flat(2000)), obs(900, at=NOW - 10 * MIN), current=8).target_replicas == 22


def test_missing_sli_reading_freezes_scale_in():
    wl = workload(quality=[sli()])
    p = run(trusted(flat(1000)), obs(900), wl=wl, current=40)
    assert p.target_replicas == 40 and not p.data_ok
    assert "SLI rebuffering missing" in step(p, "quality_guard").reason
    # no hold for data problems: the guard is not remembered
    assert p.memory.guard_until is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -5.0, 200_000.0])
def test_absurd_demand_is_not_used_and_freezes(value):
    # references: forecast 900, last good sample 800, 10 pods x 100 = 1000 -> absurd above 100 000
    mem = PlannerMemory(last_demand=800)
    p = run(trusted(flat(900)), obs(value), current=10, memory=mem)
    assert not p.data_ok and "absurd" in step(p, "quality_guard").reason
    assert step(p, "demand").after == 900
    assert p.target_replicas == 10
    assert p.memory.last_demand == 800


def test_an_absurd_jump_that_lasts_jump_confirm_is_believed():
    # A 250x jump (a viral spike, or a broken exporter): held on the tick it comes, its start
    # remembered; a minute later (jump_confirm 1m, the default) the same level is traffic.
    first = run(trusted(flat(900)), obs(200_000), current=10, memory=PlannerMemory(last_demand=800))
    assert not first.data_ok and first.target_replicas == 10
    assert "held 1m more as a possible broken metric (jump_confirm 1m" in step(first, "quality_guard").reason
    assert first.memory.jump_since == NOW and first.memory.last_demand == 800
    later = NOW + MIN
    second = run(trusted(flat(900, start=later)), obs(200_000, at=later), current=10, memory=first.memory,
                 now=later)
    assert second.data_ok and second.target_replicas == 50  # sized for it, capped by max_replicas
    assert any("believed after jump_confirm 1m" in n and "taken for traffic" in n for n in second.notes)
    assert second.memory.jump_since is None and second.memory.last_demand == 200_000
    # jump_confirm 0s: believed on its first tick
    wl = workload()
    wl = wl.model_copy(update={"scaling": wl.scaling.model_copy(update={"jump_confirm": timedelta(0)})})
    at_once = run(trusted(flat(900)), obs(200_000), wl=wl, current=10, memory=PlannerMemory(last_demand=800))
    assert at_once.data_ok and at_once.target_replicas == 50


def test_large_but_plausible_jump_is_believed():
    p = run(trusted(flat(900)), obs(50_000), current=10, memory=PlannerMemory(last_demand=800))
    assert p.data_ok and p.target_replicas == 50


# --------------------------------------------------------------------------- untrusted forecast
def test_untrusted_forecast_sizes_reactively():
    p = run(untrusted(flat(5000)), obs(950), current=8)
    assert p.target_replicas == 11
    s = step(p, "reactive")
    assert "WAPE 0.52" in s.reason and s.after == 950
    assert not p.forecast_trusted and p.notes == ("rolling WAPE 0.52 above trust bound 0.35",)
    assert run(untrusted(None, "too little history"), obs(950), current=8).target_replicas == 11


def test_untrusted_without_demand_holds():
    p = run(untrusted(None), obs(None, at=None), current=17)
    assert p.target_replicas == 17
    assert "holding 17" in step(p, "reactive").reason
    assert p.replicas_change == 0


def test_forecast_ending_before_now_is_not_used():
    old = flat(5000, hours=1, start=NOW - timedelta(hours=2))
    p = run(trusted(old), obs(950), current=8)
    assert not p.forecast_trusted and p.target_replicas == 11
    assert "no point" in step(p, "reactive").reason


# --------------------------------------------------------------------------- events
EVENT = {"name": "flash-sale", "kind": "sale", "start": (NOW + timedelta(seconds=90)).isoformat(),
         "peak": (NOW + timedelta(hours=1)).isoformat(), "end": (NOW + timedelta(hours=3)).isoformat()}


def _ramp_forecast():
    """500 until now + 2m, then a linear ramp to 3000 at now + 60m, then 3000."""
    minutes = np.arange(24 * 60)
    values = np.where(minutes <= 2, 500.0, np.minimum(3000.0, 500 + (minutes - 2) * 2500 / 58))
    return forecast(values)


def test_pre_scales_before_event_ramp():
    wl = workload()
    with_event = policy(wl, events=[EVENT])
    p = run(trusted(_ramp_forecast()), obs(450), wl=wl, current=6, pol=with_event)
    assert step(p, "headroom").after == 5  # no growth in the lead window: 450 x 1.1 / 100 -> 5
    assert step(p, "event").after == 33  # 3000 x 1.1 / 100
    assert p.target_replicas == 33
    assert "flash-sale" in step(p, "event").reason
    # without the calendar entry, only the lead window counts (one step down to 5)
    assert run(trusted(_ramp_forecast()), obs(450), wl=wl, current=6).target_replicas == 5


def _with_lookahead(wl, minutes: int):
    return wl.model_copy(update={"scaling": wl.scaling.model_copy(
        update={"event_lookahead": timedelta(minutes=minutes)})})


def test_event_lookahead_buys_the_ramp_only_that_far_ahead():
    wl = _with_lookahead(workload(), 10)
    p = run(trusted(_ramp_forecast()), obs(450), wl=wl, current=6, pol=policy(wl, events=[EVENT]))
    # the ramp's forecast up to now + 10 m: 500 + (10 - 2) x 2500 / 58 = 844.8; x 1.1 / 100 = 9.29 -> 10
    assert step(p, "event").after == 10 and p.target_replicas == 10
    assert "flash-sale" in step(p, "event").reason and "within the event lookahead (10m)" in step(p, "event").reason
    # 50 minutes in, the window reaches the peak (3000): the peak's capacity, as without a lookahead
    t = NOW + 50 * MIN
    p = run(trusted(_ramp_forecast()), obs(2500, at=t), wl=wl, current=28, now=t, pol=policy(wl, events=[EVENT]))
    assert step(p, "event").after == 33
    # a lookahead shorter than the time to the ramp's start: nothing bought for it yet
    short = _with_lookahead(workload(), 1)
    p = run(trusted(_ramp_forecast()), obs(450), wl=short, current=6, pol=policy(short, events=[EVENT]))
    assert "beyond the event lookahead (1m)" in step(p, "event").reason
    assert step(p, "event").after == step(p, "event").before == 5


def test_no_pre_scaling_long_before_the_ramp_and_kept_during_it():
    wl = workload()
    far = dict(EVENT, start=(NOW + 10 * MIN).isoformat())
    p = run(trusted(flat(500)), obs(500), wl=wl, current=6, pol=policy(wl, events=[far]))
    assert p.target_replicas == 6 and step(p, "event").after == 6
    # 20 minutes into the ramp, the forecast still peaks at 3000 by the event's peak
    t = NOW + 20 * MIN
    p = run(trusted(_ramp_forecast()), obs(1200, at=t), wl=wl, current=33, now=t,
            pol=policy(wl, events=[EVENT]))
    assert p.target_replicas == 33


def test_a_holiday_is_no_ramp_to_pre_scale_for():
    """A holiday is a calendar-day effect the forecast carries (docs/policy.md: no ramp, no ebb).
    The planner took it for a ramp up to its "peak", a calendar midpoint: on a real bike-share
    trace it held 33-71 replicas from midnight on July 4 where demand needed 1-6 (the HPA 10)."""
    wl = workload()
    day = NOW.replace(hour=0)
    holiday = {"name": "national-day", "kind": "holiday", "start": day.isoformat(),
               "peak": (day + timedelta(hours=18)).isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    as_sale = {**holiday, "name": "day-sale", "kind": "sale"}
    sale = run(trusted(_ramp_forecast()), obs(450), wl=wl, current=6, pol=policy(wl, events=[as_sale]))
    assert step(sale, "event").after == 33 and "day-sale" in step(sale, "event").reason  # as a sale: its ramp
    p = run(trusted(_ramp_forecast()), obs(450), wl=wl, current=6, pol=policy(wl, events=[holiday]))
    assert "national-day" not in step(p, "event").reason and step(p, "event").after == step(p, "event").before
    assert p.target_replicas == run(trusted(_ramp_forecast()), obs(450), wl=wl, current=6).target_replicas == 5


def test_untrusted_forecast_holds_near_event_start():
    wl = workload()
    pol = policy(wl, events=[EVENT])
    p = run(untrusted(None), obs(500), wl=wl, current=20, pol=pol)
    assert step(p, "event").after == 20 and p.target_replicas == 20
    # away from any event start, reactive scale-in proceeds (one step)
    assert run(untrusted(None), obs(500), wl=wl, current=20).target_replicas == 18


# --------------------------------------------------------------------------- trusted on growth, not on level
def test_a_forecast_trusted_on_growth_only_pre_scales_at_least_from_the_observed_demand():
    wl = workload()
    pol = policy(wl, events=[EVENT])
    # The ramp forecast says 500 now; 1000 is observed: its level is half the demand.
    level = run(trusted(_ramp_forecast()), obs(1000), wl=wl, current=12, pol=pol)
    assert step(level, "event").after == 33  # its level trusted: its own peak, 3000 x 1.1 / 100
    growth = run(growth_only(_ramp_forecast()), obs(1000), wl=wl, current=12, pol=pol)
    # not trusted on its level: 1000 x (3000 + 100) / (500 + 100) = 5166.7; x 1.1 / 100 = 56.8 -> 57
    assert step(growth, "event").after == 57 and growth.target_replicas == 50  # max_replicas
    assert LEVEL_UNTRUSTED in step(growth, "event").reason and "5167" in step(growth, "event").reason
    assert growth.forecast_trusted and step(growth, "demand").after == step(level, "demand").after
    # a level too high (250 observed) still buys its own peak: capacity, never quality, is at stake
    high = run(growth_only(_ramp_forecast()), obs(250), wl=wl, current=6, pol=pol)
    assert step(high, "event").after == 33
    # with no demand observed there is nothing to anchor on: its level, as before
    blind = run(growth_only(_ramp_forecast()), obs(None), wl=wl, current=6, pol=pol)
    assert step(blind, "event").after == 33


def test_bitrate_peak_ignores_a_forecast_trusted_on_growth_only():
    quiet = dict(BITRATE, rules=[{"name": "quiet", "traffic_below": 0.5, "caps": {"edge": "480p"}}])
    wl = workload()
    pol = policy(wl, bitrate=quiet)
    caps = {"core": "1080p", "edge": "1080p"}
    fc = forecast([900] * 60 + [6000] * 60, yhat=[900] * 60 + [6000] * 60)  # peaks at 6000 later
    seen = obs(800, lookback_peak=1200)
    # Its level counted: 900 now against a 6000 peak is quiet (0.15 < 0.5): the edge tier is cut.
    assert {c.tier: c.rung for c in run(trusted(fc), seen, wl=wl, pol=pol, caps=caps).bitrate}["edge"] == "720p"
    # Not trusted on its level: the peak is the 1200 seen; 900 now (0.75): no cut.
    growth = run(growth_only(fc), seen, wl=wl, pol=pol, caps=caps)
    assert {c.tier: c.rung for c in growth.bitrate}["edge"] == "1080p"


# --------------------------------------------------------------------------- HPA
def test_hpa_owned_moves_min_replicas():
    wl = workload(hpa="edge-hpa")
    p = run(trusted(flat(2000)), obs(2000), wl=wl, current=12, hpa_min=5, hpa_max=60)
    assert p.apply_via == "hpa_min_replicas"
    assert p.current_replicas == 5 and p.target_replicas == 22
    capped = run(trusted(flat(5000)), obs(5000), wl=wl, current=12, hpa_min=5, hpa_max=30)
    assert capped.target_replicas == 30 and "HPA maxReplicas 30" in step(capped, "clamp").reason


def test_hpa_detected_from_cluster_and_min_at_least_one():
    wl = workload(min_replicas=0)
    p = run(trusted(flat(0)), obs(0), wl=wl, current=1, hpa_min=1, hpa_max=10)
    assert p.apply_via == "hpa_min_replicas" and p.target_replicas == 1
    assert run(trusted(flat(0)), obs(0), wl=wl, current=1).target_replicas == 0


def test_hpa_guard_freezes_at_running_replicas():
    wl = workload(hpa="edge-hpa", quality=[sli()])
    p = run(trusted(flat(500)), obs(400, slis={"rebuffering": 0.05}), wl=wl, current=14, hpa_min=10, hpa_max=40)
    assert p.target_replicas == 14  # minReplicas raised to the 14 pods the HPA runs


# --------------------------------------------------------------------------- plan as data
def test_equal_inputs_equal_plans_and_digest():
    wl = workload(quality=[sli()])
    a = run(trusted(flat(950)), obs(800, slis={"rebuffering": 0.01}), wl=wl, current=8)
    b = run(trusted(flat(950)), obs(800, slis={"rebuffering": 0.01}), wl=wl, current=8)
    assert a == b and len(a.inputs_digest) == 16
    c = run(trusted(flat(950)), obs(801, slis={"rebuffering": 0.01}), wl=wl, current=8)
    assert c.inputs_digest != a.inputs_digest
    d = run(trusted(flat(951)), obs(800, slis={"rebuffering": 0.01}), wl=wl, current=8)
    assert d.inputs_digest != a.inputs_digest


def test_digest_tells_long_recent_histories_apart_by_every_value():
    # 48 hourly points: long enough to be digested as float64 bytes, not walked value by value.
    values = tuple(900.0 + (i % 5) for i in range(48))
    history = RecentDemand(NOW - timedelta(hours=49), timedelta(hours=1), values)
    same = RecentDemand(NOW - timedelta(hours=49), timedelta(hours=1), tuple(list(values)))
    one_off = RecentDemand(NOW - timedelta(hours=49), timedelta(hours=1), values[:-1] + (905.0,))
    with_nan = RecentDemand(NOW - timedelta(hours=49), timedelta(hours=1), values[:-1] + (float("nan"),))
    a, b, c, d = (run(untrusted(), bursty(1000, history=h)) for h in (history, same, one_off, with_nan))
    assert a.inputs_digest == b.inputs_digest
    assert len({a.inputs_digest, c.inputs_digest, d.inputs_digest}) == 3


def test_digest_is_equal_for_equal_policies_in_different_objects_and_changes_with_them():
    wl = workload()
    a = run(trusted(flat(950)), obs(950), wl=wl, pol=policy(wl))
    b = run(trusted(flat(950)), obs(950), wl=workload(), pol=policy(workload()))
    assert a.inputs_digest == b.inputs_digest
    pol = policy(wl)
    changed = pol.model_copy(update={"dry_run": not pol.dry_run})
    assert run(trusted(flat(950)), obs(950), wl=wl, pol=changed).inputs_digest != a.inputs_digest
    assert run(trusted(flat(950)), obs(950), wl=workload(headroom=0.2), pol=pol).inputs_digest != a.inputs_digest


def test_plan_to_json_round_trips_through_json():
    p = run(trusted(flat(950)), obs(950), current=8)
    d = json.loads(json.dumps(p.to_json()))
    assert d["target_replicas"] == 11
    assert [s["step"] for s in d["steps"]] == [
        "demand", "headroom", "event", "clamp", "step_limit", "stabilization", "cooldown",
        "quality_guard", "limits",
    ]  # no recent demand in the observation: no burst step
    assert d["memory"]["last_demand"] == 950


BITRATE = {
    "ladder": [{"name": "1080p", "kbps": 4500}, {"name": "720p", "kbps": 2500},
               {"name": "480p", "kbps": 1200}],
    "tiers": [{"name": "core", "hd_floor": "720p"}, {"name": "edge", "hd_floor": "480p"}],
    "rules": [{"name": "always", "caps": {"core": "480p", "edge": "480p"}}],
}


def test_plan_carries_bitrate_and_guard_restores_it():
    wl = workload(quality=[sli()])
    pol = policy(wl, bitrate=BITRATE)
    caps = {"core": "720p", "edge": "720p"}
    fine = run(trusted(flat(950)), obs(800, slis={"rebuffering": 0.01}), wl=wl, pol=pol, caps=caps)
    assert {c.tier: c.rung for c in fine.bitrate} == {"core": "720p", "edge": "480p"}
    assert step(fine, "bitrate:edge").after == "480p"
    breach = run(trusted(flat(950)), obs(800, slis={"rebuffering": 0.05}), wl=wl, pol=pol, caps=caps)
    assert {c.tier: c.rung for c in breach.bitrate} == {"core": "1080p", "edge": "1080p"}
    stale_sli = obs(800, slis={"rebuffering": 0.01}, sli_at=NOW - 10 * MIN)
    assert {c.rung for c in run(trusted(flat(950)), stale_sli, wl=wl, pol=pol, caps=caps).bitrate} == {"1080p"}
    assert run(trusted(flat(950)), obs(800), pol=policy(workload())).bitrate is None


def test_sli_reading_without_value_is_missing():
    wl = workload(quality=[sli()])
    o = obs(900)
    o = type(o)(o.demand_now, o.demand_at, (SliReading("rebuffering", None, None),))
    assert run(trusted(flat(1000)), o, wl=wl, current=40).target_replicas == 40


def test_worked_example_in_docs():
    """docs/planner.md walks through exactly this plan; keep both in step."""
    wl = workload(max_scale_down_fraction=0.5, quality=[sli(threshold=0.02)])
    fc = forecast([900, 950, 1000] + [700] * 60)
    mem = PlannerMemory(recommendations=((NOW - 6 * MIN, 45), (NOW - 4 * MIN, 25), (NOW - 2 * MIN, 30)),
                        last_scale_down_at=NOW - 12 * MIN)
    p = run(trusted(fc), obs(880, slis={"rebuffering": 0.011}), wl=wl, current=40, memory=mem)
    # growth (1000 + 100) / (900 + 100) = 1.1 on the 880 observed, offset as the ratio: (880 + 100) x 1.1 - 100
    assert step(p, "demand").before == 1000 and step(p, "demand").after == pytest.approx(978)
    assert step(p, "headroom").after == 11  # ceil(978 x 1.1 / 100) = ceil(10.758)
    assert [(s.name, s.before, s.after) for s in p.steps][2:] == [
        ("event", 11, 11), ("clamp", 11, 11),
        ("step_limit", 11, 20), ("stabilization", 20, 30), ("cooldown", 30, 30),
        ("quality_guard", 30, 30), ("limits", 30, 30),
    ]
    assert [s.reason for s in p.steps] == [
        "sized for demand 978: (observed 880 + one pod's 100) x expected growth 1.1 - 100 over the next 2m (pod "
        "start-up 1m + one tick): forecast yhat_upper (q0.9) peaks at 1000 there, 900 when demand was observed; "
        "growth (1000 + 100) / (900 + 100) = 1.1",
        "ceil(978 x (1 + 0.1) / 100 per replica) = ceil(10.758) = 11 replicas",
        "no event ramp within the lead time",
        "11 is within limits (min_replicas 1, max_replicas 50)",
        "limited scale-down from 40 to 20 (at most 20 pods per tick, max_scale_down_fraction 0.5)",
        "held scale-down at 30: the highest recommendation of the last 5m (30 at 2026-11-20T11:58:00+00:00)",
        "no cooldown in force (no scale-up within the last 10m)",
        "quality SLIs within thresholds and data fresh",
        "30 is within limits (min_replicas 1, max_replicas 50)",
    ]
    # the table in docs/planner.md shows these reasons, word for word
    docs = (Path(__file__).parent.parent / "docs" / "planner.md").read_text()
    table = docs.split("## Worked example", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in table.splitlines() if line.startswith("| ")]
    assert [(r[0].strip(), r[-1].strip()) for r in rows[1:]] == [(s.name, s.reason) for s in p.steps]
    assert p.target_replicas == 30 and p.replicas_change == -10
    assert p.memory.recommendations == ((NOW - 4 * MIN, 25), (NOW - 2 * MIN, 30), (NOW, 11))
    assert p.memory.last_scale_down_at == NOW and p.memory.last_demand == 880


def test_after_event_bitrate_rule_only_in_the_ebb():
    ebb_rule = dict(BITRATE, rules=[{"name": "ebb", "after_event": True, "caps": {"edge": "480p"}}])
    ended = {"name": "singles-day", "kind": "sale", "start": (NOW - timedelta(days=3)).isoformat(),
             "peak": (NOW - timedelta(days=2, hours=12)).isoformat(), "end": (NOW - timedelta(days=2)).isoformat()}
    wl = workload()
    caps = {"core": "720p", "edge": "720p"}
    p = run(trusted(flat(950)), obs(800), wl=wl, pol=policy(wl, events=[ended], bitrate=ebb_rule), caps=caps)
    assert {c.tier: c.rung for c in p.bitrate}["edge"] == "480p"
    # a second event about to start ends the ebb: no cut, and the edge tier is restored
    p = run(trusted(flat(950)), obs(800), wl=wl, pol=policy(wl, events=[ended, EVENT], bitrate=ebb_rule), caps=caps)
    assert {c.tier: c.rung for c in p.bitrate}["edge"] == "1080p"
    # more than 14 days after the end: no cut
    old = dict(ended, start=(NOW - timedelta(days=20)).isoformat(), peak=(NOW - timedelta(days=19)).isoformat(),
               end=(NOW - timedelta(days=15)).isoformat())
    p = run(trusted(flat(950)), obs(800), wl=wl, pol=policy(wl, events=[old], bitrate=ebb_rule), caps=caps)
    assert {c.tier: c.rung for c in p.bitrate}["edge"] == "1080p"


def test_now_without_zone_is_refused():
    with pytest.raises(ValueError, match="zone"):
        run(trusted(flat(950)), obs(800), now=NOW.replace(tzinfo=None))


def test_forecast_index_unit_does_not_matter():
    fc = forecast([500, 500, 1500] + [500] * 60)
    micro = type(fc)(fc.frame.set_axis(fc.frame.index.as_unit("us")), model="test")
    assert run(trusted(micro), obs(400), current=8).target_replicas == 14
    assert run(trusted(fc), obs(400), current=8).target_replicas == 14


# Hourly history of 11 complete points ending at NOW - 59m; the observation at NOW - 30s lies in
# the next point (not yet complete) and the 2-minute lead window reaches the one after it.
# Growth (next + 100) / (now + 100): 1.5, 0.667, 1, 1, 1.5, 0.667, 1, 1, 1, 1 -> "higher" q0.9 = 1.5.
HISTORY = RecentDemand(NOW - timedelta(hours=12) + MIN, timedelta(hours=1),
                       (900.0, 1400.0, 900.0, 900.0, 900.0, 1400.0, 900.0, 900.0, 900.0, 900.0, 900.0))


def bursty(demand: float, at=NOW - timedelta(seconds=30), history=HISTORY):
    return obs(demand, at=at, recent_demand=history)


def point(**kw):
    """The workload with the burst allowance grown from the observation itself (burst_smoothing
    off), as the cases below are worked by hand; smoothed levels: tests/test_burst_smoothing.py."""
    return workload(burst_smoothing=False, **kw)


def test_burst_allowance_sizes_for_the_learnt_growth():
    p = run(untrusted(), bursty(1000), wl=point())
    assert step(p, "reactive").after == 1000
    # 1000 x 1.5, with the headroom counted inside for the allowance's duty: the observation at
    # 11:59:30 and the lead window to 12:02 span 2m30s of the 1h step, duty 150 / 3600
    assert step(p, "burst").after == pytest.approx(1500 / 1.1 ** (150 / 3600))  # 1494.05
    assert "q0.9 of the growth realised over the next 1h history point in the last 7d is 1.5 (10 pairs)" in \
        step(p, "burst").reason
    assert "on 4% of the time" in step(p, "burst").reason
    assert step(p, "headroom").after == 17  # ceil(1494.05 x 1.1 / 100) = ceil(16.43)
    assert run(trusted(flat(1000)), bursty(1000), wl=point()).target_replicas == 17  # flat forecast: growth 1, burst wins


def test_burst_quantile_overrides_the_quantile():
    # sorted growth 0.667, 0.667, 1 x 6, 1.5, 1.5: "higher" q0.5 is element ceil(0.5 x 9) = 5: 1
    p = run(untrusted(), bursty(1000), wl=point(burst_quantile=0.5))
    assert step(p, "burst").after == 1000 and "q0.5 of the growth" in step(p, "burst").reason
    assert run(untrusted(), bursty(1000), wl=point(quantile=0.5, burst_quantile=0.9)).target_replicas == 17


def test_forecast_growth_above_the_burst_allowance_wins():
    fc = forecast([1000] + [1900] * 60, start=NOW - MIN)  # (1900 + 100) / (1000 + 100) = 1.818 > 1.5
    p = run(trusted(fc), bursty(1000), wl=point())
    assert step(p, "demand").after == pytest.approx((1000 + 100) * 2000 / 1100 - 100)
    assert step(p, "burst").after == step(p, "demand").after
    assert "already covers" in step(p, "burst").reason


def test_no_burst_allowance_without_an_unobserved_point_history_or_lookback():
    early = NOW - 10 * MIN  # observed at 11:49:30, lead window to 11:52: both in [11:01, 12:01)
    at_start = run(untrusted(), bursty(1000, at=early - timedelta(seconds=30)), wl=point(), now=early)
    assert at_start.target_replicas == 11 and "no unobserved demand" in step(at_start, "burst").reason
    off = run(untrusted(), bursty(1000), wl=point(burst_lookback="0s"))
    assert off.target_replicas == 11 and "burst_lookback 0s" in step(off, "burst").reason
    short = run(untrusted(), bursty(1000), wl=point(burst_lookback="5h"))  # 3 pairs in the last 5h
    assert short.target_replicas == 11 and "too little recent history" in step(short, "burst").reason
    empty = run(untrusted(), bursty(1000, history=RecentDemand(NOW, timedelta(hours=1), ())), wl=point())
    assert empty.target_replicas == 11 and step(empty, "burst").reason == "no recent demand history"
    none = run(untrusted(), obs(1000, at=NOW - timedelta(seconds=30)))
    assert none.target_replicas == 11 and "burst" not in [s.name for s in none.steps]


def test_pods_bought_for_a_burst_alone_are_remembered_not_stabilised_nor_cooled_down():
    p = run(untrusted(), bursty(1000), wl=point(), current=11)  # 1000 observed needs 11; the allowance 17
    assert p.target_replicas == 17
    assert p.memory.burst_pods == 6  # 17 - 11
    assert p.memory.recommendations[-1] == (NOW, 11)  # the window holds what observed demand needs
    assert p.memory.last_scale_up_at is None  # a scale-up for the burst alone starts no cooldown
    grew = run(untrusted(), bursty(1000), wl=point(), current=8)  # observed demand alone needs 3 more pods
    assert grew.target_replicas == 17 and grew.memory.burst_pods == 6 and grew.memory.last_scale_up_at == NOW


def test_burst_pods_go_at_once_when_the_burst_does_not_come():
    mem = PlannerMemory(burst_pods=6)
    # 900 observed needs ceil(990 / 100) = 10; 17 running of which 6 were bought for the burst:
    # they go at once, then at most max(1, floor(17 x 0.1)) = 1 more: 17 - 6 - 1 = 10
    p = run(untrusted(), obs(900), current=17, memory=mem)
    assert p.target_replicas == 10 and p.memory.burst_pods == 0
    assert step(p, "step_limit").reason == (
        "the 6 pods the burst allowance bought go at once (the burst they were bought for did not come); "
        "the scale-down of 1 beyond them is within the step limit of 1")
    low = run(untrusted(), obs(500), current=17, memory=mem)  # needs 6: 17 - 6 - 1 = 10 at most
    assert low.target_replicas == 10
    plain = run(untrusted(), obs(900), current=17)  # no burst pods: one step of 1
    assert plain.target_replicas == 16


def test_a_rise_from_a_night_at_zero_is_bought_before_it_is_seen():
    """The planner sweep: demand 0 at night, a rise the trusted forecast expects inside the lead
    window. Sized as observed x growth it was 0 x 31 = 0: nothing bought until the rise was seen.
    The growth is a ratio of levels offset by one pod's worth (anchored_growth); it now applies to
    the observation offset the same way, so the forecast's own level comes out."""
    p = run(trusted(forecast([0, 0, 3000] + [3000] * 60)), obs(0), current=2)
    assert step(p, "demand").after == pytest.approx(3000)  # (0 + 100) x (3000 + 100) / (0 + 100) - 100
    assert p.target_replicas == 33  # ceil(3000 x 1.1 / 100)
    # no growth expected: the observation itself, offset or not
    assert step(run(trusted(flat(0)), obs(0), current=2), "demand").after == 0
