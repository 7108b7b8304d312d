"""Properties of the planner over random policies, forecasts, observations, memories, events
(with and without scaling.event_lookahead) and bitrate caps (hypothesis, 200 examples each).

Cases:
- the target is never below min nor above max (nor above the HPA's maxReplicas);
- no scale-down step larger than max(1, floor(current x max_scale_down_fraction x ticks)) beyond
  the pods the burst allowance alone bought (memory.burst_pods), ticks being those of
  scale_down_interval when it is longer than a tick (else 1); within scale_down_interval of the
  last scale-down beyond the burst pods, no scale-down beyond them at all;
- the burst allowance (a recent demand history) never lowers the target;
- no scale-in and no bitrate cut during a quality breach, a held guard, or on stale, missing or
  absurd demand or SLI data;
- scale-up is always possible: demand observed now above what the current count serves and
  max not reached -> target > current, even during a breach or any cooldown;
- every tier (the core tier above all) stays at or above its HD floor;
- equal inputs give equal plans (and equal digests);
- the unit of demand does not matter: demand, forecast, recent demand, lookback peak and
  per_replica all x 8 or x 1/8 (exact in binary floating point) give the same replicas, bitrate
  caps and guard.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_helpers import MIN, NOW, forecast, policy, workload
from policies.units import parse_duration
from scaler.planning import plan
from scaler.plans import (
    Observation, PlannerMemory, PlanningState, RecentDemand, SliReading, TrustedForecast, WorkloadState,
)


PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LADDER = [{"name": "1080p", "kbps": 4500}, {"name": "720p", "kbps": 2500},
          {"name": "480p", "kbps": 1200}, {"name": "360p", "kbps": 600}]
RUNGS = [r["name"] for r in LADDER]
TIERS = [{"name": "core", "hd_floor": "720p"}, {"name": "silent", "hd_floor": "480p"},
         {"name": "edge", "hd_floor": "360p"}]
FLOOR = {t["name"]: RUNGS.index(t["hd_floor"]) for t in TIERS}
BITRATE = {
    "ladder": LADDER, "tiers": TIERS,
    "rules": [
        {"name": "always", "caps": {"core": "360p", "edge": "360p"}},
        {"name": "quiet", "traffic_below": 0.5, "caps": {"silent": "360p"}},
        {"name": "ebb", "after_event": True, "caps": {"silent": "480p"}},
    ],
    "weak_network": {"cap": "360p"},
}


@dataclass(frozen=True)
class Scenario:
    """Plain data from which the planner's inputs are built (twice, for the equality check)."""

    per_replica: float
    headroom: float
    min_replicas: int
    max_replicas: int
    fraction: float
    down_cooldown: str
    up_cooldown: str
    stabilization: str
    pod_startup: str
    slis: tuple[tuple[float, bool], ...]  # (threshold, scale_up on breach)
    sli_values: tuple[float | None, ...]
    sli_age_s: float
    hpa: bool
    hpa_min: int | None
    hpa_max: int | None
    running: int
    fc_trusted: bool
    fc_level_trusted: bool  # TrustedForecast.level_trusted (trusted on growth only when False)
    fc_shape: tuple[int, float, float, int, int | None] | None  # points, base, jump level, jump at, NaN at
    fc_offset_min: int
    demand: float | None
    demand_age_s: float
    recommendations: tuple[tuple[int, int], ...]  # (minutes ago, replicas)
    last_up_min: int | None
    last_down_min: int | None
    guard_until_min: int | None
    event_start_min: int | None
    caps: tuple[str | None, ...]
    loss: float | None
    lookback_peak: float | None
    history: tuple[float, ...] | None = None  # recent demand (burst allowance), None: not given
    history_step_min: int = 5
    history_offset_min: int = 0  # grid start shift: moves the observation against the grid
    burst_pods: int = 0
    down_interval: str = "0s"  # scaling.scale_down_interval (tick is 1m)
    last_step_down_min: int | None = None  # memory.last_step_down_at, minutes ago
    event_lookahead: str | None = None  # scaling.event_lookahead (None: up to the peak)


