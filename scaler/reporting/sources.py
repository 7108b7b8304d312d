"""Where a report's numbers come from: a replay (simulated), or live history in Prometheus.

- `RecordingPlanner` wraps the planner handed to `scaler.replay.replay(..., planner=...)` and
  keeps what the replay result does not expose: every Plan, and the forecast the controller
  held at each tick (for the forecast band and the accuracy table).
- `from_replay(result, policy, ...)` -> ReportInput: strategies ebbtide (what ran), hpa, static.
- `from_prometheus(source, policy, workload, start, end, ...)` -> ReportInput: strategy `actual`
  from kube-state-metrics (`kube_deployment_spec_replicas` / `kube_statefulset_replicas`),
  Ebbtide's own metrics (bitrate caps, forecast, quality guard), and the counterfactual
  baselines replayed over the same demand history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from forecaster.series import Series
from policies.errors import EbbtideError
from policies.events import Event, expand_events
from policies.schema import Policy, Workload
from scaler.plans import Plan
from scaler.reporting.model import PlanStats, QualityFigures, ReportInput

EVENT_LOOKBACK = timedelta(days=30)
"""Event occurrences are looked for from this long before the report's start (an ebb may begin
before it)."""


class RecordingPlanner:
    """A planner (scaler.planning.plan's signature) that records every Plan it returns and the
    forecast it was given: (tick time, yhat, yhat_lower, yhat_upper) of the forecast bucket
    holding the tick. `planner` defaults to scaler.planning.plan."""

    def __init__(self, planner: Callable[..., Plan] | None = None):
        if planner is None:
            from scaler.planning import plan as planner
        self.planner = planner
        self.plans: list[Plan] = []
        self._forecast: list[tuple[datetime, float, float, float]] = []

    def __call__(self, forecast, observation, workload, policy, state, now):
        p = self.planner(forecast, observation, workload, policy, state, now)
        self.plans.append(p)
        fc = getattr(forecast, "forecast", None)
        if fc is not None and len(fc.frame):
            row = fc.frame.iloc[0]
            self._forecast.append((now, float(row["yhat"]), float(row["yhat_lower"]), float(row["yhat_upper"])))
        return p

    def changed_plans(self) -> list[Plan]:
        """The first plan and every plan whose target replicas or bitrate caps differ from the
        previous plan's (what plans.jsonl holds)."""
        out, prev = [], None
        for p in self.plans:
            key = (p.target_replicas, tuple((c.tier, c.rung) for c in p.bitrate or ()))
            if key != prev:
                out.append(p)
            prev = key
        return out

    def stats(self) -> PlanStats:
        return PlanStats.of(self.plans)

    def forecast_on(self, ts: Sequence | pd.DatetimeIndex) -> pd.DataFrame:
        """The forecast held over each interval of a timeline (`ts`, regular): the mean over the
        ticks inside [ts[i], ts[i+1]); NaN where no tick held a forecast."""
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(ts), utc=True))
        out = pd.DataFrame(np.nan, index=range(len(idx)), columns=["yhat", "yhat_lower", "yhat_upper"])
        if not self._forecast or len(idx) == 0:
            return out
        f = pd.DataFrame(self._forecast, columns=["t", "yhat", "yhat_lower", "yhat_upper"])
        t = pd.DatetimeIndex(pd.to_datetime(f.pop("t"), utc=True))
        pos = idx.searchsorted(t, side="right") - 1
        step = idx[-1] - idx[-2] if len(idx) > 1 else pd.Timedelta(0)
        keep = (pos >= 0) & (t < idx[-1] + step)
        means = f[keep].groupby(pos[keep]).mean()
        out.loc[means.index, means.columns] = means.to_numpy()
        return out


def _tier_shares(policy: Policy) -> dict[str, float] | None:
    b = policy.bitrate
    if b is None or any(t.share is None for t in b.tiers):
        return None
    return {t.name: float(t.share) for t in b.tiers}


def _shares_note(shares: dict[str, float] | None) -> tuple[str, ...]:
    """A note when the tiers' shares, which split demand into viewers for egress, leave some
    viewers in no tier: their egress is costed for no strategy (a smaller bill and a smaller
    saving than the demand carries, not a wrong one)."""
    if shares is None or sum(shares.values()) >= 1 - 1e-9:
        return ()
    total = sum(shares.values())
    return (f"the bitrate tiers' shares add up to {total:.2f}: {100 * (1 - total):.0f}% of the viewers are in no "
            "tier, and their CDN egress is costed for no strategy",)


