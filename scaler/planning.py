"""The planner: forecast + quality + policy + cluster state + now -> Plan. Pure: no clock, no I/O.

`plan()` runs a flat list of named steps (see docs/planner.md for a worked example). Each step
appends a `Step(name, before, after, reason)` to the plan:

1. `demand` (trusted forecast) — the highest forecast `yhat_upper` (the forecast is made at the
   workload's `scaling.quantile`) over the lead window [now, now + pod_startup + one tick], and
   never below the demand observed now: capacity is ready when demand arrives, and scale-up never
   waits on the forecast. `reactive` instead (forecast untrusted, absent or
   unusable) — the demand observed now, like an HPA; with no usable demand either, hold.
1b. `burst` — while the lead window reaches history points after the one holding the
   observation, at least the observed demand times the burst quantile (`scaling.burst_quantile`,
   else `quantile`) of the growth realised over as many points in the last `burst_lookback` of
   `Observation.recent_demand` (scaler.safety.burst_growth; with `burst_smoothing`, from an
   exponentially smoothed level instead of the observation when that sized the history's bursts
   with a lower quantile loss), divided by (1 + headroom) ** duty
   (scaler.safety.burst_duty: the share of the time the allowance is on), so that share of the
   headroom is counted inside the allowance. Pods bought by it alone stay out of
   the stabilisation window and the scale-down cooldown and are remembered (`memory.burst_pods`):
   when the observation does not need them they go at once, beyond the step limit. With
   `scaling.burst_bridge` at least the allowance's off-time in each history point, the allowance
   also stands through that gap (its pods are kept instead of deleted and created again).
2. `headroom` — replicas = ceil(demand x (1 + headroom) / per_replica).
3. `event` — pre-scaling. Trusted forecast: from pod_startup + one tick before an event's ramp
   `start` until its `peak`, size for the highest forecast over [max(now, start), peak] (the
   forecast carries the event effect), so pods are ready when the ramp arrives and are not given
   back during it; for a forecast trusted on its growth only (`TrustedForecast.level_trusted`
   False), at least the observed demand x the growth it expects to that highest point (as step
   1). Forecast not usable: within pod_startup + one tick either side of an event start, never
   scale in (hold at least the replicas running).
4. `clamp` — into [min_replicas, max_replicas], and under the HPA's maxReplicas when an HPA owns
   the workload (its minReplicas is then at least 1). The result is this tick's recommendation
   (kept in memory for stabilisation).
5. `step_limit` — at most max(1, floor(current x max_scale_down_fraction)) pods fewer per tick,
   beyond the burst pods; with `scale_down_interval` longer than a tick, one scale-down beyond
   them per interval, of up to floor(interval / tick) such steps (memory.last_step_down_at).
6. `stabilization` — scale down only to the highest recommendation within the window;
   `cooldown` — no scale-down within scale_down_cooldown of the last scale-UP (beyond the pods
   the burst allowance alone bought; consecutive scale-downs are paced by steps 5 and 6);
   within scale_up_cooldown of the last scale-up, scale up only as far as the demand observed
   now needs.
7. `quality_guard` — an SLI in breach, an SLI reading missing/stale, demand data
   missing/stale/absurd (see scaler.safety.check_demand; a jump over 100x everything known is
   absurd until it has lasted `scaling.jump_confirm`, scaler.safety.confirm_jump, its start in
   `memory.jump_since`, then it is believed and sized for), or a demand collapse not yet
   confirmed (scaler.safety.check_collapse: a sudden fall far below the trusted forecast's
   `yhat_lower` and the last good sample, held for `scaling.collapse_confirm`, its start in
   `memory.collapse_since`) activates the guard: no scale-in
   (freeze_scale_in), bitrate caps back to the ladder top (restore_bitrate), and, on a live
   breach whose on_breach has scale_up, one step up (the scale-down step size) at most once per
   max(pod_startup, scale_up_cooldown). A breach holds the guard for the SLI's `hold`.
8. `limits` — the hard limits again: nothing above max or below min, whatever a guard wanted.
Then the bitrate steps (`bitrate:rules`, `bitrate:<tier>`, scaler.bitrate) when the policy
plans bitrate.

Every step after sizing only moves a scale-down back towards the current count (or into the
hard limits): the safest action wins, and scale-up is never delayed by a scale-down rule.

HPA-owned workloads (`workload.hpa` set, or an HPA read from the cluster: `hpa_min` not None):
`apply_via` is `hpa_min_replicas`, the "current" count is the HPA's minReplicas (what Ebbtide
writes), and the freeze floor of the guard is the replicas the HPA runs, so a freeze really keeps
every pod. Otherwise `apply_via` is `scale` and the current count is the scale subresource's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import operator
import weakref
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from forecaster.series import Forecast
from policies.events import Event, expand_events
from policies.schema import Policy, Workload
from policies.units import format_duration, plural
from scaler.bitrate import EBB_WINDOW, BitrateContext, plan_bitrate
from scaler.plans import (
    Observation,
    Plan,
    PlannerMemory,
    PlanningState,
    Step,
    TierCap,
    TrustedForecast,
    digest,
)
from scaler.safety import (
    ABSURD_JUMP_FACTOR,
    apply_guard,
    BURST_SMOOTHING,
    BurstGrowth,
    DemandCheck,
    GuardState,
    burst_duty,
    burst_growth,
    check_collapse,
    check_demand,
    check_slis,
    clamp,
    confirm_jump,
    anchored_growth,
    cooldowns,
    fmt,
    fmt_factors,
    guard_state,
    limit_scale_down,
    min_burst_pairs,
    points_ahead,
    prune_recommendations,
    replicas_for,
    sample_age,
    scale_down_ticks,
    scale_step,
    stabilise,
    stale,
    ticks_in,
)


# --------------------------------------------------------------------------- forecast access
@dataclass(frozen=True)
class _ForecastView:
    """A forecast as numpy arrays for fast window maxima (the replay calls plan() every tick)."""

    ts_ns: np.ndarray
    step_ns: int
    yhat: np.ndarray
    upper: np.ndarray
    lower: np.ndarray

    def max_of(self, values: np.ndarray, start: datetime, end: datetime) -> float | None:
        """Highest finite value of the points whose interval [ts, ts + step) meets [start, end]."""
        s, e = _ns(start), _ns(end)
        lo = int(np.searchsorted(self.ts_ns, s, side="right")) - 1
        if lo < 0 or self.ts_ns[lo] + self.step_ns <= s:
            lo += 1  # the point before `start` does not cover it
        hi = int(np.searchsorted(self.ts_ns, e, side="right"))
        if hi <= lo:
            return None
        window = values[lo:hi]
        window = window[np.isfinite(window)]
        return float(window.max()) if window.size else None


def _ns(t: datetime) -> int:
    return pd.Timestamp(t).value


_COLUMNS = ("yhat", "yhat_lower", "yhat_upper")
#: Said where the planner does not take a forecast's level at face value (TrustedForecast.level_trusted).
LEVEL_UNTRUSTED = "the forecast's level is not trusted, only its growth"


def _arrays(forecast: Forecast) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps ns, float array of shape (3, n): yhat, yhat_lower, yhat_upper)."""
    frame = forecast.frame
    values = np.stack([frame[c].to_numpy(dtype=float) for c in _COLUMNS]) if len(frame) else np.empty((3, 0))
    return _index_ns(forecast.index), values