# No subnormal levels or factors (below 2.2e-308, never a demand figure): there x 0.125
# underflows, and the unit-invariance property found 0.5 x 5e-324 = 0 (a lookback peak: no
# bitrate cut) against 0.5 x 4e-323 > 0 (a cut). Absurd figures are drawn apart (NaN, inf, -1, 1e12).
LEVEL = st.floats(0, 1e5, allow_nan=False, allow_subnormal=False)
FACTOR = st.floats(0, 3, allow_nan=False, allow_subnormal=False)
# Options drawn as one choice each (hypothesis draws are the cost of these tests): durations
# (down cooldown, up cooldown, stabilisation, pod start-up), SLI set-ups, minutes around `now`
# that straddle the lead windows (1m30s, 2m, 6m), rung caps per tier.
TIMINGS = [(d, u, w, pod) for d in ("0s", "2m", "10m") for u in ("0s", "10m") for w in ("0s", "5m")
           for pod in ("30s", "60s", "5m")]
SLI_SETUPS = [(), ((0.5, False),), ((0.5, True),), ((0.2, False), (0.8, True))]
SLI_VALUES = [0.1, 0.1, 0.3, 0.9, None]  # mostly within thresholds
AGO_MIN = [None, 0, 1, 2, 3, 5, 9, 10, 11, 30]
GUARD_MIN = [None, None, None, -5, 0, 1, 15]
EVENT_MIN = [None, -180, -90, -7, -6, -2, -1, 0, 1, 2, 3, 5, 6, 7, 30, 90]
CAPS = [(a, b, c) for a in [None, *RUNGS] for b in [None, *RUNGS] for c in [None, *RUNGS]]


@st.composite
def scenarios(draw) -> Scenario:
    mn = draw(st.integers(0, 20))
    mx = draw(st.integers(max(1, mn), 200))
    hpa = draw(st.booleans())
    down, up, window, pod = draw(st.sampled_from(TIMINGS))
    slis = draw(st.sampled_from(SLI_SETUPS))
    per_replica = draw(st.floats(1, 1000))
    running = draw(st.integers(0, 250))
    # demand levels as multiples of what the running pods serve, so scale-in and scale-up are
    # both common (absolute levels mostly land on a limit)
    level = FACTOR.map(lambda f: f * max(running, 1) * per_replica)
    fc_shape = draw(st.none() | st.tuples(st.integers(1, 90), level, level, st.integers(0, 90),
                                          st.sampled_from([None, 0, 1, 2, 5, 60])))
    healthy = draw(st.sampled_from([True, True, False]))  # fresh, plausible data and no breach
    s = Scenario(
        per_replica=per_replica,
        headroom=draw(st.floats(0, 1)),
        min_replicas=mn,
        max_replicas=mx,
        fraction=draw(st.floats(0, 1)),
        down_cooldown=down,
        up_cooldown=up,
        stabilization=window,
        pod_startup=pod,
        slis=slis,
        sli_values=tuple(draw(st.sampled_from(SLI_VALUES)) for _ in slis),
        sli_age_s=draw(st.sampled_from([0.0, 30.0, 30.0, 600.0])),
        hpa=hpa,
        hpa_min=draw(st.none() | st.integers(1, 250)) if hpa else None,
        hpa_max=draw(st.none() | st.integers(1, 300)) if hpa else None,
        running=running,
        fc_trusted=draw(st.booleans()),
        fc_level_trusted=draw(st.booleans()),
        fc_shape=fc_shape,
        fc_offset_min=draw(st.integers(-10, 2)),
        demand=draw(st.one_of(level, level, LEVEL, st.none(), st.sampled_from([float("nan"), float("inf"), -1.0, 1e12]))),
        demand_age_s=draw(st.sampled_from([0.0, 45.0, 45.0, 400.0])),
        recommendations=tuple(draw(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 250)), max_size=3))),
        last_up_min=draw(st.sampled_from(AGO_MIN)),
        last_down_min=draw(st.sampled_from(AGO_MIN)),
        guard_until_min=draw(st.sampled_from(GUARD_MIN)),
        event_start_min=draw(st.sampled_from(EVENT_MIN)),
        caps=draw(st.sampled_from(CAPS)),
        loss=draw(st.sampled_from([None, 0.01, 0.05, 0.06, 0.5])),
        lookback_peak=draw(st.none() | LEVEL),
        history=draw(st.none() | st.lists(st.one_of(*[level] * 7, st.just(float("nan"))), min_size=24,
                                           max_size=60).map(tuple)),
        history_step_min=draw(st.sampled_from([1, 5, 60])),
        history_offset_min=draw(st.integers(-3, 3)),
        burst_pods=draw(st.integers(0, 60)),
        down_interval=draw(st.sampled_from(["0s", "0s", "1m", "5m", "7m30s"])),
        last_step_down_min=draw(st.sampled_from(AGO_MIN)),
        event_lookahead=draw(st.sampled_from([None, None, "1m", "10m", "2h"])),
    )
    if healthy:
        s = replace(s, sli_values=tuple(0.0 for _ in slis), sli_age_s=0.0, guard_until_min=None,
                    demand=draw(level), demand_age_s=0.0)
    return s


