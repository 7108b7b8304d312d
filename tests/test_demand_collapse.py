"""Demand collapse: a sudden fall far below everything known is held as an outage or a broken
metric until `scaling.collapse_confirm` has passed (scaler.safety.check_collapse, planner step 7).

Cases:
- the pure check, by hand (per_replica 100, factor 10, confirm 30m): 29,421 -> 0 under a lower
  bound of 20,000 is a collapse (holds, starts now, the reason names value, bound and last
  sample); the boundary (R + 100) > 10 x (value + 100): a zero needs R > 900; a quiet-night zero
  (lower bound 0, or a few pods' worth) is normal; a slow ebb below the forecast (the last good
  sample already low) is not sudden; a fresh start (no last good sample, a restarted
  controller) relies on the lower bound alone; no trusted forecast (lower bound None) starts nothing, but
  a collapse under way continues without one; after `confirm` from its start it is accepted
  (no hold, start cleared, reason says so), a minute before it still holds; confirm 0s turns
  the rule off; an unusable sample (None) keeps the start; a recovered sample ends it;
- the planner: 40 replicas, demand 3,500 then 0 under a trusted forecast (yhat_lower 3,000):
  every tick of the first 30 minutes keeps 40 and the ladder top (no bitrate cut), the quality
  guard's reason names the collapse, memory keeps the start and the last good sample 3,500;
  at 30 minutes the low demand is accepted and the planner scales in by the normal step
  (40 -> 36, max_scale_down_fraction 0.1) and cuts caps one rung; with collapse_confirm 0s the
  first tick already steps down; a live SLI breach with scale_up still steps up during a collapse;
  the memory's collapse_since is in the plan's JSON;
- property (hypothesis, the scenarios of tests/test_planner_properties.py forced into an
  unconfirmed collapse): the target is never below the current replicas, no cap is cut, the
  guard is active and memory keeps the collapse's start and the pre-collapse sample;
- replay (5-minute synthetic trace, 6 h of zeros, a cheap median forecaster): Ebbtide's pods
  stay at their pre-outage count through the first collapse_confirm of the outage while the
  HPA baseline is at its minimum, and once confirmed Ebbtide scales in; with collapse_confirm 0s
  Ebbtide's pods fall within the same 30 minutes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given

from forecaster.series import Forecast, Series
from planner_helpers import MIN, NOW, obs, policy, sli, state, step, trusted, workload
from policies.loading import load_policy_text
from scaler.planning import plan
from scaler.plans import PlannerMemory, TrustedForecast
from scaler.replay import replay
from scaler.safety import COLLAPSE_FACTOR, check_collapse
from test_planner_properties import PROPS, RUNGS, TIERS, build, current_of, in_bounds, scenarios

CONFIRM = timedelta(minutes=30)


def check(value, lower, last, *, since=None, now=NOW, confirm=CONFIRM, per=100.0):
    return check_collapse(value, lower, last, per, now, since, confirm)


# --------------------------------------------------------------------------- the pure check
def test_sudden_fall_to_zero_under_the_lower_bound_is_a_collapse():
    c = check(0.0, 20_000.0, 29_421.0)
    assert c.holding and c.since == NOW
    assert "demand 0 " in c.reason and "lower bound 20000" in c.reason and "last good sample 29421" in c.reason
    assert "30m more" in c.reason


def test_boundary_is_one_pod_added_to_each_side():
    assert COLLAPSE_FACTOR == 10
    # a zero: (R + 100) > 10 x 100 needs R > 900
    assert not check(0.0, 900.0, 5_000.0).holding
    assert check(0.0, 901.0, 5_000.0).holding
    assert not check(0.0, 5_000.0, 900.0).holding
    # 50 observed: (R + 100) > 1500 needs R > 1400
    assert not check(50.0, 1_400.0, 1_401.0).holding
    assert check(50.0, 1_401.0, 1_401.0).holding


def test_quiet_night_zero_is_normal():
    assert check(0.0, 0.0, 2_000.0) == check(0.0, None, None)  # no hold, no start


def test_a_fresh_start_relies_on_the_lower_bound_alone():
    # A restarted controller has no last good sample: an outage under way (0 against a lower
    # bound of 20,000) is still held; a quiet zero under a near-zero bound is still normal.
    c = check(0.0, 20_000.0, None)
    assert c.holding and c.since == NOW and "last good sample unknown (a fresh start" in c.reason
    assert not check(0.0, 300.0, None).holding
    assert not check(5_000.0, 20_000.0, None).holding  # a quarter of the bound: not a collapse
    assert not check(0.0, 0.0, 2_000.0).holding
    assert not check(0.0, 300.0, 2_000.0).holding  # a lower bound of 3 pods' worth
    assert not check(0.0, 0.0, 2_000.0).since


def test_slow_ebb_below_the_forecast_is_not_sudden():
    # the forecast missed the ebb (lower bound 20,000) but the last good sample was 1,500 already
    c = check(1_000.0, 20_000.0, 1_500.0)
    assert not c.holding and c.since is None and c.reason == ""


def test_no_trusted_forecast_starts_nothing_but_a_collapse_under_way_continues():
    assert not check(0.0, None, 29_421.0).holding
    c = check(0.0, None, 29_421.0, since=NOW - 10 * MIN)
    assert c.holding and c.since == NOW - 10 * MIN
    assert "unknown (no trusted forecast)" in c.reason and "20m more" in c.reason
    assert not check(0.0, float("nan"), 29_421.0).holding  # a NaN bound is no bound


def test_confirmed_after_collapse_confirm():
    held = check(0.0, 20_000.0, 29_421.0, since=NOW - 29 * MIN)
    assert held.holding and held.since == NOW - 29 * MIN and "1m more" in held.reason
    done = check(0.0, 20_000.0, 29_421.0, since=NOW - 30 * MIN)
    assert not done.holding and done.since is None
    assert "confirmed after collapse_confirm 30m" in done.reason and "accepted as real" in done.reason


def test_confirm_zero_turns_the_rule_off():
    c = check(0.0, 20_000.0, 29_421.0, since=NOW - MIN, confirm=timedelta(0))
    assert not c.holding and c.since is None and c.reason == ""


def test_unusable_sample_keeps_the_start_and_recovery_ends_it():
    since = NOW - 5 * MIN
    c = check(None, 20_000.0, 29_421.0, since=since)
    assert not c.holding and c.since == since
    back = check(25_000.0, 20_000.0, 29_421.0, since=since)
    assert not back.holding and back.since is None and back.reason == ""


# --------------------------------------------------------------------------- the planner
BITRATE = {
    "ladder": [{"name": "1080p", "kbps": 4500}, {"name": "720p", "kbps": 2500}, {"name": "360p", "kbps": 600}],
    "tiers": [{"name": "core", "hd_floor": "720p"}, {"name": "edge", "hd_floor": "360p"}],
    "rules": [{"name": "always", "caps": {"core": "360p", "edge": "360p"}}],
}
TOP = {"core": "1080p", "edge": "1080p"}


def banded(level: float, lower: float, upper: float, *, start: datetime = NOW - timedelta(hours=1),
           hours: int = 26, step: timedelta = MIN) -> Forecast:
    """A flat forecast with a real band: yhat `level`, yhat_lower `lower`, yhat_upper `upper`."""
    n = int(timedelta(hours=hours) / step)
    idx = pd.date_range(pd.Timestamp(start), periods=n, freq=pd.Timedelta(step))
    frame = pd.DataFrame({"yhat": np.full(n, level), "yhat_lower": np.full(n, lower),
                          "yhat_upper": np.full(n, upper)}, index=idx)
    return Forecast(frame, model="test", upper_quantile=0.9)


FC = trusted(banded(3_500.0, 3_000.0, 4_000.0))


def tick_through(wl, minutes: int, *, current: int = 40, demand: float = 0.0, caps=None, slis=None):
    """Plan every minute from NOW for `minutes` ticks, applying each plan (replicas, caps, memory)."""
    pol = policy(wl, bitrate=BITRATE)
    mem = PlannerMemory(last_demand=3_500.0)
    caps = dict(caps or TOP)
    plans = []
    for k in range(minutes):
        now = NOW + k * MIN
        p = plan(FC, obs(demand, at=now, sli_at=now, slis=slis), wl, pol,
                 state(current, memory=mem, caps=caps), now)
        plans.append(p)
        current, mem = p.target_replicas, p.memory
        caps = {c.tier: c.rung for c in p.bitrate}
    return plans


def test_collapse_holds_replicas_and_caps_then_scales_in_by_the_normal_step():
    wl = workload(min_replicas=2, max_replicas=50, max_scale_down_fraction=0.1)
    plans = tick_through(wl, 32)
    for p in plans[:30]:  # NOW .. NOW + 29m
        assert p.target_replicas == 40 and p.guard_active
        assert {c.tier: c.rung for c in p.bitrate} == TOP
        assert p.memory.collapse_since == NOW and p.memory.last_demand == 3_500
        guard = step(p, "quality_guard")
        assert guard.before == 36 and guard.after == 40  # the step limit's 36 (sized for 0), frozen at 40
        assert "demand collapse since" in guard.reason and "lower bound 3000" in guard.reason
        assert "last good sample 3500" in guard.reason
    assert "29m more" in step(plans[1], "quality_guard").reason
    confirmed = plans[30]  # NOW + 30m
    assert not confirmed.guard_active
    assert confirmed.target_replicas == 36  # 40 - max(1, floor(40 x 0.1))
    assert step(confirmed, "step_limit").after == 36
    assert confirmed.memory.collapse_since is None and confirmed.memory.last_demand == 0
    assert any("confirmed after collapse_confirm 30m" in n for n in confirmed.notes)
    assert {c.tier: c.rung for c in confirmed.bitrate} == {"core": "720p", "edge": "720p"}  # one rung
    assert plans[31].target_replicas == 33 and not plans[31].guard_active  # 36 - 3: the normal pace
    assert plans[0].to_json()["memory"]["collapse_since"] == NOW.isoformat()


def test_collapse_confirm_zero_scales_in_at_once():
    wl = workload(min_replicas=2, max_replicas=50, max_scale_down_fraction=0.1)
    wl = wl.model_copy(update={"scaling": wl.scaling.model_copy(update={"collapse_confirm": timedelta(0)})})
    [p] = tick_through(wl, 1)
    assert p.target_replicas == 36 and not p.guard_active and p.memory.collapse_since is None


def test_breach_scale_up_still_works_during_a_collapse():
    wl = workload(min_replicas=2, max_replicas=50, max_scale_down_fraction=0.1,
                  quality=[sli(threshold=0.02, on_breach=["freeze_scale_in", "restore_bitrate", "scale_up"])])
    [p] = tick_through(wl, 1, slis={"rebuffering": 0.05})
    assert p.target_replicas == 44  # 40 + one step of 4
    assert p.memory.collapse_since == NOW


# --------------------------------------------------------------------------- property
@pytest.mark.slow
@PROPS
@given(scenarios())
def test_never_below_current_during_an_unconfirmed_collapse(s):
    s = in_bounds(replace(s, demand_age_s=0.0))
    tf, o, wl, pol, st, now = build(s)
    per = s.per_replica
    value = min(o.demand_now, per) if o.demand_now is not None and np.isfinite(o.demand_now) else 0.0
    value = max(0.0, value)
    floor_ = COLLAPSE_FACTOR * (value + per) - per  # references must be above this
    lower, last = floor_ * 1.01 + 1, floor_ * 3 + 1
    since = now - timedelta(minutes=int(s.fc_offset_min + 10) * 2)  # 0-24 minutes ago, within 30m
    fc = TrustedForecast(banded(lower * 1.5, lower, lower * 2, start=now - timedelta(hours=1)), True)
    o = replace(o, demand_now=value, demand_at=now)
    st = replace(st, memory=replace(st.memory, last_demand=last, collapse_since=since))
    p = plan(fc, o, wl, pol, st, now)
    assert p.guard_active
    assert p.target_replicas >= current_of(s)
    assert p.memory.collapse_since == since and p.memory.last_demand == last
    before = {t["name"]: RUNGS.index(c) if c else 0 for t, c in zip(TIERS, s.caps)}
    for cap in p.bitrate:
        assert RUNGS.index(cap.rung) <= before[cap.tier]


# --------------------------------------------------------------------------- replay
T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
STEP = timedelta(minutes=5)
OUTAGE = T0 + timedelta(days=2, hours=6)  # 6 h of zeros from here
REPLAY_POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 5m}
workloads:
  - name: live
    target: {kind: Deployment, namespace: default, name: live}
    demand: {query: 'viewers', per_replica: 1000}
    pod_startup: 90s
    scaling: {min_replicas: 2, max_replicas: 300, headroom: 0.15, collapse_confirm: 30m}
    forecast: {lookback: 2d, step: 5m, horizon: 6h, refit_interval: 6h, min_history: 1d, trust_bound: 5}
"""