def _view(arrays: tuple[np.ndarray, np.ndarray] | None) -> tuple[_ForecastView | None, str]:
    """Arrays of a usable forecast, or None and why not (absent, empty, infinite or negative)."""
    if arrays is None:
        return None, "no forecast"
    ts, values = arrays
    if ts.size == 0:
        return None, "forecast is empty"
    yhat, lower, upper = values[0], values[1], values[2]
    if np.isinf(upper).any() or (upper < 0).any() or np.isinf(yhat).any() or (yhat < 0).any():
        return None, "forecast holds infinite or negative values"
    step_ns = int(np.median(np.diff(ts))) if ts.size > 1 else 0
    return _ForecastView(ts, step_ns, yhat, upper, lower), ""


def _forecast_digest(tf: TrustedForecast, frame_hash: str | None) -> object:
    """A JSON-able identity of the forecast: a hash of its frame's bytes plus its metadata."""
    if tf.forecast is None or frame_hash is None:
        return [None, tf.trusted, list(tf.reasons), tf.level_trusted]
    f = tf.forecast
    return [frame_hash, f.model, f.upper_quantile, f.lower_quantile, list(f.notes), tf.trusted, list(tf.reasons),
            tf.level_trusted]


# A Forecast is a value (its frame is never changed once made), and the replay hands the planner
# the same Forecast object for every tick until its slice moves: its arrays, view and frame hash
# are computed once per object (keyed by id, dropped when the object is collected, the weakref
# guarding id reuse; arrays read-only, so no step can change them for the next tick).
_PREPARED: dict[int, tuple[weakref.ref, tuple]] = {}


def _prepared(forecast: Forecast | None) -> tuple[tuple[np.ndarray, np.ndarray] | None, _ForecastView | None,
                                                  str, str | None]:
    """(arrays, view, why there is no view, SHA-256 of the arrays' bytes) of `forecast`, cached."""
    if forecast is None:
        return (None, *_view(None), None)

    def prepare(f: Forecast) -> tuple:
        arrays = _arrays(f)
        for a in arrays:
            a.setflags(write=False)
        h = hashlib.sha256(arrays[0].tobytes())
        h.update(arrays[1].tobytes())
        return (arrays, *_view(arrays), h.hexdigest())

    return _weak_cached(_PREPARED, forecast, prepare)


def _weak_cached(cache: dict, obj, compute):
    """`compute(obj)`, cached in `cache` by id(obj) while obj lives (a weakref drops the entry
    when obj is collected and guards against id reuse); not cached when obj cannot be weakly
    referenced."""
    key = id(obj)
    hit = cache.get(key)
    if hit is not None and hit[0]() is obj:
        return hit[1]
    value = compute(obj)
    try:
        ref = weakref.ref(obj, lambda _r, k=key: cache.pop(k, None))
    except TypeError:  # not weak-referenceable: do not cache
        return value
    cache[key] = (ref, value)
    return value


# --------------------------------------------------------------------------- inputs digest
# Policies and workloads are frozen pydantic models: their canonical JSON is hashed once per
# object (keyed by id, dropped when the object is collected, the weakref guarding id reuse),
# not on every tick. The value dataclasses (observation, state) are turned into plain JSON
# values by a shallow walk, without dataclasses.asdict's deep copies.
_MODEL_DIGESTS: dict[int, tuple[weakref.ref, str]] = {}