def build(s: Scenario):
    """(forecast, observation, workload, policy, state, now) from a scenario."""
    wl = workload(
        per_replica=s.per_replica, headroom=s.headroom, min_replicas=s.min_replicas,
        max_replicas=s.max_replicas, max_scale_down_fraction=s.fraction,
        scale_down_cooldown=s.down_cooldown, scale_up_cooldown=s.up_cooldown,
        stabilization=s.stabilization, pod_startup=s.pod_startup, hpa="edge-hpa" if s.hpa else None,
        quality=[{"name": f"sli-{i}", "query": "q", "threshold": t,
                  "on_breach": ["freeze_scale_in", "restore_bitrate"] + (["scale_up"] if up else [])}
                 for i, (t, up) in enumerate(s.slis)],
    )
    wl = wl.model_copy(update={"scaling": wl.scaling.model_copy(
        update={"scale_down_interval": parse_duration(s.down_interval),
                "event_lookahead": parse_duration(s.event_lookahead) if s.event_lookahead else None})})
    events = []
    if s.event_start_min is not None:
        start = NOW + timedelta(minutes=s.event_start_min)
        events.append({"name": "sale", "kind": "sale", "start": start.isoformat(),
                       "peak": (start + timedelta(hours=1)).isoformat(),
                       "end": (start + timedelta(hours=2)).isoformat()})
    pol = policy(wl, events=events, bitrate=BITRATE)
    fc = None
    if s.fc_shape is not None:
        n, base, jump, jump_at, nan_at = s.fc_shape
        values = np.where(np.arange(n) >= jump_at, jump, base)
        if nan_at is not None and nan_at < n:
            values[nan_at] = np.nan
        fc = forecast(values, start=NOW + timedelta(minutes=s.fc_offset_min))
    tf = TrustedForecast(fc, s.fc_trusted, () if s.fc_trusted else ("not trusted in this example",),
                         s.fc_level_trusted)
    sli_at = NOW - timedelta(seconds=s.sli_age_s)
    readings = tuple(SliReading(f"sli-{i}", v, sli_at if v is not None else None) for i, v in enumerate(s.sli_values))
    recent = None
    if s.history is not None:
        step = timedelta(minutes=s.history_step_min)
        recent = RecentDemand(NOW - len(s.history) * step + timedelta(minutes=s.history_offset_min), step, s.history)
    # demand_age_s is the sample's own age; the observation stands demand.lag before the sample
    o = Observation(
        s.demand, NOW - timedelta(seconds=s.demand_age_s) - wl.demand.lag if s.demand is not None else None, readings,
        tier_viewers=(("core", 100.0),), weak_network_loss=s.loss, lookback_peak=s.lookback_peak,
        recent_demand=recent, weak_network_loss_at=NOW,
    )
    mem = PlannerMemory(
        recommendations=tuple(sorted(((NOW - m * MIN, r) for m, r in s.recommendations), key=lambda x: x[0])),
        last_scale_up_at=None if s.last_up_min is None else NOW - s.last_up_min * MIN,
        last_scale_down_at=None if s.last_down_min is None else NOW - s.last_down_min * MIN,
        guard_until=None if s.guard_until_min is None else NOW + s.guard_until_min * MIN,
        guard_actions=("freeze_scale_in", "restore_bitrate") if s.guard_until_min is not None else (),
        burst_pods=s.burst_pods,
        last_step_down_at=None if s.last_step_down_min is None else NOW - s.last_step_down_min * MIN,
    )
    caps = tuple((t["name"], c) for t, c in zip(TIERS, s.caps) if c is not None)
    cluster = WorkloadState(s.running, s.running, s.hpa_min, s.hpa_max, caps)
    return tf, o, wl, pol, PlanningState(cluster, mem), NOW


