"""The replay: Ebbtide, a plain HPA and the war-state baseline, side by side, over one trace.

Simulated time advances in fixed steps of `dt` = gcd(HPA sync, policy tick, trace interval)
(15 s in practice). At each step, in this order: Ebbtide ticks (every policy.schedule.tick),
the HPAs sync (every 15 s), then the step is recorded: demand (the trace, step-held: the value
at `ts` holds over [ts, ts + interval)), and per strategy the pods that exist and the pods
ready. Everything measured (replica-hours, demand above ready capacity, actions) is integrated
over these steps.

All three strategies start warm, from the same pods: what the HPA would hold for the demand at
the start, all ready. The controllers see demand `metric_lag` late (both the HPA and Ebbtide).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

import numpy as np
import pandas as pd

from forecaster.csvio import interval_text
from forecaster.series import Forecaster, Series
from policies.errors import EbbtideError
from policies.events import EBB_SPAN, Event, expand_events
from policies.schema import Policy, QualitySli, Workload
from scaler.bitrate import egress_gb_per_hour
from scaler.plans import (
    Observation,
    Plan,
    PlannerMemory,
    PlanningState,
    RecentDemand,
    SliReading,
    TrustedForecast,
    WorkloadState,
    recent_demand,
    recent_window,
)
from scaler.replay.checks import fit_notes
from scaler.replay.cluster import SimulatedCluster
from scaler.replay.explain import TickLog, explain
from scaler.replay.forecasting import ForecastStats, ReplayForecaster, forecast_history
from scaler.replay.hpa import HpaReplay, HpaSettings
from scaler.replay.warstate import HOLD_AFTER, WarWindow, war_floors, war_windows
from scaler.safety import lookback_peak

STRATEGIES = ("ebbtide", "hpa", "static")
Planner = Callable[..., Plan]


@dataclass(frozen=True)
class ReplayOptions:
    """Knobs of the simulation itself (not of the policy)."""

    hpa: HpaSettings = HpaSettings()
    """The baseline HPA (also the HPA Ebbtide moves when the workload has one)."""
    war_hold_after: timedelta = HOLD_AFTER
    """War state is held this long after each event's end. Default 7 days."""
    window_after: timedelta = EBB_SPAN
    """Per-event figures cover [event end, event end + this) (clipped to the replay). Default 14 d."""
    trust_window: timedelta = timedelta(days=1)
    """Issued forecasts are scored over this much recent history to judge trust. Default 1 d."""
    demand_shape: Literal["step", "linear"] = "step"
    """How the true demand runs between trace points, for every strategy alike (what each one
    observes, after its metric lag, and the demand its ready capacity is measured against).
    `step`: each value held over its interval (the trace as written: a jump at every interval
    boundary, which a reactive HPA answers a lag and a start-up later). `linear`: straight lines
    between interval midpoints (continuous demand with the trace's interval means; a point next to
    a missing one is held). The forecaster's history is the trace's values either way."""


@dataclass(frozen=True)
class StrategySummary:
    """One strategy over one time range. Units in the names; shares are of total demand."""

    replica_hours: float
    compute_cost: float
    under_provisioned_share: float
    under_provisioned_minutes: float
    scaling_actions: int
    peak_replicas: int
    mean_replicas: float
    egress_gb: dict[str, float] | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("replica_hours", "compute_cost", "under_provisioned_minutes", "mean_replicas"):
            d[k] = round(d[k], 3)
        d["under_provisioned_share"] = _finite(round(self.under_provisioned_share, 6))
        if self.egress_gb is not None:
            d["egress_gb"] = {k: round(v, 3) for k, v in self.egress_gb.items()}
        return d


@dataclass(frozen=True)
class WindowSummary:
    """Figures for one event's window: the weeks after it ([event end, + window_after): the
    `windows` of a ReplayResult), or the event itself ([event start, event end): its `during`,
    where pre-scaling shows: demand above ready capacity on the ramp)."""

    event: str
    start: datetime
    end: datetime
    strategies: dict[str, StrategySummary]
    explain: dict = field(default_factory=dict)
    """Where Ebbtide's replica-hours went (scaler.replay.explain.explain), in replica-hours."""

    def to_dict(self) -> dict:
        return {"event": self.event, "start": _iso(self.start), "end": _iso(self.end),
                "strategies": {k: v.to_dict() for k, v in self.strategies.items()},
                "explain": self.explain}