def _model_digest(model: Policy | Workload) -> str:
    """SHA-256 of the model's canonical JSON (as policies.loading.policy_digest), cached per object."""
    def digest(m: Policy | Workload) -> str:
        canonical = json.dumps(m.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    return _weak_cached(_MODEL_DIGESTS, model, digest)


#: Fields added to the planner's inputs after their digest was first defined: in a digest only
#: when set, so inputs that leave them empty digest as before they existed.
_LATE_FIELDS: dict[type, tuple[str, ...]] = {
    Observation: ("demand_problem", "weak_network_loss_at"), PlannerMemory: ("guard_breach",)}


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """Field names of a dataclass type (those of _LATE_FIELDS left out), None for any other
    type (dataclasses.is_dataclass)."""
    if not dataclasses.is_dataclass(cls):
        return None
    late = _LATE_FIELDS.get(cls, ())
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in late)


_SCALARS = frozenset({int, float, str, bool, type(None)})
_IMMUTABLE = _SCALARS | {datetime, timedelta}
_last_floats: tuple = (None, "")  # (the last long float tuple hashed, its text), swapped whole
_last_rows: tuple[tuple, list] = ((), [])  # (the last tuple of rows _plain_rows walked, its plain form)


def _plain(x: object) -> object:
    """A dataclass value as JSON-able data (fields in order; tuples as lists; datetimes as text).

    A long tuple of floats (the recent demand history: thousands of points on 5-minute data) is
    replaced by the SHA-256 of its float64 bytes instead of walked value by value: equal inputs
    still give equal digests, at a fraction of the cost per tick (the last one is remembered:
    the replay passes the same tuple until a history point completes)."""
    global _last_floats
    t = type(x)
    if t in _SCALARS:
        return x
    if t is datetime:
        return x.isoformat()
    if t is not type:
        names = _field_names(t)
        if names is not None:
            out = [_plain(getattr(x, name)) for name in names]
            for name in _LATE_FIELDS.get(t, ()):
                if getattr(x, name):
                    out.append([name, _plain(getattr(x, name))])
            return out
    if t is tuple and len(x) > 32 and type(x[0]) is float:
        last = _last_floats
        if x is last[0]:
            return last[1]
        try:
            text = "float64:" + hashlib.sha256(array("d", x).tobytes()).hexdigest()
        except TypeError:  # not all floats: walk it
            pass
        else:
            _last_floats = (x, text)
            return text
    if t is tuple and len(x) > 8 and type(x[0]) is tuple:
        return _plain_rows(x)
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    if isinstance(x, datetime):
        return x.isoformat()
    return x


def _plain_rows(x: tuple) -> list:
    """[_plain(row) for row in x], reusing the last call's result for the rows it shares: the
    stabilisation window's (time, replicas) rows are the same objects tick after tick
    (scaler.safety.prune_recommendations keeps them), only the oldest leave and new ones join
    at the end. Rows are reused by identity, and only rows of immutable values are remembered."""
    global _last_rows
    last_x, last_out = _last_rows
    out: list = []
    rest = x
    first = x[0]
    start = next((i for i, row in enumerate(last_x) if row is first), None)
    if start is not None:
        k = min(len(last_x) - start, len(x))
        if all(map(operator.is_, x[:k], last_x[start:start + k])):
            out, rest = last_out[start:start + k], x[k:]
    out.extend(_plain(row) for row in rest)
    remember = all(type(row) is tuple and all(type(v) in _IMMUTABLE for v in row) for row in rest)
    _last_rows = (x, out) if remember else ((), [])
    return out


def _index_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as int64 nanoseconds, whatever the index's unit."""
    return (index if index.unit == "ns" else index.as_unit("ns")).asi8


# --------------------------------------------------------------------------- events
@dataclass(frozen=True)
class _EventContext:
    ramps: tuple[Event, ...]  # start - lead <= now < peak
    near_start: tuple[Event, ...]  # |now - start| <= lead
    ebb_since: datetime | None  # latest end within EBB_WINDOW, when no event is active or imminent
    ebb_event: str | None = None  # the event that ended then


def _event_context(events: list[Event], now: datetime, lead: timedelta) -> _EventContext:
    ramps = tuple(e for e in events if e.start - lead <= now < e.peak)
    near = tuple(e for e in events if abs(now - e.start) <= lead)
    active = any(e.start - lead <= now < e.end for e in events)
    ended = [e for e in events if e.end <= now < e.end + EBB_WINDOW]
    if active or not ended:
        return _EventContext(ramps, near, None)
    last = max(ended, key=lambda e: e.end)  # the first of those ending last, as listed
    return _EventContext(ramps, near, last.end, last.name)