def from_replay(result, policy: Policy, *, extra_events: Sequence[Event] = (), recorder: RecordingPlanner | None = None,
                zone: str = "UTC", billing_zone: str = "UTC", compute_realised: bool = False,
                transcoded_streams: float | None = None, focus_event: str | None = None,
                source: str = "", command: str = "", start: datetime | None = None,
                end: datetime | None = None, step: timedelta | None = None) -> ReportInput:
    """A ReportInput from a scaler.replay ReplayResult (or anything with `.workload`,
    `.timeline`, `.notes`): Ebbtide as what ran, plain autoscaling and peak capacity kept as
    baselines. Demand is read as concurrent viewers for egress, as the replay does (tier
    viewers = demand x share), when every bitrate tier has a `share`. `start`, `end`: the range
    asked for (ReportInput: rows are clipped to it). `step`: the timeline's interval (default: its
    rows' spacing; needed for a one-row timeline)."""
    workload = policy.workload(result.workload)
    frame = result.timeline.reset_index(drop=True)
    shares = _tier_shares(policy)
    viewers = caps = None
    if shares is not None:
        viewers = pd.DataFrame({t: frame["demand"].to_numpy(float) * s for t, s in shares.items()})
        cols = {t: f"cap_{t}_kbps" for t in shares}
        if all(c in frame.columns for c in cols.values()):
            caps = pd.DataFrame({t: frame[c].to_numpy(float) for t, c in cols.items()})
    ts = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True))
    if len(ts) < (1 if step is not None else 2):
        raise EbbtideError(f"report: the replay timeline has {len(ts)} interval(s); a report needs at least two "
                           f"(the interval is the rows' spacing): widen --start/--end")
    step = pd.Timedelta(step) if step is not None else ts[-1] - ts[-2]
    events = _events(list(policy.events) + [e for e in extra_events if e.name not in {p.name for p in policy.events}],
                     ts[0], ts[-1] + step, workload.forecast.calendar_tz)
    return ReportInput(
        workload=workload, cost=policy.cost, timeline=frame, strategies=("ebbtide", "hpa", "static"),
        events=tuple(events), bitrate=policy.bitrate, tier_viewers=viewers, caps_kbps=caps,
        forecast=recorder.forecast_on(frame["ts"]) if recorder is not None else None,
        plan_stats=recorder.stats() if recorder is not None else None,
        zone=zone, billing_zone=billing_zone, compute_realised=compute_realised,
        transcoded_streams=transcoded_streams, focus_event=focus_event, source=source, command=command,
        notes=tuple(getattr(result, "notes", ())) + _shares_note(shares), start=start, end=end,
        measured_quality=_replay_quality(getattr(result, "strategies", None)),
        measured_span=_replay_span(result), step=step.to_pytimedelta(),
    )


def _replay_quality(strategies) -> dict[str, QualityFigures] | None:
    """The replay's own figures per strategy (ReplayResult.strategies, or the `strategies` of
    `ebbtide replay --json`): peak pods and demand left unserved, measured at every tick. None
    when absent or incomplete (the report then computes them from the timeline)."""
    if not isinstance(strategies, Mapping):
        return None
    out = {}
    for name, s in strategies.items():
        d = s.to_dict() if hasattr(s, "to_dict") else s
        try:
            out[name] = QualityFigures(math.nan, float(d["peak_replicas"]), float(d["under_provisioned_share"]),
                                       float(d["under_provisioned_minutes"]))
        except (KeyError, TypeError, ValueError):
            return None
    return out


def _replay_span(result) -> tuple[datetime, datetime] | None:
    """The replay's start and end (a ReplayResult, or the times of `ebbtide replay --json`)."""
    try:
        a, b = (pd.Timestamp(getattr(result, k)) for k in ("start", "end"))
    except (AttributeError, TypeError, ValueError):
        return None
    if pd.isna(a) or pd.isna(b):
        return None
    a, b = (t.tz_localize("UTC") if t.tzinfo is None else t for t in (a, b))
    return a.to_pydatetime(), b.to_pydatetime()


def _events(events: Sequence[Event], start, end, tz: str | None) -> list[Event]:
    """Occurrences to cost, yearly ones on their local dates in the workload's calendar zone `tz`
    (as its forecaster and planner see them)."""
    return expand_events(list(events), pd.Timestamp(start).to_pydatetime() - EVENT_LOOKBACK,
                         pd.Timestamp(end).to_pydatetime(), tz)


# --------------------------------------------------------------------------- Prometheus
def replicas_query(workload: Workload) -> str:
    """kube-state-metrics' desired replicas of the workload's target (max over duplicate scrapes)."""
    t = workload.target
    if t.kind == "StatefulSet":
        return f'max(kube_statefulset_replicas{{namespace="{t.namespace}",statefulset="{t.name}"}})'
    return f'max(kube_deployment_spec_replicas{{namespace="{t.namespace}",deployment="{t.name}"}})'


def ready_query(workload: Workload) -> str:
    t = workload.target
    if t.kind == "StatefulSet":
        return f'max(kube_statefulset_status_replicas_ready{{namespace="{t.namespace}",statefulset="{t.name}"}})'
    return f'max(kube_deployment_status_replicas_ready{{namespace="{t.namespace}",deployment="{t.name}"}})'


def _known(s: Series) -> bool:
    return bool(np.isfinite(s.values.to_numpy(float)).any())