def limits(s: Scenario) -> tuple[int, int]:
    lo, hi = s.min_replicas, s.max_replicas
    if s.hpa or s.hpa_min is not None:
        lo = max(lo, 1)
        if s.hpa_max is not None:
            hi = min(hi, s.hpa_max)
    return min(lo, hi), hi


def current_of(s: Scenario) -> int:
    return s.hpa_min if s.hpa_min is not None else s.running


def in_bounds(s: Scenario) -> Scenario:
    """The scenario with the current count (scale replicas or HPA minReplicas) inside the limits."""
    lo, hi = limits(s)
    cur = min(max(current_of(s), lo), hi)
    return replace(s, hpa_min=cur, running=max(s.running, cur)) if s.hpa_min is not None else replace(s, running=cur)


# --------------------------------------------------------------------------- properties
def assert_within_limits(s: Scenario, p) -> None:
    lo, hi = limits(s)
    assert lo <= p.target_replicas <= hi


def assert_step_limit(s: Scenario, p) -> None:
    cur = current_of(s)
    assert p.current_replicas == cur
    interval = parse_duration(s.down_interval)
    if interval <= MIN:  # tick 1m: one step per tick
        ticks = 1
    elif s.last_step_down_min is not None and s.last_step_down_min * MIN < interval:
        ticks = 0  # within the interval of the last scale-down beyond the burst pods
    else:
        ticks = math.floor(interval / MIN)
    allowed = max(1, math.floor(round(cur * s.fraction * ticks, 9))) if ticks else 0
    assert cur - p.target_replicas <= min(s.burst_pods, cur) + allowed
    stepped_down = p.target_replicas < cur - min(s.burst_pods, cur)
    assert p.memory.last_step_down_at == (NOW if stepped_down else
                                          None if s.last_step_down_min is None else NOW - s.last_step_down_min * MIN)
    assert 0 <= p.memory.burst_pods <= max(p.target_replicas, 0)


def assert_floors(p) -> None:
    assert [c.tier for c in p.bitrate] == [t["name"] for t in TIERS]
    for cap in p.bitrate:
        assert RUNGS.index(cap.rung) <= FLOOR[cap.tier]
        if cap.weak_network_rung is not None:
            assert RUNGS.index(cap.weak_network_rung) <= FLOOR[cap.tier]
        assert cap.egress_gbph is None or math.isfinite(cap.egress_gbph)


def assert_memory_window(p, window: timedelta) -> None:
    recs = p.memory.recommendations
    assert recs[-1][0] == p.now
    assert all(p.now - window < t <= p.now or t == p.now for t, _ in recs)
    assert np.all(np.diff([t.timestamp() for t, _ in recs]) >= 0)


@PROPS
@given(scenarios())
def test_invariants_of_every_plan(s):
    """Limits, floors and memory hold for any inputs; equal inputs give equal plans."""
    p = plan(*build(s))
    assert_within_limits(s, p)
    assert_floors(p)
    assert_memory_window(p, parse_duration(s.stabilization))
    again = plan(*build(s))
    assert again.inputs_digest == p.inputs_digest
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(p.to_json(), sort_keys=True)
    assert again.target_replicas == p.target_replicas and again.memory == p.memory and again.bitrate == p.bitrate