# --------------------------------------------------------------------------- the planner
def plan(
    forecast: TrustedForecast,
    quality: Observation,
    workload: Workload,
    policy: Policy,
    state: PlanningState,
    now: datetime,
    *,
    digest_inputs: bool = True,
) -> Plan:
    """Plan one tick for one workload. Pure and deterministic: equal inputs give equal plans.

    `now` must carry a zone. Returns a Plan whose `memory` is to be passed back in the next
    tick's `state.memory`. `digest_inputs` False leaves `Plan.inputs_digest` empty: the replay,
    which writes no audit line, skips hashing the inputs (a third of a tick's planning time on
    a daily trace; the decision is the same). Invariants: min <= target <= max (and <= the
    HPA's maxReplicas); target >= current while the guard freezes scale-in; a scale-down is at most
    max(1, floor(current x max_scale_down_fraction)) pods beyond `memory.burst_pods` (pods the
    burst allowance alone bought for demand that has not come).
    """
    if now.tzinfo is None:
        raise ValueError("plan(): now must carry a zone (UTC)")
    sc = workload.scaling
    per = workload.demand.per_replica
    tick = policy.schedule.tick
    lead = workload.pod_startup + tick
    cluster, mem = state.cluster, state.memory
    hpa_owned = workload.hpa is not None or cluster.hpa_min is not None
    running = cluster.replicas
    current = cluster.hpa_min if hpa_owned and cluster.hpa_min is not None else running
    freeze_floor = max(current, running) if hpa_owned else current
    steps: list[Step] = []
    notes: list[str] = []

    # ---- data checks (they feed sizing and the guard)
    _, view, view_problem, frame_hash = _prepared(forecast.forecast)
    fc_now = view.max_of(view.upper, now, now) if view is not None else None
    # Staleness is the sample's own age: the observation stands demand.lag before its sample time.
    sampled_at = quality.demand_at + workload.demand.lag if quality.demand_at is not None else None
    demand = check_demand(
        quality.demand_now, sampled_at, now, policy.prometheus.max_staleness,
        (fc_now, mem.last_demand, running * per, per), quality.demand_problem,
    )
    # A jump over 100x everything known: a broken metric until jump_confirm says it is traffic.
    jump = confirm_jump(demand, now, mem.jump_since, sc.jump_confirm)
    demand = jump.demand
    if jump.reason:
        notes.append(jump.reason)
    slis = check_slis(workload.quality, quality.slis, now, policy.prometheus.max_staleness)
    # A sudden fall far below the trusted forecast's lower bound (at the sample's time) and the
    # last good sample: an outage or a broken metric until collapse_confirm says otherwise.
    lower_obs = None
    if forecast.trusted and view is not None and demand.ok:
        lower_obs = view.max_of(view.lower, quality.demand_at, quality.demand_at)
    collapse = check_collapse(
        demand.value if demand.ok else None, lower_obs, mem.last_demand, per, now,
        mem.collapse_since, sc.collapse_confirm,
    )
    guard = guard_state(slis, demand, now, mem.guard_until, mem.guard_actions, collapse, mem.guard_breach)
    if collapse.reason and not collapse.holding:
        notes.append(collapse.reason)  # confirmed: the low demand is accepted as real

    distrust = list(forecast.reasons) if not forecast.trusted else []
    if not forecast.trusted and not distrust:
        distrust.append("forecast not trusted")
    usable = forecast.trusted and view is not None
    if forecast.trusted and view is None:
        distrust.append(view_problem)
    if forecast.forecast is not None and not math.isclose(forecast.forecast.upper_quantile, sc.quantile):
        notes.append(
            f"forecast upper bound is q{forecast.forecast.upper_quantile:g}, policy asks q{sc.quantile:g}"
        )

    # ---- 1. demand over the lead window (or reactive sizing)
    sized, anchor, usable = _demand_step(view if usable else None, demand, quality.demand_at, forecast.level_trusted,
                                         fc_now, now, lead, workload, current, distrust, steps)
    # A jump believed or a collapse accepted this tick changes what is sized for: said where it is sized.
    verdicts = [r for r in (jump.reason, collapse.reason if not collapse.holding else "") if r]
    if verdicts:
        steps[-1] = dataclasses.replace(steps[-1], reason=f"{steps[-1].reason}; {'; '.join(verdicts)}")

    # ---- 1b. burst allowance learnt from the recent history
    unburst = sized
    burst_q = sc.burst_quantile if sc.burst_quantile is not None else sc.quantile
    sized = _burst_step(sized, demand.value if demand.ok else None, quality, sc.burst_lookback, burst_q,
                        per, sc.headroom, now, lead, steps, smoothing=sc.burst_smoothing, bridge=sc.burst_bridge)

    # ---- 2. headroom
    if sized is None:
        x = current
        steps.append(Step("headroom", None, x, f"no demand to size for: kept {x}"))
    else:
        x = replicas_for(sized, sc.headroom, per)
        steps.append(Step(
            "headroom", sized, x,
            f"ceil({fmt(sized)} x (1 + {fmt(sc.headroom)}) / {fmt(per)} per replica) = "
            f"{_ceil_of(sized * (1.0 + sc.headroom) / per, x)}{plural(x, 'replica')}",
        ))

    # ---- 3. events
    # A holiday is a calendar-day effect the forecast carries: no ramp to pre-scale for, no ebb
    # (its "peak" is a calendar midpoint; pre-scaling bought the day's highest upper from midnight).
    events = [e for e in expand_events(policy.events, now - EBB_WINDOW, now + workload.forecast.horizon,
                                       workload.forecast.calendar_tz) if e.kind != "holiday"]
    ev = _event_context(events, now, lead)
    sized_x = x
    x = _event_step(x, ev, usable, view, now, sc.headroom, per, freeze_floor, lead, steps, sc.event_lookahead, anchor)

    # ---- 4. clamp to the limits
    lo, hi, limits = _limits(workload, cluster.hpa_max, hpa_owned)
    x, st = clamp(x, lo, hi, limits)
    steps.append(st)
    recommendation = x
    # Pods the burst allowance alone buys are speculative: they enter neither the stabilisation
    # window nor the scale-down cooldown, and (memory.burst_pods) the step limit lets them go at
    # once when the observation shows the burst did not come (unless the event step sized above them).
    held = recommendation
    if unburst is not None and sized is not None and sized > unburst and x <= sized_x:
        held = min(max(replicas_for(unburst, sc.headroom, per), lo), hi)
    window = prune_recommendations(mem.recommendations + ((now, held),), now, sc.stabilization)

    # ---- 5. scale-down step limit
    speculative = min(max(0, mem.burst_pods), current)
    ticks = scale_down_ticks(now, mem.last_step_down_at, sc.scale_down_interval, tick)
    last_step = mem.last_step_down_at
    x, st = limit_scale_down(x, current, sc.max_scale_down_fraction, speculative, ticks,
                             f"scale_down_interval {format_duration(sc.scale_down_interval)}",
                             last_step_down_at=last_step, demand_seen=demand.ok,
                             left=sc.scale_down_interval - (now - last_step) if last_step is not None else None)
    steps.append(st)

    # ---- 6. stabilisation and cooldowns
    x, st = stabilise(x, current, window, sc.stabilization, recommendation - held)
    steps.append(st)
    needed_now = min(max(replicas_for(demand.value, sc.headroom, per), lo), hi) if demand.ok else None
    x, st = cooldowns(
        x, current, now, mem.last_scale_up_at, mem.last_scale_down_at,
        sc.scale_down_cooldown, sc.scale_up_cooldown, needed_now, speculative,
    )
    steps.append(st)

    # ---- 7. quality guard
    settle = max(workload.pod_startup, sc.scale_up_cooldown)
    may_step_up = mem.last_scale_up_at is None or now - mem.last_scale_up_at >= settle
    # A breach's step up: the step limit's pods for a minute of ticks (one tick's at a tick of a
    # minute or longer), so a shorter tick with a smaller fraction keeps its size.
    step_up = scale_step(current, sc.max_scale_down_fraction, ticks_in(timedelta(minutes=1), tick))
    x, st = apply_guard(x, current, freeze_floor, guard, step_up, may_step_up)
    steps.append(st)

    # ---- 8. hard limits last
    x, st = clamp(x, lo, hi, limits)
    steps.append(Step("limits", st.before, st.after, st.reason))

    # ---- bitrate
    caps: tuple[TierCap, ...] | None = None
    if policy.bitrate is not None:
        caps = _bitrate_steps(policy, workload, forecast, view if usable else None, quality,
                              demand.value if demand.ok else None, now, ev, cluster.bitrate_caps, guard, steps)

    if not forecast.trusted or not usable:
        notes.extend(distrust)
    if forecast.forecast is not None:
        notes.extend(forecast.forecast.notes)

    burst_only = held < recommendation and held <= current and x <= recommendation  # no cooldown for it
    # Pods only the burst allowance holds: above what the observed demand (and earlier needs) hold,
    # never those a guard or the event step added.
    burst_pods = max(0, min(x, recommendation) - max(held, current - speculative))
    memory = PlannerMemory(
        recommendations=window,
        last_scale_up_at=now if x > current and not burst_only else mem.last_scale_up_at,
        last_scale_down_at=now if x < current else mem.last_scale_down_at,
        guard_until=guard.until,
        guard_actions=guard.held_actions,
        guard_breach=guard.breach,
        last_demand=demand.value if demand.ok and not collapse.holding else mem.last_demand,
        burst_pods=burst_pods,
        last_step_down_at=now if x < current - speculative else mem.last_step_down_at,
        collapse_since=collapse.since,
        jump_since=jump.since,
    )
    return Plan(
        workload=workload.name,
        now=now,
        current_replicas=current,
        target_replicas=x,
        apply_via="hpa_min_replicas" if hpa_owned else "scale",
        steps=tuple(steps),
        memory=memory,
        forecast_trusted=usable,
        guard_active=guard.active,
        data_ok=demand.ok and slis.data_ok,
        bitrate=caps,
        inputs_digest=digest(
            _forecast_digest(forecast, frame_hash), _plain(quality), _model_digest(workload),
            _model_digest(policy), _plain(state), now.isoformat(),
        ) if digest_inputs else "",
        notes=tuple(notes),
    )