class MedianBand:
    """Cheap fake forecaster: the last day's median as yhat, half of it as yhat_lower, its maximum
    as yhat_upper (a band that a few hours of zeros in the day do not pull to zero)."""

    name = "median_band"

    def fit(self, history: Series) -> "MedianBand":
        day = history.values.iloc[-int(timedelta(days=1) / history.step):]
        self.mid, self.hi = float(day.median()), float(day.max())
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        n = len(index)
        frame = pd.DataFrame({"yhat": np.full(n, self.mid), "yhat_lower": np.full(n, self.mid / 2),
                              "yhat_upper": np.full(n, self.hi)}, index=index)
        return Forecast(frame, self.name, upper_quantile=0.9)


def daily_replay(policy_text: str, at: datetime, hours: float, factor: float) -> pd.DataFrame:
    """The replay timeline (indexed by time) of 3 days of 5-minute traffic, 16k-24k viewers a
    day, times `factor` for `hours` from `at`, replayed with MedianBand from day 2 until an hour
    after that."""
    idx = pd.date_range(T0, T0 + timedelta(days=3), freq=STEP, inclusive="left")
    h = (idx - idx[0]) / pd.Timedelta(hours=1)
    values = 20_000.0 + 4_000.0 * np.sin(2 * np.pi * h / 24)
    values = np.where((idx >= at) & (idx < at + timedelta(hours=hours)), factor * values, values)
    trace = Series(pd.Series(values, index=idx), STEP, "daily")
    r = replay(trace, load_policy_text(policy_text), start=T0 + timedelta(days=2),
               end=at + timedelta(hours=hours + 1), make_model=MedianBand)
    return r.timeline.set_index(pd.to_datetime(r.timeline["ts"], utc=True))