@dataclass(frozen=True)
class ReplayResult:
    """A replay's outcome: totals per strategy, per-event windows, the timeline, and costs of
    the simulation itself (wall seconds, refits)."""

    workload: str
    start: datetime
    end: datetime
    currency: str
    strategies: dict[str, StrategySummary]
    windows: tuple[WindowSummary, ...]
    war_windows: tuple[WarWindow, ...]
    timeline: pd.DataFrame
    wall_s: float
    ticks: int
    trusted_ticks: int
    forecast: ForecastStats
    notes: tuple[str, ...] = ()
    during: tuple[WindowSummary, ...] = ()
    """Per event inside the replay, the figures over the event itself [start, end): the ramp,
    peak and plateau, where the HPA lags and pre-scaling is meant to have pods ready."""

    def to_dict(self) -> dict:
        fs = self.forecast
        return {
            "workload": self.workload,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "currency": self.currency,
            "strategies": {k: v.to_dict() for k, v in self.strategies.items()},
            "windows": [w.to_dict() for w in self.windows],
            "during": [w.to_dict() for w in self.during],
            "war_state": [{"event": w.event, "hold_from": _iso(w.hold_from), "hold_until": _iso(w.hold_until),
                           "replicas": w.replicas, "peak_demand": w.peak_demand} for w in self.war_windows],
            "simulation": {
                "wall_s": round(self.wall_s, 2),
                "ticks": self.ticks,
                "trusted_tick_share": round(self.trusted_ticks / self.ticks, 4) if self.ticks else None,
                "refits": fs.refits,
                "fit_s_median": round(float(np.median(fs.fit_s)), 3) if fs.fit_s else None,
                "fit_s_total": round(float(np.sum(fs.fit_s)), 2),
                "predict_s_median": round(float(np.median(fs.predict_s)), 4) if fs.predict_s else None,
                "forecast_failures": len(fs.failures),
            },
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class HpaOnlyResult:
    """`replay_hpa`'s outcome: the plain HPA alone, over the whole replay and per post-event
    window (each window's `strategies` holds only `hpa`; no `explain`)."""

    workload: str
    settings: HpaSettings
    start: datetime
    end: datetime
    summary: StrategySummary
    windows: tuple[WindowSummary, ...]
    wall_s: float

    def window(self, event: str) -> StrategySummary:
        """The HPA over the weeks after `event` (EbbtideError when the replay holds no such window)."""
        for w in self.windows:
            if w.event == event:
                return w.strategies["hpa"]
        have = ", ".join(w.event for w in self.windows) or "none"
        raise EbbtideError(f"no post-event window for {event!r} in this replay (windows: {have})")


def _iso(t: datetime) -> str:
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- inputs
def merged_events(policy: Policy, extra: Sequence[Event]) -> list[Event]:
    """The policy's events plus `extra` (an --events file); a name in both is an error."""
    names = {e.name for e in policy.events}
    clash = sorted(e.name for e in extra if e.name in names)
    if clash:
        raise EbbtideError(f"event name(s) {', '.join(clash)} are both in the policy and in the events file")
    return list(policy.events) + list(extra)


def healthy_slis(slis: Sequence[QualitySli], at: datetime) -> tuple[SliReading, ...]:
    """Synthetic SLI readings on the healthy side of each threshold (a trace has no quality data)."""
    out = []
    for s in slis:
        t = s.threshold
        if s.breach_when == "above":
            v = t / 2 if t > 0 else t - 1
        else:
            v = t * 2 if t > 0 else t + 1
        out.append(SliReading(s.name, float(v), at))
    return tuple(out)


def hpa_steady_replicas(demand: float, per_replica: float, settings: HpaSettings, lo: int, hi: int) -> int:
    """Replicas an HPA settles on for constant `demand`: ceil(demand / (per_replica x target))."""
    if not math.isfinite(demand):
        return lo
    need = math.ceil(demand / (per_replica * settings.target_utilisation) - 1e-9)
    return int(min(max(need, lo), hi))


def _default_planner() -> Planner:
    """scaler.planning.plan without the inputs digest (no audit line is written from a replay;
    a RecordingPlanner, as the demo's, digests the plans it keeps)."""
    from scaler.planning import plan  # imported late: written alongside, and heavy

    return functools.partial(plan, digest_inputs=False)


def default_model_factory(workload: Workload, events: Sequence[Event]) -> Callable[[], Forecaster]:
    """EbbtideForecaster with the policy's quantile, lookback, horizon, holidays and calendar zone."""
    from forecaster.model import EbbtideForecaster, ModelSettings

    fs = workload.forecast
    settings = ModelSettings(
        upper_quantile=workload.scaling.quantile,
        lookback=fs.lookback,
        horizon_hint=fs.horizon + fs.refit_interval,
        country_holidays=fs.country_holidays,
        calendar_tz=fs.calendar_tz,
    )
    evs = tuple(events)
    return lambda: EbbtideForecaster(events=evs, settings=settings)


# --------------------------------------------------------------------------- the replay
def replay(
    trace: Series,
    policy: Policy,
    workload_name: str | None = None,
    *,
    extra_events: Sequence[Event] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    options: ReplayOptions = ReplayOptions(),
    make_model: Callable[[], Forecaster] | None = None,
    planner: Planner | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ReplayResult:
    """Replay `trace` (value = demand, in the unit of per_replica) under `policy`'s workload.

    `start`/`end` bound the simulated range (default: the whole trace); the forecaster may use
    trace data before `start` as history. `make_model`/`planner` replace EbbtideForecaster and
    scaler.planning.plan (tests). `on_progress(fraction)` is called about every simulated hour.
    """
    wall0 = time.perf_counter()
    workload = _pick_workload(policy, workload_name)
    events = merged_events(policy, extra_events)
    policy = policy.model_copy(update={"events": events})
    planner = planner or _default_planner()
    make_model = make_model or default_model_factory(workload, events)
    hs = options.hpa

    g = _grid(trace, policy, hs, start, end, options.demand_shape)
    step_s, tick_s, sync_s, dt = g.step_s, g.tick_s, g.sync_s, g.dt
    trace_t0, t_start, n = g.trace_t0, g.t_start, g.n
    demand_at = g.demand_at

    per_replica = workload.demand.per_replica
    lo, hi = workload.scaling.min_replicas, workload.scaling.max_replicas
    hpa_min = max(1, lo)
    lag_s = metric_lag_s(hs, workload)
    clusters, hpas = _warm_start(g, workload, hs, STRATEGIES)

    span_events = g.span_events(events, workload.forecast.calendar_tz)
    wars = war_windows(span_events, trace, per_replica=per_replica, headroom=workload.scaling.headroom,
                       min_replicas=hpa_min, max_replicas=hi, pod_startup=workload.pod_startup,
                       hold_after=options.war_hold_after)

    history = forecast_history(trace, workload.forecast.step)
    fc = ReplayForecaster(history, workload, make_model, options.trust_window)
    recent_at = _RecentDemandWindow(history, workload.scaling.burst_lookback)
    peak_at = _LookbackPeak(fc)
    memory = PlannerMemory()
    via_hpa = workload.hpa is not None
    ebb_hpa_min = hpa_min
    caps: tuple = ()
    bitrate = policy.bitrate
    tiers = [t.name for t in bitrate.tiers] if bitrate else []
    shares = {t.name: t.share for t in bitrate.tiers} if bitrate else {}
    egress_known = bool(bitrate) and all(v is not None for v in shares.values())
    top_kbps = bitrate.ladder[0].kbps if bitrate else 0.0
    cap_kbps = {t: top_kbps for t in tiers}

    desired = np.zeros((3, n), dtype=np.int32)
    ready = np.zeros((3, n), dtype=np.int32)
    step_t_s = g.step_times()
    demand = g.demand_steps()  # demand_at(t) for every step
    static_floor = war_floors(wars, step_t_s, hpa_min)  # war_floor(wars, t, hpa_min) for every step
    cap_arr = np.zeros((len(tiers), n), dtype=float)
    trusted_arr = np.zeros(n, dtype=bool)
    ticks = trusted_ticks = 0
    trusted_now = False
    log = TickLog()
    progress_every = max(1, 3600 // dt)
    logged_tf: TrustedForecast | None = None  # the forecast of the last tick, and its first yhat, yhat_upper
    yhat0 = upper0 = None
    strategy_clusters = [clusters[name] for name in STRATEGIES]
    synced = [(name, clusters[name], hpas[name]) for name in STRATEGIES]

    for k in range(n):
        t = t_start + k * dt
        since = t - t_start
        if since % tick_s == 0:
            now = _dt(t)
            seen_at = _dt(t - lag_s)
            seen = demand_at(t - lag_s)
            tf = fc.at(now, seen_at)
            c = clusters["ebbtide"]
            state = PlanningState(
                cluster=WorkloadState(replicas=c.replicas, ready_replicas=c.ready(t),
                                      hpa_min=ebb_hpa_min if via_hpa else None, hpa_max=hi if via_hpa else None,
                                      bitrate_caps=caps),
                memory=memory,
            )
            tier_viewers = (tuple((name, seen * share) for name, share in shares.items())
                            if egress_known and math.isfinite(seen) else ())
            obs = Observation(demand_now=seen if math.isfinite(seen) else None,
                              demand_at=seen_at if math.isfinite(seen) else None,
                              slis=healthy_slis(workload.quality, seen_at), tier_viewers=tier_viewers,
                              lookback_peak=peak_at(seen_at), recent_demand=recent_at(seen_at))
            p = planner(tf, obs, workload, policy, state, now)
            memory = p.memory
            if tf is not logged_tf:  # fc.at() returns the same object until its slice moves
                logged_tf = tf
                f0 = tf.forecast.frame if tf.forecast is not None and len(tf.forecast.frame) else None
                yhat0 = float(f0["yhat"].iat[0]) if f0 is not None else None
                upper0 = float(f0["yhat_upper"].iat[0]) if f0 is not None else None
            log.add(t, p, obs.demand_now, workload.scaling.headroom, per_replica, yhat0, upper0)
            ticks += 1
            trusted_now = bool(p.forecast_trusted)
            trusted_ticks += int(trusted_now)
            if p.apply_via == "hpa_min_replicas":
                via_hpa = True
                ebb_hpa_min = max(1, p.target_replicas)
            else:
                c.scale(p.target_replicas, t)
            if p.bitrate is not None:
                caps = tuple((tc.tier, tc.rung) for tc in p.bitrate)
                cap_kbps.update({tc.tier: tc.max_kbps for tc in p.bitrate})
        if since % sync_s == 0:
            seen = demand_at(t - lag_s)
            for name, c, hpa in synced:
                if name == "ebbtide":
                    if not via_hpa:
                        continue
                    floor = ebb_hpa_min
                elif name == "static":
                    floor = int(static_floor[k])
                else:
                    floor = hpa_min
                c.scale(hpa.sync(t, seen, c.replicas, c.ready(t), floor), t)
        for i, c in enumerate(strategy_clusters):
            desired[i, k], ready[i, k] = c.replicas, c.ready(t)
        for j, tier in enumerate(tiers):
            cap_arr[j, k] = cap_kbps[tier]
        trusted_arr[k] = trusted_now
        if on_progress is not None and k % progress_every == 0:
            on_progress(k / n)
    if on_progress is not None:
        on_progress(1.0)

    rec = _Recording(t_start, dt, demand, desired, ready, cap_arr, tiers, shares if egress_known else None,
                     top_kbps, per_replica, _price_per_replica_hour(policy, workload))
    strategies = rec.summarise(0, n)
    def capacity_and_demand(strategy: str, a_s: int, b_s: int) -> tuple[float, float]:
        i = STRATEGIES.index(strategy)
        k0, k1 = (a_s - t_start) // dt, (b_s - t_start) // dt
        d = demand[k0:k1]
        d = np.where(np.isfinite(d), d, 0.0)
        return float(ready[i, k0:k1].sum()) * per_replica, float(d.sum())

    windows = []
    for ev, k0, k1 in g.event_windows(span_events, options.window_after):
        summary = rec.summarise(k0, k1)
        ex = explain(log, t_start + k0 * dt, t_start + k1 * dt, tick_s, demand_at, per_replica, capacity_and_demand)
        if via_hpa and ex:
            # explain() splits the minReplicas floor Ebbtide wrote; the HPA's pods above it are the rest.
            ex["hpa_above_floor_replica_hours"] = round(summary["ebbtide"].replica_hours - ex["replica_hours"], 1)
        windows.append(WindowSummary(ev.name, g.at(k0), g.at(k1), summary, ex))
    during = g.summaries(rec, g.event_spans(span_events))
    timeline = rec.timeline(trace_t0, step_s, trusted_arr)
    notes = fit_notes(demand, per_replica=per_replica, min_replicas=lo, max_replicas=hi,
                      target_utilisation=hs.target_utilisation,
                      events_in_replay=len(windows) + len(during) + sum(
                          _to_s(w.hold_from) < g.t_end and _to_s(w.hold_until) > t_start for w in wars))
    notes += fc.stats.failures[:5]
    notes += _unheld_war_notes(span_events, wars, trace, options.war_hold_after, t_start, g.t_end)
    if not egress_known and bitrate:
        notes.append("egress not estimated: give every bitrate tier a `share` (viewers per tier)")
    return ReplayResult(
        workload=workload.name, start=_dt(t_start), end=_dt(t_start + n * dt), currency=policy.cost.currency,
        strategies=strategies, windows=tuple(windows), war_windows=tuple(wars), timeline=timeline,
        wall_s=time.perf_counter() - wall0, ticks=ticks, trusted_ticks=trusted_ticks, forecast=fc.stats,
        notes=tuple(notes), during=during,
    )


@dataclass(frozen=True)
class _Grid:
    """The simulated time axis of one replay, in integer UTC epoch seconds.

    Steps of `dt` = gcd(trace interval, policy tick, HPA sync) s from `t_start` (on the trace's
    grid), `n` of them: step k covers [t_start + k dt, t_start + (k + 1) dt). `t_end` is the asked
    end clipped to the trace (windows are clipped to it); `values` the trace, step-held.
    """

    step_s: int
    tick_s: int
    sync_s: int
    dt: int
    trace_t0: int
    t_start: int
    t_end: int
    n: int
    values: np.ndarray
    shape: str = "step"  # ReplayOptions.demand_shape

    def demand_at(self, t_s: float) -> float:
        """The true demand at `t_s` (NaN outside the trace): the trace value whose interval
        holds it, or with shape `linear` the line between the neighbouring interval midpoints."""
        if self.shape == "linear":
            return float(_linear(self.values, (np.asarray([t_s], dtype=float) - self.trace_t0) / self.step_s)[0])
        i = int((t_s - self.trace_t0) // self.step_s)
        return float(self.values[i]) if 0 <= i < len(self.values) else math.nan

    def step_times(self) -> np.ndarray:
        return self.t_start + np.arange(self.n, dtype=np.int64) * self.dt

    def demand_steps(self) -> np.ndarray:
        """demand_at(t) for every step."""
        if self.shape == "linear":
            return _linear(self.values, (self.step_times() - self.trace_t0) / self.step_s)
        return _step_held(self.values, (self.step_times() - self.trace_t0) // self.step_s)

    def event_windows(self, events: Sequence[Event], window_after: timedelta) -> list[tuple[Event, int, int]]:
        """(event, k0, k1) per event whose end is inside the replay: steps [k0, k1) cover
        [event end, event end + window_after), clipped to the replay; windows shorter than a step
        are left out."""
        return [w for ev in events if _to_s(ev.end) >= self.t_start
                for w in self._steps(ev, ev.end, ev.end + window_after)]

    def span_events(self, events: Sequence[Event], tz: str | None = None) -> list[Event]:
        """The occurrences of `events` (yearly ones expanded in the calendar zone `tz`) from 30 days
        before the replay to its end."""
        return expand_events(events, _dt(self.t_start) - timedelta(days=30), _dt(self.t_end), tz)

    def at(self, k: int) -> datetime:
        """The start of step `k`."""
        return _dt(self.t_start + k * self.dt)

    def summaries(self, rec: _Recording, spans: Sequence[tuple[Event, int, int]]) -> tuple[WindowSummary, ...]:
        """A WindowSummary (no `explain`) of `rec` over each (event, k0, k1) of `spans`."""
        return tuple(WindowSummary(ev.name, self.at(k0), self.at(k1), rec.summarise(k0, k1)) for ev, k0, k1 in spans)

    def event_spans(self, events: Sequence[Event]) -> list[tuple[Event, int, int]]:
        """(event, k0, k1) per event whose start is inside the replay: steps [k0, k1) cover
        [event start, event end), clipped to the replay; spans shorter than a step are left out."""
        return [w for ev in events if _to_s(ev.start) >= self.t_start for w in self._steps(ev, ev.start, ev.end)]

    def _steps(self, ev: Event, a: datetime, b: datetime) -> list[tuple[Event, int, int]]:
        w0, w1 = max(_to_s(a), self.t_start), min(_to_s(b), self.t_end)
        if w1 - w0 < self.dt:
            return []
        return [(ev, int((w0 - self.t_start) // self.dt), int((w1 - self.t_start) // self.dt))]


def _grid(trace: Series, policy: Policy, hs: HpaSettings, start: datetime | None, end: datetime | None,
          shape: str = "step") -> _Grid:
    """The replay's time axis for `trace` over [start, end) (default: the whole trace)."""
    if shape not in ("step", "linear"):
        raise EbbtideError(f"demand shape {shape!r}: step or linear")
    step_s = int(trace.step_s)
    tick_s = _whole_s(policy.schedule.tick, "schedule.tick")
    sync_s = _whole_s(timedelta(seconds=hs.sync_s), "HPA sync period")
    dt = math.gcd(math.gcd(step_s, tick_s), sync_s)
    trace_t0 = int(trace.start.timestamp())
    trace_end_s = int(trace.end.timestamp()) + step_s
    t_start = trace_t0 if start is None else _to_s(start)
    t_end = trace_end_s if end is None else min(_to_s(end), trace_end_s)
    t_start = max(t_start, trace_t0)
    t_start = trace_t0 + ((t_start - trace_t0) // step_s) * step_s  # align to the trace grid
    if t_end - t_start < step_s:
        asked = (f"{_iso(start) if start is not None else 'the trace start'} .. "
                 f"{_iso(end) if end is not None else 'the trace end'}")
        inside = (start is None or _to_s(start) < trace_end_s) and (end is None or _to_s(end) > trace_t0)
        span = f"the trace {trace.name} ({_iso(_dt(trace_t0))} .. {_iso(_dt(trace_end_s))})"
        if inside:
            raise EbbtideError(f"replay range {asked} holds less than one interval ({interval_text(trace.step)}) "
                               f"of {span}: choose a longer range")
        raise EbbtideError(f"replay range {asked} overlaps {span} by less than one interval: choose "
                           f"--start/--end inside it")
    n = (t_end - t_start) // dt
    return _Grid(step_s, tick_s, sync_s, dt, trace_t0, t_start, t_end, n, trace.values.to_numpy(dtype=float), shape)


def _warm_start(g: _Grid, workload: Workload, hs: HpaSettings, names: Sequence[str],
                ) -> tuple[dict[str, SimulatedCluster], dict[str, HpaReplay]]:
    """One cluster and one HPA per strategy, all from the same warm start: the replicas the HPA
    holds for the demand at the start (min_replicas at least 1), all ready."""
    per_replica = workload.demand.per_replica
    hi = workload.scaling.max_replicas
    init = hpa_steady_replicas(g.demand_at(g.t_start), per_replica, hs, max(1, workload.scaling.min_replicas), hi)
    startup_s = workload.pod_startup.total_seconds()
    return ({k: SimulatedCluster(init, startup_s, g.t_start) for k in names},
            {k: HpaReplay(hs, per_replica, hi) for k in names})


def replay_hpa(
    trace: Series,
    policy: Policy,
    workload_name: str | None = None,
    *,
    extra_events: Sequence[Event] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    options: ReplayOptions = ReplayOptions(),
) -> HpaOnlyResult:
    """The `hpa` strategy of `replay` alone: same arguments, same grid, warm start, HPA
    (`options.hpa`), metric lag, pod start-up, min/max replicas and accounting, so its figures
    equal `replay(...)`'s `hpa` column, without the forecaster (seconds, not minutes).

    Each step (as in `replay`): the HPA syncs on its period, reading demand `metric_lag` old,
    with minReplicas = max(1, min_replicas); then the step's pods are recorded. Egress is not
    estimated (bitrate is Ebbtide's). For a trade-off curve, vary `options.hpa.target_utilisation`.
    """
    wall0 = time.perf_counter()
    workload = _pick_workload(policy, workload_name)
    events = merged_events(policy, extra_events)
    hs = options.hpa
    g = _grid(trace, policy, hs, start, end, options.demand_shape)
    clusters, hpas = _warm_start(g, workload, hs, ("hpa",))
    c, hpa = clusters["hpa"], hpas["hpa"]
    floor = max(1, workload.scaling.min_replicas)
    lag_s, sync_s, t_start, dt, demand_at = metric_lag_s(hs, workload), g.sync_s, g.t_start, g.dt, g.demand_at
    desired = np.zeros((1, g.n), dtype=np.int32)
    ready = np.zeros((1, g.n), dtype=np.int32)
    for k in range(g.n):
        t = t_start + k * dt
        if (t - t_start) % sync_s == 0:
            c.scale(hpa.sync(t, demand_at(t - lag_s), c.replicas, c.ready(t), floor), t)
        desired[0, k], ready[0, k] = c.replicas, c.ready(t)

    rec = _Recording(t_start, dt, g.demand_steps(), desired, ready, np.zeros((0, g.n)), [], None, 0.0,
                     workload.demand.per_replica, _price_per_replica_hour(policy, workload), names=("hpa",))
    span_events = g.span_events(events, workload.forecast.calendar_tz)
    windows = g.summaries(rec, g.event_windows(span_events, options.window_after))
    return HpaOnlyResult(workload=workload.name, settings=hs, start=_dt(t_start), end=g.at(g.n),
                         summary=rec.summarise(0, g.n)["hpa"], windows=windows,
                         wall_s=time.perf_counter() - wall0)


def _unheld_war_notes(events: Sequence[Event], wars: Sequence[WarWindow], trace: Series, hold_after: timedelta,
                      t0_s: int, t1_s: int) -> list[str]:
    """A note per event whose war-state hold would reach into the replay but whose peak the trace
    does not hold (it ended before the trace's first row): war state is not held for it, and the
    `static` strategy is the plain HPA there, which the figures should not pass for a war state."""
    held = {w.event for w in wars}
    out = []
    for ev in events:
        if ev.name in held or ev.end > trace.start:
            continue
        until = ev.end + hold_after
        if _to_s(until) > t0_s and _to_s(ev.start) < t1_s:
            out.append(f"war state not held for {ev.name}: it ended ({_iso(ev.end)}) before the trace's first row, "
                       f"so its peak is unknown; until {_iso(until)} the `static` strategy is the plain HPA")
    return out


def _linear(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Demand at positions `pos` (in intervals from the trace's first point; interval i covers
    [i, i + 1)) on straight lines between interval midpoints: NaN outside the trace; the edge
    halves of the first and last intervals, and a point whose neighbour is missing, held."""
    held = _step_held(values, np.floor(pos).astype(np.int64))
    x = pos - 0.5
    i0 = np.floor(x).astype(np.int64)
    lo, hi = np.clip(i0, 0, len(values) - 1), np.clip(i0 + 1, 0, len(values) - 1)
    v0, v1 = values[lo], values[hi]
    line = v0 + (v1 - v0) * (x - i0)
    return np.where(np.isfinite(line) & np.isfinite(held), line, held)


def _step_held(values: np.ndarray, i: np.ndarray) -> np.ndarray:
    """values[i] where 0 <= i < len(values), else NaN (demand_at for many steps at once)."""
    inside = (i >= 0) & (i < len(values))
    out = np.full(i.shape, np.nan)
    out[inside] = values[i[inside]]
    return out


class _RecentDemandWindow:
    """The controller's demand history as the planner gets it (scaler.plans.recent_demand), built
    only when a new point completes: the same object is returned until then (cheap per tick)."""

    def __init__(self, history: Series, lookback: timedelta):
        self.history = history
        self.t0 = history.start.to_pydatetime()
        self.lookback = lookback
        self._key: tuple[int, int] | None = None
        self._last: RecentDemand | None = None

    def __call__(self, data_until: datetime) -> RecentDemand | None:
        key = recent_window(self.t0, self.history.step, len(self.history), data_until, self.lookback)
        if self._key != key:
            self._key = key
            self._last = recent_demand(self.history, data_until, self.lookback)
        return self._last


class _LookbackPeak:
    """`Observation.lookback_peak` as the controller fills it: the highest demand of the forecast
    history it reads (the lookback, complete points: ReplayForecaster.visible), which bitrate rules
    with `traffic_below` compare the traffic with. Computed when a point completes, held between.
    The replay left it empty, so such rules compared the traffic with itself or the forecast and,
    with an untrusted forecast, never applied (the planner sweep: NASA's ebb rule refused on 1,569
    ticks, 1,506 of them below half the peak the controller would have used)."""

    def __init__(self, fc: ReplayForecaster):
        self._bounds = fc.visible_bounds  # the window the forecaster itself refits on
        self._v = fc.history.values.to_numpy(dtype=float)
        self._key: tuple[int, int] | None = None
        self._last: float | None = None

    def __call__(self, data_until: datetime) -> float | None:
        lo, hi = self._bounds(data_until)
        if self._key != (lo, hi):
            self._key = (lo, hi)
            self._last = lookback_peak(self._v[lo:hi])
        return self._last


# --------------------------------------------------------------------------- accounting
@dataclass
class _Recording:
    t_start: int
    dt: int
    demand: np.ndarray
    desired: np.ndarray
    ready: np.ndarray
    cap_kbps: np.ndarray
    tiers: list[str]
    shares: dict[str, float] | None
    top_kbps: float
    per_replica: float
    price_per_replica_hour: float
    names: tuple[str, ...] = STRATEGIES
    """The strategies recorded, in the order of the rows of `desired` and `ready`."""

    def summarise(self, k0: int, k1: int) -> dict[str, StrategySummary]:
        h = self.dt / 3600.0
        d = self.demand[k0:k1]
        known = np.isfinite(d)
        d0 = np.where(known, d, 0.0)
        total = float(d0.sum())
        out = {}
        for i, name in enumerate(self.names):
            des = self.desired[i, k0:k1]
            shortfall = np.maximum(d0 - self.ready[i, k0:k1] * self.per_replica, 0.0)
            rh = float(des.sum()) * h
            actions = int(np.count_nonzero(np.diff(self.desired[i, max(k0 - 1, 0):k1])))
            egress = None
            if self.shares is not None:
                egress = {}
                for j, tier in enumerate(self.tiers):
                    kbps = self.cap_kbps[j, k0:k1] if name == "ebbtide" else self.top_kbps
                    egress[tier] = float(np.sum(egress_gb_per_hour(d0 * self.shares[tier], kbps)) * h)
            out[name] = StrategySummary(
                replica_hours=rh,
                compute_cost=rh * self.price_per_replica_hour,
                under_provisioned_share=float(shortfall.sum() / total) if total > 0 else (
                    0.0 if shortfall.sum() == 0 else math.inf),
                under_provisioned_minutes=float(np.count_nonzero(shortfall > 1e-9)) * self.dt / 60.0,
                scaling_actions=actions,
                peak_replicas=int(des.max()) if des.size else 0,
                mean_replicas=float(des.mean()) if des.size else 0.0,
                egress_gb=egress,
            )
        return out

    def timeline(self, trace_t0: int, step_s: int, trusted: np.ndarray) -> pd.DataFrame:
        """One row per trace interval: the trace's demand, and per strategy the time-weighted
        mean of pods existing (`replicas_*`) and ready (`ready_*`) over the interval."""
        n = self.demand.size
        t = self.t_start + np.arange(n, dtype=np.int64) * self.dt
        bucket = (t - trace_t0) // step_s
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        counts = np.diff(np.r_[starts, n])

        def mean(a: np.ndarray) -> np.ndarray:
            return np.round(np.add.reduceat(a.astype(float), starts) / counts, 3)

        ts = pd.to_datetime(trace_t0 + bucket[starts] * step_s, unit="s", utc=True)
        cols: dict[str, object] = {"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "demand": self.demand[starts]}
        for i, name in enumerate(self.names):
            cols[f"replicas_{name}"] = mean(self.desired[i])
        for i, name in enumerate(self.names):
            cols[f"ready_{name}"] = mean(self.ready[i])
        for j, tier in enumerate(self.tiers):
            cols[f"cap_{tier}_kbps"] = mean(self.cap_kbps[j])
        cols["forecast_trusted"] = mean(trusted)
        return pd.DataFrame(cols)


def metric_lag_s(hs: HpaSettings, workload: Workload) -> float:
    """Age of the demand both controllers read, seconds: `hs.metric_lag_s` when set, else the
    workload's `demand.lag` (what `ebbtide run` assumes of the same query)."""
    return hs.metric_lag_s if hs.metric_lag_s is not None else workload.demand.lag.total_seconds()


def _price_per_replica_hour(policy: Policy, workload: Workload) -> float:
    r, c = workload.resources, policy.cost
    return r.cpu_cores * c.cpu_core_hour + r.memory_gib * c.memory_gib_hour


def _pick_workload(policy: Policy, name: str | None) -> Workload:
    if name is None:
        return policy.workloads[0]
    try:
        return policy.workload(name)
    except KeyError:
        known = ", ".join(w.name for w in policy.workloads)
        raise EbbtideError(f"unknown workload {name!r}; the policy has: {known}") from None


def _whole_s(td: timedelta, what: str) -> int:
    s = td.total_seconds()
    if s <= 0 or abs(s - round(s)) > 1e-9:
        raise EbbtideError(f"{what} must be a positive whole number of seconds for the replay, got {s}s")
    return int(round(s))


def _to_s(t: datetime) -> int:
    return int(math.floor(pd.Timestamp(t).timestamp()))


def _dt(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s, tz=timezone.utc)