def _demand_step(
    view: _ForecastView | None,
    demand: DemandCheck,
    demand_at: datetime | None,
    level_trusted: bool,
    fc_now: float | None,
    now: datetime,
    lead: timedelta,
    workload: Workload,
    current: int,
    distrust: list[str],
    steps: list[Step],
) -> tuple[float | None, tuple[float, float | None] | None, bool]:
    """Step 1 (docs/planner.md): the demand to size for over the lead window, appended to
    `steps` with its reason. `view`: the trusted, usable forecast, else None (reactive sizing on
    the demand observed, with `distrust`'s reasons). Returns (demand sized for or None to hold,
    anchor, forecast still usable): the anchor is (demand observed, forecast upper at its time)
    when the forecast's level failed the rolling check, so the event step also sizes the ramp
    as the growth it expects from there; a forecast with no point in the lead window is not
    usable (the reason joins `distrust`)."""
    sc, per = workload.scaling, workload.demand.per_replica
    fc_demand = view.max_of(view.upper, now, now + lead) if view is not None else None
    usable = fc_demand is not None
    if view is not None and not usable:
        distrust.append(f"forecast has no point in [now, now + {format_duration(lead)}]")
    observed = fmt(demand.value) if demand.ok else f"unusable: {demand.problem}"
    anchor: tuple[float, float | None] | None = None
    if usable and demand.ok:
        # Anchored on the observation: the forecast's level error is already resolved by the
        # demand observed, so only the growth it expects over the lead window is added.
        fc_obs = view.max_of(view.upper, demand_at, demand_at)
        base = fc_obs if fc_obs is not None else fc_now
        anchor = None if level_trusted else (demand.value, base)
        growth = anchored_growth(fc_demand, base, per)
        # The growth is a ratio of levels offset by one pod's worth (anchored_growth), so it applies
        # to the observation offset the same way: a night near 0 still gets the rise the forecast expects.
        sized = (demand.value + per) * growth - per
        o, p = float(fmt(demand.value)), float(fmt(per))
        [g] = fmt_factors([growth], lambda f: (o + p) * f[0] - p, lambda d: replicas_for(d, sc.headroom, per))
        if base is None:
            ratio = "growth 1: no forecast point when demand was observed"
        else:
            ratio = f"({fmt(fc_demand)} + {fmt(per)}) / ({fmt(base)} + {fmt(per)})"
            ratio = f"growth {ratio} = {g}" if growth > 1.0 else f"growth 1: {ratio} is not above 1"
        steps.append(Step(
            "demand", fc_demand, sized,
            f"sized for demand {fmt(sized)}: (observed {fmt(demand.value)} + one pod's {fmt(per)}) x expected "
            f"growth {g} - {fmt(per)} "
            f"over the next {format_duration(lead)} (pod start-up {format_duration(workload.pod_startup)} + "
            f"one tick): forecast yhat_upper (q{sc.quantile:g}) peaks at {fmt(fc_demand)} there, "
            f"{fmt(base)} when demand was observed; {ratio}",
        ))
    elif usable:
        sized = fc_demand
        steps.append(Step(
            "demand", fc_demand, sized,
            f"sized for demand {fmt(sized)}: highest forecast yhat_upper (q{sc.quantile:g}) over the next "
            f"{format_duration(lead)}; demand observed now is {observed}",
        ))
    elif demand.ok:
        sized = demand.value
        steps.append(Step(
            "reactive", None, sized,
            f"reactive sizing on demand observed now {fmt(sized)}: {'; '.join(distrust)}",
        ))
    else:
        sized = None
        steps.append(Step(
            "reactive", None, None,
            f"holding {current}: {'; '.join(distrust)}, and demand now is {observed}",
        ))
    return sized, anchor, usable