@PROPS
@given(scenarios())
def test_scale_down_step_never_larger_than_allowed(s):
    s = in_bounds(s)
    p = plan(*build(s))
    assert_step_limit(s, p)
    assert_within_limits(s, p)


@PROPS
@given(scenarios())
def test_burst_allowance_never_lowers_the_target(s):
    s = in_bounds(s)
    without = plan(*build(replace(s, history=None)))
    with_history = plan(*build(s))
    assert with_history.target_replicas >= without.target_replicas
    assert_step_limit(s, with_history)


GUARDS = st.sampled_from(["breach", "held", "stale_demand", "missing_demand", "nan_demand",
                          "missing_sli", "stale_sli"])


def guarded(s: Scenario, why: str) -> Scenario:
    """The scenario forced into one reason for the quality guard."""
    if why == "breach":
        return replace(s, slis=((0.5, False),), sli_values=(0.9,), sli_age_s=0.0)
    if why == "held":
        return replace(s, guard_until_min=10)
    if why == "stale_demand":
        return replace(s, demand=100.0, demand_age_s=400.0)
    if why == "missing_demand":
        return replace(s, demand=None)
    if why == "nan_demand":
        return replace(s, demand=float("nan"), demand_age_s=0.0)
    if why == "missing_sli":
        return replace(s, slis=((0.5, False),), sli_values=(None,))
    return replace(s, slis=((0.5, False),), sli_values=(0.1,), sli_age_s=600.0)


@PROPS
@given(scenarios(), GUARDS)
def test_no_scale_in_or_bitrate_cut_while_guarded(s, why):
    s = in_bounds(guarded(s, why))
    p = plan(*build(s))
    assert p.guard_active
    assert p.target_replicas >= current_of(s)
    before = {t["name"]: RUNGS.index(c) if c else 0 for t, c in zip(TIERS, s.caps)}
    for cap in p.bitrate:
        assert RUNGS.index(cap.rung) <= before[cap.tier], (why, cap)
    if why in {"breach", "stale_demand", "missing_demand", "nan_demand", "missing_sli", "stale_sli", "held"}:
        assert {c.rung for c in p.bitrate} == {RUNGS[0]}  # restore_bitrate: the ladder top


@PROPS
@given(scenarios(), st.floats(0.01, 10), st.sampled_from([None, "breach", "held"]))
def test_scale_up_always_possible(s, excess, why):
    s = in_bounds(s)
    if why:
        s = guarded(s, why)
    cur = current_of(s)
    lo, hi = limits(s)
    demand = max(cur, 1) * s.per_replica * (1 + excess)
    s = replace(s, demand=demand, demand_age_s=0.0)
    p = plan(*build(s))
    if cur < hi:
        assert p.target_replicas > cur
    else:
        assert p.target_replicas == hi


def in_other_units(s: Scenario, k: float) -> Scenario:
    """The same scenario with every demand figure (and what one replica serves) times `k`."""
    def times(v):
        return None if v is None else v * k
    shape = None if s.fc_shape is None else (s.fc_shape[0], s.fc_shape[1] * k, s.fc_shape[2] * k, *s.fc_shape[3:])
    return replace(s, per_replica=s.per_replica * k, fc_shape=shape, demand=times(s.demand),
                   lookback_peak=times(s.lookback_peak),
                   history=None if s.history is None else tuple(v * k for v in s.history))


@PROPS
@given(scenarios(), st.sampled_from([8.0, 0.125]))
def test_the_unit_of_demand_does_not_change_the_plan(s, k):
    """Requests per second or per minute, one replica's worth in the same unit: the same plan."""
    p, q = plan(*build(s)), plan(*build(in_other_units(s, k)))
    assert q.target_replicas == p.target_replicas
    assert [(c.tier, c.rung, c.weak_network_rung) for c in q.bitrate] == \
        [(c.tier, c.rung, c.weak_network_rung) for c in p.bitrate]
    assert q.memory.guard_until == p.memory.guard_until and q.memory.burst_pods == p.memory.burst_pods