def _outage_replay(policy_text: str) -> pd.DataFrame:
    return daily_replay(policy_text, OUTAGE, 6, 0.0)


def test_replay_holds_through_the_first_collapse_confirm_of_an_outage():
    tl = _outage_replay(REPLAY_POLICY)
    # the tick at OUTAGE still sees the last pre-outage point (metric lag 150 s); the next sees 0
    before = tl.loc[pd.Timestamp(OUTAGE), "replicas_ebbtide"]
    assert before >= 24  # sized for ~24k viewers at 1,000 per pod
    first = tl[(tl.index >= pd.Timestamp(OUTAGE)) & (tl.index < pd.Timestamp(OUTAGE + CONFIRM))]
    assert (first["replicas_ebbtide"] == before).all()
    assert first["replicas_hpa"].iloc[-1] == 2  # the HPA baseline is at its minimum by then
    late = tl.loc[pd.Timestamp(OUTAGE + timedelta(hours=5)), "replicas_ebbtide"]
    assert late < before / 2  # confirmed: the normal scale-down rules took it down


def test_replay_without_the_rule_scales_in_during_the_outage():
    tl = _outage_replay(REPLAY_POLICY.replace("collapse_confirm: 30m", "collapse_confirm: 0s"))
    before = tl.loc[pd.Timestamp(OUTAGE), "replicas_ebbtide"]
    first = tl[(tl.index >= pd.Timestamp(OUTAGE)) & (tl.index < pd.Timestamp(OUTAGE + CONFIRM))]
    assert first["replicas_ebbtide"].iloc[-1] < before