def _ceil_of(exact: float, pods: int) -> str:
    """`ceil(10.758) = ` for a headroom reason: the quotient the pods are the ceiling of, with the
    fewest digits (5 at least) that still round up to `pods`; "" when it is whole (to 9
    decimals, as replicas_for rounds)."""
    if float(round(exact, 9)).is_integer():
        return ""
    for digits in range(5, 13):
        text = f"{exact:.{digits}g}"
        if "e" not in text and not float(text).is_integer() and math.ceil(float(text)) == pods:
            return f"ceil({text}) = "
    return ""


def _bitrate_steps(
    policy: Policy,
    workload: Workload,
    forecast: TrustedForecast,
    view: _ForecastView | None,
    quality: Observation,
    demand_now: float | None,
    now: datetime,
    ev: _EventContext,
    caps_now,
    guard: GuardState,
    steps: list[Step],
) -> tuple[TierCap, ...]:
    """The bitrate steps (scaler.bitrate.plan_bitrate), appended to `steps`; returns the caps.
    `view`: the forecast when usable, else None. The peak the traffic level is compared with
    takes the forecast's level only when that is trusted: a level too high would make now look
    quiet and cut bitrate. (In the traffic level itself a forecast can only raise it above the
    demand observed: fewer cuts.) The reasons say which of them the peak is."""
    quality = _usable_loss(quality, policy, now, steps)
    recent = quality.recent_demand
    grid = f"{format_duration(recent.step)} " if recent is not None else ""
    peak_candidates = [
        (quality.lookback_peak, f"the highest {grid}point of the demand history over the forecast lookback "
                                f"{format_duration(workload.forecast.lookback)}"),
        (demand_now, "the demand observed now"),
    ]
    if view is not None and forecast.level_trusted and np.isfinite(view.yhat).any():
        peak_candidates.append((float(np.nanmax(view.yhat)), "the forecast's highest yhat"))
    peaks = [(p, why) for p, why in peak_candidates if p is not None and math.isfinite(p)]
    peak = max(peaks, key=lambda c: c[0]) if peaks else None  # ties: the first listed
    ctx = BitrateContext(
        tick=policy.schedule.tick,
        peak_demand=peak[0] if peak else None,
        demand_now=demand_now,
        ebb_since=ev.ebb_since,
        peak_source=peak[1] if peak else "",
        ebb_event=ev.ebb_event,
    )
    caps, bsteps = plan_bitrate(
        policy.bitrate, forecast.forecast if view is not None else None, quality, now, caps_now,
        "restore_bitrate" in guard.actions, ctx, allow_cuts=not guard.active,
    )
    steps.extend(bsteps)
    return caps


def _usable_loss(quality: Observation, policy: Policy, now: datetime, steps: list[Step]) -> Observation:
    """The observation with its weak-network loss left out (and a step saying why) when the
    reading cannot be used: no sample time, older than `max_staleness` (or as far in the future),
    or no ratio (outside 0..1). A weak-network cap is a bitrate cut: never on such data."""
    loss, at = quality.weak_network_loss, quality.weak_network_loss_at
    wn = policy.bitrate.weak_network if policy.bitrate is not None else None
    if wn is None or loss is None:
        return quality
    limit = policy.prometheus.max_staleness
    if at is None:
        why = "has no sample time"
    elif stale(at, now, limit):
        why = f"is stale ({sample_age(at, now)}; max_staleness {format_duration(limit)})"
    elif not 0.0 <= loss <= 1.0:
        why = "is no ratio (outside 0..1)"
    else:
        return quality
    steps.append(Step("bitrate:weak_network", fmt(loss), None,
                      f"packet-loss reading {fmt(loss)} {why}: no weak-network profile"))
    return dataclasses.replace(quality, weak_network_loss=None)