def from_prometheus(source, policy: Policy, workload_name: str | None, start: datetime, end: datetime, *,
                    step: timedelta = timedelta(minutes=5), extra_events: Sequence[Event] = (),
                    zone: str = "UTC", billing_zone: str = "UTC", compute_realised: bool = False,
                    transcoded_streams: float | None = None, focus_event: str | None = None,
                    command: str = "", replay_fn: Callable | None = None,
                    on_progress: Callable[[float], None] | None = None) -> ReportInput:
    """A ReportInput from live history: what ran (`actual`) from kube-state-metrics and
    Ebbtide's metrics, and the baselines (plain autoscaling, peak capacity kept) replayed over
    the demand history read from the same Prometheus (`source`: a forecaster.history
    MetricsSource). Demand history is read from `start - forecast.lookback` so the replay's
    forecaster has what it had live."""
    from scaler.replay import replay as default_replay

    workload = policy.workload(workload_name) if workload_name else policy.workloads[0]
    replay_fn = replay_fn or default_replay
    history_from = pd.Timestamp(start) - pd.Timedelta(workload.forecast.lookback)
    demand = source.range(workload.demand.query, history_from.to_pydatetime(), end, step)
    inside = demand.values[(demand.index >= pd.Timestamp(start)) & (demand.index < pd.Timestamp(end))]
    if not np.isfinite(inside.to_numpy(float)).any():
        raise EbbtideError(f"prometheus: no demand data for workload {workload.name} "
                           f"({workload.demand.query}) between {start} and {end}")
    replicas = source.range(replicas_query(workload), start, end, step)
    if not _known(replicas):
        raise EbbtideError(f"prometheus: no replicas for {workload.target.kind} {workload.target.namespace}/"
                           f"{workload.target.name} between {start} and {end} ({replicas_query(workload)}); "
                           f"is kube-state-metrics scraped?")
    result = replay_fn(demand, policy, workload.name, extra_events=extra_events, start=start, end=end,
                       on_progress=on_progress)
    frame = result.timeline.reset_index(drop=True)
    ts = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True))
    keep = ["ts", "demand", "replicas_hpa", "replicas_static", "ready_hpa", "ready_static"]
    frame = frame[[c for c in keep if c in frame.columns]].copy()
    frame["replicas_actual"] = replicas.values.reindex(ts).to_numpy(float)
    ready = source.range(ready_query(workload), start, end, step)
    notes = []
    if _known(ready):
        frame["ready_actual"] = ready.values.reindex(ts).to_numpy(float)
    else:
        notes.append(f"ready replicas unknown ({ready_query(workload)} has no data): demand left unserved "
                     f"is not shown for what ran")
    viewers = caps = None
    bitrate = policy.bitrate
    if bitrate is not None:
        got = {t.name: source.range(t.viewers_query, start, end, step) for t in bitrate.tiers}
        if all(_known(s) for s in got.values()):
            viewers = pd.DataFrame({k: s.values.reindex(ts).to_numpy(float) for k, s in got.items()})
            cap = {t.name: source.range(f'max(ebbtide_bitrate_cap_kbps{{tier="{t.name}"}})', start, end, step)
                   for t in bitrate.tiers}
            if all(_known(s) for s in cap.values()):
                caps = pd.DataFrame({k: s.values.reindex(ts).to_numpy(float) for k, s in cap.items()})
    forecast = None
    q = 'max(ebbtide_forecast_demand{{workload="{w}",quantile="{q}"}})'
    yhat = source.range(q.format(w=workload.name, q="yhat"), start, end, step)
    upper = source.range(q.format(w=workload.name, q="upper"), start, end, step)
    if _known(yhat) and _known(upper):
        forecast = pd.DataFrame({"yhat": yhat.values.reindex(ts).to_numpy(float),
                                 "yhat_upper": upper.values.reindex(ts).to_numpy(float)})
    guard = source.range(f'max(ebbtide_quality_guard_active{{workload="{workload.name}"}})', start, end, step)
    if _known(guard):
        g = guard.values.to_numpy(float)
        minutes = float(np.nansum(g > 0.5)) * step.total_seconds() / 60
        starts = int(np.sum((g[1:] > 0.5) & ~(g[:-1] > 0.5)) + (g[0] > 0.5 if len(g) else 0))
        notes.append(f"the quality guard was active for {minutes:g} minutes in {starts} stretch(es) "
                     f"(ebbtide_quality_guard_active)")
    events = _events(list(policy.events) + list(extra_events), ts[0], pd.Timestamp(end), workload.forecast.calendar_tz)
    return ReportInput(
        workload=workload, cost=policy.cost, timeline=frame, strategies=("actual", "hpa", "static"),
        events=tuple(events), bitrate=bitrate, tier_viewers=viewers, caps_kbps=caps, forecast=forecast,
        zone=zone, billing_zone=billing_zone, compute_realised=compute_realised,
        transcoded_streams=transcoded_streams, focus_event=focus_event, start=start, end=end,
        source=f"history in Prometheus at {getattr(source, 'display_url', 'a MetricsSource')}; baselines replayed "
               f"over the same demand", command=command,
        notes=tuple(notes) + tuple(result.notes),
    )