def _burst_step(
    sized: float | None,
    observed: float | None,
    quality: Observation,
    lookback: timedelta,
    quantile: float,
    per: float,
    headroom: float,
    now: datetime,
    lead: timedelta,
    steps: list[Step],
    smoothing: bool = True,
    bridge: timedelta = timedelta(0),
) -> float | None:
    """Step 1b: while the lead window reaches history points after the one being observed, size
    for at least level x B / (1 + headroom) ** duty, where B is the `quantile` of the growth
    realised over that many points in the last `lookback` of recent demand from a level of it
    (scaler.safety.burst_growth: the point itself, or with `smoothing` an exponentially smoothed
    level when that predicted the history's bursts with a lower quantile loss), the level now is
    that smoothing carried on to the observation (alpha x observed + (1 - alpha) x the history's
    level; the observation itself at alpha 1 or when the history's last FINITE point is not the
    one right before the observed point: a window that stops short, or ends in missing points,
    whose carried level is stale. B is then the growth from single points (alpha 1): the
    smoothed level's B sized to one noisy point under-covers, e.g. ~0.78 for q0.9 on lognormal
    noise), and `duty` the share of the time the allowance is on
    (scaler.safety.burst_duty). After the headroom step the capacity is
    level x B x (1 + headroom) ** (1 - duty): the headroom is counted inside the allowance as
    far as the allowance stands (both cover demand moving before it is observed). Only raises.
    Without `recent_demand` in the observation no step is added."""
    recent = quality.recent_demand
    if recent is None:
        return sized  # no history given (a controller that does not pass it): no step, as before
    why = ""
    if observed is None or sized is None:
        why = "no usable demand observation to grow from"
    elif lookback <= timedelta(0):
        why = "burst allowance off (burst_lookback 0s)"
    elif not recent.values or quality.demand_at is None:
        why = "no recent demand history"
    if why:
        steps.append(Step("burst", sized, sized, why))
        return sized
    ahead = points_ahead(quality.demand_at, now + lead, recent.start, recent.step)
    grid = format_duration(recent.step)
    duty = burst_duty(quality.demand_at, now + lead, recent.step)
    off = recent.step * (1.0 - duty)  # how long the allowance is off in each history step
    bridged = timedelta(0) < off <= bridge
    if bridged:
        # Off for at most `burst_bridge` a point: the same allowance stands through the gap rather
        # than its pods being deleted at each new observation and created again moments later.
        ahead = max(ahead, 1)
    if ahead < 1:
        steps.append(Step(
            "burst", sized, sized,
            f"the lead window ends in the {grid} history point being observed: no unobserved demand to allow for",
        ))
        return sized
    first = max(0, math.ceil(round((now - lookback - recent.start) / recent.step, 9)))
    learnt = _cached_burst(recent.values[first:], ahead, quantile, per, smoothing)
    span = f"the next {grid} history point" if ahead == 1 else f"the next {ahead} {grid} history points"
    if learnt is None:
        steps.append(Step(
            "burst", sized, sized,
            f"too little recent history to learn the growth over {span} (fewer than "
            f"{min_burst_pairs(quantile)} complete pairs in the last {format_duration(lookback)})",
        ))
        return sized
    growth = learnt.growth
    missing = next((k for k, v in enumerate(reversed(recent.values)) if math.isfinite(v)), len(recent.values))
    last_at = recent.start + (len(recent.values) - 1) * recent.step
    adjacent = points_ahead(last_at, quality.demand_at, recent.start, recent.step) == 1 and missing == 0
    if learnt.alpha < 1.0 and adjacent and math.isfinite(learnt.level):
        level = learnt.alpha * observed + (1.0 - learnt.alpha) * learnt.level
        tried = ", ".join(f"{a:g}: {loss:.4g}" for a, loss in learnt.loss)
        source = (f"level {fmt(level)} = {learnt.alpha:g} x observed {fmt(observed)} + {1 - learnt.alpha:g} x "
                  f"smoothed history {fmt(learnt.level)} (smoothing {learnt.alpha:g} predicted the history's "
                  f"bursts best, mean q-loss by smoothing {tried})")
    else:
        level = observed
        source = f"observed {fmt(observed)}"
        if learnt.alpha < 1.0:
            # The growth must be the one learnt from the level it multiplies: the point alone.
            growth = learnt.point_growth
            gap = {0: "", 1: ": the history's last point is missing"}.get(
                missing, f": the history's last {missing} points are missing")
            source += (f" (the smoothed level does not reach the observed point{gap}; growth learnt "
                       f"from single points)")
    inside = (1.0 + headroom) ** duty
    need = level * growth / inside
    shown = float(fmt(level))
    g, i = fmt_factors([growth, inside], lambda f: shown * f[0] / f[1], lambda d: replicas_for(d, headroom, per))
    basis = (f"q{quantile:g} of the growth realised over {span} in the last {format_duration(lookback)} "
             f"is {g} ({plural(learnt.pairs, 'pair')}); "
             f"the allowance is on {100 * duty:.0f}% of the time, so that share of the headroom is "
             f"counted inside it (/ {i})"
             + (f"; {plural(learnt.spikes, 'one-point spike')} over {fmt(ABSURD_JUMP_FACTOR)}x everything before "
                f"{'it' if learnt.spikes == 1 else 'them'}, gone the next point, left out of that history (a broken "
                f"metric, not traffic)" if learnt.spikes else "")
             + (f"; bridged through its {format_duration(off)} off a {grid} point (burst_bridge "
                f"{format_duration(bridge)}): its pods are kept, not deleted and created again" if bridged else ""))
    if need <= sized:
        steps.append(Step("burst", sized, sized, f"{fmt(sized)} already covers the burst allowance: {basis}"))
        return sized
    steps.append(Step(
        "burst", sized, need,
        f"sized for demand {fmt(need)}: {source} x burst allowance {g} / {i}, "
        f"as the lead window reaches demand not yet observed: {basis}",
    ))
    return need


@functools.lru_cache(maxsize=64)
def _cached_burst(values: tuple[float, ...], ahead: int, quantile: float, per: float,
                  smoothing: bool) -> BurstGrowth | None:
    """burst_growth, memoised: the history changes once per history step, the plan every tick."""
    return burst_growth(values, ahead, quantile, per, BURST_SMOOTHING if smoothing else (1.0,))


def _limits(workload: Workload, hpa_max: int | None, hpa_owned: bool) -> tuple[int, int, str]:
    """[lo, hi] and their description. With an HPA: hi <= its maxReplicas, lo >= 1 (an HPA's
    minReplicas cannot be 0); if the HPA's max is below the policy's min, the HPA's max wins
    (a minReplicas above maxReplicas would be refused by the API server)."""
    sc = workload.scaling
    lo, hi = sc.min_replicas, sc.max_replicas
    text = f"min_replicas {lo}, max_replicas {hi}"
    if hpa_owned:
        if lo < 1:
            lo = 1
            text += ", HPA minReplicas >= 1"
        if hpa_max is not None and hpa_max < hi:
            hi = hpa_max
            text += f", HPA maxReplicas {hpa_max}"
    if lo > hi:
        text += f"; min {lo} above max {hi}: max wins"
        lo = hi
    return lo, hi, text


def _event_step(
    x: int,
    ev: _EventContext,
    usable: bool,
    view: _ForecastView | None,
    now: datetime,
    headroom: float,
    per: float,
    freeze_floor: int,
    lead: timedelta,
    steps: list[Step],
    lookahead: timedelta | None = None,
    anchor: tuple[float, float | None] | None = None,
) -> int:
    """Step 3: pre-scale for an event's ramp (trusted forecast) or hold near its start (not).
    With `lookahead` (scaling.event_lookahead), the ramp's forecast is covered only up to
    now + lookahead (never past the peak); a ramp still beyond that adds nothing yet. With
    `anchor` (observed demand, forecast upper at its time: a forecast whose level is not
    trusted), the ramp needs at least the observed demand x the growth the forecast expects to
    it (`anchored_growth`): a level too low does not under-buy the ramp (one too high still buys
    its own level: capacity, not quality, is what that costs)."""
    uncovered = ""
    if usable and ev.ramps:
        best: tuple[float, Event] | None = None
        ahead = [(e, max(now, e.start), e.peak if lookahead is None else min(e.peak, now + lookahead))
                 for e in ev.ramps]
        for e, a, b in ahead:
            m = view.max_of(view.upper, a, b) if a <= b else None  # type: ignore[union-attr]
            if m is not None and anchor is not None:
                m = max(m, anchor[0] * anchored_growth(m, anchor[1], per))
            if m is not None and (best is None or m > best[0]):
                best = (m, e)
        if best is None and lookahead is not None and all(a > b for _, a, b in ahead):
            steps.append(Step("event", x, x, f"the ramp of event {ahead[0][0].name} starts beyond the event "
                                             f"lookahead ({format_duration(lookahead)})"))
            return x
        if best is not None:
            need = replicas_for(best[0], headroom, per)
            e = best[1]
            if need > x:
                within = "" if lookahead is None else f" within the event lookahead ({format_duration(lookahead)})"
                level = f"highest forecast {fmt(best[0])} in it"
                if anchor is not None:
                    level = (f"highest forecast in it, or if higher the demand observed {fmt(anchor[0])} x the "
                             f"growth the forecast expects to it ({LEVEL_UNTRUSTED}): {fmt(best[0])}")
                steps.append(Step(
                    "event", x, need,
                    f"pre-scaled from {x} to {need} for event {e.name}: ramp from {e.start.isoformat()} "
                    f"to peak {e.peak.isoformat()}, {level}{within}",
                ))
                return need
            steps.append(Step("event", x, x, f"{x} already covers the forecast ramp of event {e.name}"))
            return x
        uncovered = f"the forecast does not reach into the ramp of event {', '.join(e.name for e in ev.ramps)}"
    if ev.near_start and (uncovered or not usable):
        e = ev.near_start[0]
        why = uncovered or "without a trusted forecast"
        if x < freeze_floor:
            steps.append(Step(
                "event", x, freeze_floor,
                f"kept {freeze_floor}: no scale-in within {format_duration(lead)} of the start of event "
                f"{e.name} ({e.start.isoformat()}), {why}",
            ))
            return freeze_floor
        steps.append(Step("event", x, x,
                          f"event {e.name} starts within {format_duration(lead)}; {x} does not scale in"))
        return x
    steps.append(Step("event", x, x, uncovered or "no event ramp within the lead time"))
    return x
