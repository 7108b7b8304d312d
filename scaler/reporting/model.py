"""The numbers of a finance report, from one timeline (what ran, and the counterfactuals).

Pure: no clock, no files. `build_report(ReportInput) -> Report` costs every strategy of the
timeline with `scaler.costing` by local day and by event window (the event itself, and its ebb:
event end to + 14 days), subtracts the baselines (savings), and adds what a finance reader needs
next to money: demand left unserved, quality-guard interventions and forecast accuracy.

Conventions:
- `strategies[0]` is what ran (`ebbtide` in a replay, `actual` from Prometheus history); the
  others are counterfactual baselines (`hpa`: plain autoscaling, `static`: peak capacity kept).
- Egress is costed when viewers per bitrate tier are known: the strategy that ran at its tier
  caps (`caps_kbps`), every baseline at the ladder's top rung (no caps). Transcoding is costed
  when the number of transcoded streams is known: rungs produced = ladder rungs at or below the
  highest cap (baselines: every rung).
- Money is `Decimal`; totals are sums of rounded lines (docs/cost-model.md section 4), so the
  HTML's totals and the CSV's sums are the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from forecaster.backtest import Metrics
from policies.errors import EbbtideError
from policies.events import EBB_SPAN, Event
from policies.schema import Bitrate, Cost, Rung, Workload
from policies.units import format_duration
from scaler.costing import (
    ComponentCosts,
    CostBreakdown,
    EgressTimeline,
    ReplicaTimeline,
    Savings,
    TranscodingTimeline,
    cost_breakdown,
    currency_quantum,
    rungs_produced,
    savings,
)
from scaler.plans import Plan

EBB_AFTER = EBB_SPAN
"""The ebb of an event: [event end, end + 14 days) (policies.events.EBB_SPAN), as in the replay's
post-event windows."""

STRATEGY_LABELS = {
    "ebbtide": "Ebbtide",
    "actual": "What ran (measured)",
    "hpa": "Plain autoscaling (HPA)",
    "static": "Peak capacity kept",
}
"""Plain-language names of strategies, for readers who do not know Kubernetes."""


BASELINE_PHRASES = {"hpa": "plain autoscaling (HPA)", "static": "keeping peak capacity"}
"""How a sentence names a baseline: "saved $X against keeping peak capacity"."""


COMPONENT_NAMES = {"egress": "CDN egress", "transcoding": "transcoding"}
"""How a sentence names a billed-by-use component."""


def strategy_label(name: str) -> str:
    return STRATEGY_LABELS.get(name, name)


def baseline_phrase(name: str) -> str:
    return BASELINE_PHRASES.get(name, strategy_label(name))


def event_label(name: str) -> str:
    """An event's name as the calendar writes it (`singles-day`, `STS-70 launch`): the same string
    as in costs_by_event.csv, so a reader can match the two (title-casing had turned
    `singles-day` and `singles_day` into one label, and `STS-70` into `Sts 70`)."""
    return name


def format_money(amount: Decimal, currency: str) -> str:
    """`$12,345.67` for USD, `-$5.00`; other currencies as `EUR 12,345.67`, with the digits of
    their minor unit (`JPY 14,088`, `KWD 1.250`)."""
    sign = "-" if amount < 0 else ""
    digits = max(0, -currency_quantum(currency).as_tuple().exponent)
    text = f"{abs(amount):,.{digits}f}"
    return f"{sign}${text}" if currency == "USD" else f"{sign}{currency} {text}"


# --------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class PlanStats:
    """What the controller decided, counted over its plans.

    `ticks`: plans made; `changes`: plans whose target replicas or bitrate caps differ from the
    previous plan's; `guard_ticks`: plans made while the quality guard was active;
    `guard_interventions`: plans in which the guard changed the replica count (its step's
    `after` differs from `before`); `trusted_ticks`: plans made with a trusted forecast.
    """

    ticks: int = 0
    changes: int = 0
    guard_ticks: int = 0
    guard_interventions: int = 0
    trusted_ticks: int = 0

    @classmethod
    def of(cls, plans: Sequence[Plan]) -> "PlanStats":
        changes = guard_ticks = interventions = trusted = 0
        prev: tuple | None = None
        for p in plans:
            key = (p.target_replicas, tuple((c.tier, c.rung) for c in p.bitrate or ()))
            changes += int(prev is not None and key != prev)
            prev = key
            guard_ticks += int(p.guard_active)
            interventions += int(any(s.name == "quality_guard" and s.before != s.after for s in p.steps))
            trusted += int(p.forecast_trusted)
        return cls(len(plans), changes, guard_ticks, interventions, trusted)

    @property
    def trusted_share(self) -> float | None:
        return self.trusted_ticks / self.ticks if self.ticks else None


# --------------------------------------------------------------------------- input
@dataclass(frozen=True)
class ReportInput:
    """Everything a report is computed from.

    `timeline`: one row per interval (value held over [ts[i], ts[i+1]), the last one for one
    more interval, or until `end`): `ts` (UTC), `demand` (the workload's demand unit),
    `replicas_<strategy>` (pods, time-weighted means) for every strategy, optionally
    `ready_<strategy>` (ready pods, for demand left unserved).
    `tier_viewers`: concurrent viewers per bitrate tier (columns = tier names), row-aligned
    with the timeline; `caps_kbps`: the tier caps of `strategies[0]` (kbit/s), row-aligned.
    `forecast`: `yhat`, `yhat_lower`, `yhat_upper` row-aligned (the forecast the controller
    held at each interval), NaN where none. `events`: event occurrences (expanded) to cost.
    `zone`: the zone report days are counted in; `billing_zone`: the CDN contract's.
    `start`, `end`: the range asked for. Rows are clipped to it (a row straddling `start`
    counts from `start`; the last row ends at `end`), so a trace whose samples sit off the
    hour (12:02:53) bills no sliver of the day before or after; a range the data do not cover
    in full is said in a note. Default: the data's own span.
    `source` says where the numbers come from; `command` reproduces them.
    `measured_quality`: the replay's own figures per strategy over `measured_span` (peak pods at
    any tick, demand left unserved integrated over its ticks; `ebbtide replay --json`). Used for
    the quality table when the report covers that span, since a timeline's interval averages
    hide shortfalls inside an interval; otherwise the table is computed from the timeline.
    `step`: the timeline's interval; default its rows' spacing (give it for a one-row timeline,
    e.g. one hour cut from an hourly replay).
    """

    workload: Workload
    cost: Cost
    timeline: pd.DataFrame
    strategies: tuple[str, ...]
    events: tuple[Event, ...] = ()
    bitrate: Bitrate | None = None
    tier_viewers: pd.DataFrame | None = None
    caps_kbps: pd.DataFrame | None = None
    forecast: pd.DataFrame | None = None
    plan_stats: PlanStats | None = None
    zone: str = "UTC"
    billing_zone: str = "UTC"
    compute_realised: bool = False
    transcoded_streams: float | None = None
    focus_event: str | None = None
    ebb_after: timedelta = EBB_AFTER
    end: datetime | None = None
    start: datetime | None = None
    source: str = ""
    command: str = ""
    notes: tuple[str, ...] = ()
    measured_quality: Mapping[str, "QualityFigures"] | None = None
    measured_span: tuple[datetime, datetime] | None = None
    step: timedelta | None = None


# --------------------------------------------------------------------------- output
@dataclass(frozen=True)
class Window:
    """A report window: an event itself (`kind` "event") or its ebb ("ebb"), clipped to the data."""

    name: str
    event: str
    kind: str
    start: datetime
    end: datetime
    clipped: bool = False

    @property
    def label(self) -> str:
        what = "the event itself" if self.kind == "event" else "the ebb after it"
        return f"{event_label(self.event)}: {what}{' (part in the report)' if self.clipped else ''}"


@dataclass(frozen=True)
class QualityFigures:
    """Demand left unserved by one strategy: demand above ready capacity (ready pods x
    per_replica) as a share of all demand, and the minutes with any shortfall. `pod_hours`: pods
    x hours paid for; `peak_pods`: most pods. From a timeline, the shortfall is integrated over
    its intervals' averages (a lower bound) and `peak_pods` is the highest interval average; from
    the replay's own figures (Report.quality_measured), both are measured at every tick."""

    pod_hours: float
    peak_pods: float
    unserved_share: float | None
    unserved_minutes: float | None


@dataclass(frozen=True)
class TierQuality:
    """The video quality one viewer tier received under what ran: its viewer-hours by the cap
    they were served under (shares of `viewer_hours`, one per ladder rung, highest first). The
    baselines stream the ladder's top rung to every viewer, so the CDN and transcoding savings are
    this difference. `between`: viewer-hours of intervals whose cap changed inside them (the
    timeline holds an average between two rungs); `unknown`: intervals with no cap recorded."""

    tier: str
    viewer_hours: float
    by_rung: tuple[tuple[str, float], ...]
    between: float
    unknown: float

    def text(self) -> str:
        """`core 720p 100%`, or `edge 1080p 20%, 360p 80%` (shares of at least 0.5%)."""
        parts = [f"{name} {100 * share:.0f}%" for name, share in self.by_rung if share >= 0.005]
        parts += [f"{what} {100 * share:.0f}%" for what, share in (("between rungs", self.between),
                                                                   ("unknown", self.unknown)) if share >= 0.005]
        return f"{self.tier} {', '.join(parts) or '-'}"


def _on_rungs(caps_kbps: np.ndarray, ladder_kbps: Sequence[float]) -> np.ndarray:
    """(rows x rungs) True where a row's cap is that ladder rung (within float noise); a cap
    that is NaN is no rung."""
    return np.isclose(np.asarray(caps_kbps, float)[:, None], np.asarray(ladder_kbps, float)[None, :],
                      rtol=1e-9, atol=1e-6)


def _video_quality(viewers: pd.DataFrame, caps: pd.DataFrame | None, tiers: Sequence[str],
                   ladder: Sequence[Rung], dt_h: np.ndarray) -> tuple[TierQuality, ...]:
    """Each tier's viewer-hours by the cap it ran under (TierQuality); viewers unknown count as none."""
    out = []
    kbps = [float(r.kbps) for r in ladder]
    for t in tiers:
        w = np.nan_to_num(viewers[t].to_numpy(float), nan=0.0).clip(min=0) * dt_h
        total = float(w.sum())
        if total <= 0:
            continue
        k = caps[t].to_numpy(float) if caps is not None and t in caps.columns else np.full(len(w), np.nan)
        known = np.isfinite(k)
        on = _on_rungs(k, kbps)
        by_rung = tuple((r.name, float(w[on[:, i]].sum()) / total) for i, r in enumerate(ladder))
        out.append(TierQuality(t, total, by_rung, float(w[known & ~on.any(axis=1)].sum()) / total,
                               float(w[~known].sum()) / total))
    return tuple(out)


@dataclass(frozen=True)
class Accuracy:
    """Forecast accuracy over one range: the forecasts as held by the controller against what came."""

    label: str
    metrics: Metrics


@dataclass(frozen=True)
class Headline:
    """The report's first sentence and the figures in it (money, exact)."""

    text: str
    window: Window | None
    ran: Decimal
    baselines: dict[str, Decimal]
    saved: dict[str, Decimal]
    saved_pct: dict[str, float | None]


@dataclass(frozen=True)
class Report:
    """A computed report. `daily[s]`, `windowed[s]`: cost lines of strategy `s` by local day
    and by event window; `savings_*[b]`: strategies[0] against baseline `b`."""

    input: ReportInput
    start: datetime
    end: datetime
    step: timedelta
    windows: tuple[Window, ...]
    daily: dict[str, CostBreakdown]
    windowed: dict[str, CostBreakdown]
    savings_daily: dict[str, Savings]
    savings_windowed: dict[str, Savings]
    quality: dict[str, QualityFigures]
    accuracy: tuple[Accuracy, ...]
    headline: Headline
    notes: tuple[str, ...] = field(default=())
    not_costed: dict[str, str] = field(default_factory=dict)
    """Components not costed ("egress", "transcoding") -> why: their cells read "not costed", not
    0.00, and costs.csv has no lines for them."""
    quality_measured: bool = False
    """`quality` holds the replay's own, tick-by-tick figures (ReportInput.measured_quality), not
    the timeline's interval averages."""
    video_quality: tuple[TierQuality, ...] = ()
    """What ran: each bitrate tier's viewer-hours by the cap they were served under (empty when
    the policy has no bitrate section or the tiers' viewers are unknown)."""

    @property
    def ran(self) -> str:
        return self.input.strategies[0]

    @property
    def baselines(self) -> tuple[str, ...]:
        return self.input.strategies[1:]

    @property
    def currency(self) -> str:
        return self.input.cost.currency

    def totals(self) -> dict[str, ComponentCosts]:
        """Whole-range cost per strategy (sum of the daily lines = the CSV's sums)."""
        return {s: b.total() for s, b in self.daily.items()}

    def rows(self) -> list[dict[str, object]]:
        """costs.csv: the daily lines of every strategy (no window rows: the days partition the
        range, so a spreadsheet's column sums are the report's totals)."""
        return [r for s in self.input.strategies for r in self.daily[s].rows()]

    def window_rows(self) -> list[dict[str, object]]:
        """costs_by_event.csv: one line per event window, strategy and cost object (windows overlap
        the days and each other: do not add them to the daily rows)."""
        return [r for s in self.input.strategies if s in self.windowed for r in self.windowed[s].rows()]


# --------------------------------------------------------------------------- building
def _timeline_index(frame: pd.DataFrame, step: timedelta | None) -> pd.DatetimeIndex:
    if "ts" not in frame.columns:
        raise EbbtideError(f"report timeline has no `ts` column (columns: {', '.join(map(str, frame.columns))})")
    idx = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True))
    if len(idx) < (1 if step is not None else 2):
        raise EbbtideError("report timeline needs at least two intervals (or one and its interval, `step`)")
    return idx


def _aligned(frame: pd.DataFrame | None, n: int, what: str) -> pd.DataFrame | None:
    if frame is None:
        return None
    if len(frame) != n:
        raise EbbtideError(f"report: {what} has {len(frame)} rows for a timeline of {n}")
    return frame.reset_index(drop=True)


def event_windows(events: Sequence[Event], start: datetime, end: datetime,
                  ebb_after: timedelta = EBB_AFTER) -> list[Window]:
    """For each event occurrence overlapping [start, end): the event [start, end) and its ebb
    [end, end + ebb_after), each clipped to [start, end) and dropped when empty."""
    out: list[Window] = []
    seen: set[str] = set()
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    for e in sorted(events, key=lambda e: e.start):
        for kind, a0, b0 in (("event", e.start, e.end), ("ebb", e.end, e.end + ebb_after)):
            a, b = max(pd.Timestamp(a0), t0), min(pd.Timestamp(b0), t1)
            if b <= a:
                continue
            name = f"{e.name} {kind}"
            if name in seen:  # a recurring event seen twice: tell the occurrences apart
                name = f"{name} {a.tz_convert('UTC'):%Y-%m-%d}"
            seen.add(name)
            clipped = a != pd.Timestamp(a0) or b != pd.Timestamp(b0)
            out.append(Window(name, e.name, kind, a.to_pydatetime(), b.to_pydatetime(), clipped))
    return out


def _quality(frame: pd.DataFrame, strategy: str, per_replica: float, dt_h: np.ndarray) -> QualityFigures:
    pods = frame[f"replicas_{strategy}"].to_numpy(float)
    pod_hours = float(np.nansum(pods * dt_h))
    peak = float(np.nanmax(pods)) if np.isfinite(pods).any() else math.nan
    ready_col = f"ready_{strategy}"
    if ready_col not in frame.columns:
        return QualityFigures(pod_hours, peak, None, None)
    demand = frame["demand"].to_numpy(float)
    known = np.isfinite(demand) & np.isfinite(frame[ready_col].to_numpy(float))
    short = np.where(known, np.maximum(demand - frame[ready_col].to_numpy(float) * per_replica, 0.0), 0.0)
    served = float(np.sum(np.where(known, demand, 0.0) * dt_h))
    share = float(np.sum(short * dt_h) / served) if served > 0 else None
    minutes = float(np.sum(np.where(short > 1e-9, dt_h, 0.0)) * 60.0)
    return QualityFigures(pod_hours, peak, share, minutes)


def _accuracy(idx: pd.DatetimeIndex, demand: np.ndarray, forecast: pd.DataFrame | None,
              windows: Sequence[Window], end: datetime) -> tuple[Accuracy, ...]:
    if forecast is None or not {"yhat", "yhat_upper"} <= set(forecast.columns):
        return ()
    yhat, upper = forecast["yhat"].to_numpy(float), forecast["yhat_upper"].to_numpy(float)
    has = np.isfinite(yhat) & np.isfinite(upper)
    if not has.any():
        return ()
    out = []
    ranges = [("whole report (where a forecast was held)", idx[0], pd.Timestamp(end))]
    ranges += [(w.label, pd.Timestamp(w.start), pd.Timestamp(w.end)) for w in windows]
    for label, a, b in ranges:
        m = has & (idx >= a) & (idx < b)
        if m.sum() == 0:
            continue
        out.append(Accuracy(label, Metrics.of(demand[m], yhat[m], upper[m])))
    return tuple(out)


def _pct(part: Decimal, whole: Decimal) -> float | None:
    return float(part / whole * 100) if whole != 0 else None


def _headline(report_windows: Sequence[Window], windowed: Mapping[str, CostBreakdown],
              daily: Mapping[str, CostBreakdown], strategies: Sequence[str], currency: str,
              focus_event: str | None, start: datetime, end: datetime, zone: str,
              compute_realised: bool = False, not_costed: Mapping[str, str] | None = None) -> Headline:
    ebbs = [w for w in report_windows if w.kind == "ebb" and (focus_event is None or w.event == focus_event)]
    window = ebbs[-1] if ebbs else None
    local = lambda t: pd.Timestamp(t).tz_convert(zone)  # noqa: E731
    if window is not None:
        costs = {s: windowed[s].by_period()[window.name] for s in strategies}
        last_day = local(window.end) - pd.Timedelta(seconds=1)
        subject = (f"The {event_label(window.event)} ebb ({_span(local(window.start), last_day)}"
                   f"{', the part in the report' if window.clipped else ''})")
    else:
        costs = {s: daily[s].total() for s in strategies}
        subject = f"The period {_span(local(start), local(end) - pd.Timedelta(seconds=1))}"
    totals = {s: c.total for s, c in costs.items()}
    ran, baselines = strategies[0], strategies[1:]
    m = lambda d: format_money(d, currency)  # noqa: E731
    who = "with Ebbtide" if ran == "ebbtide" else ""
    parts = [f"{subject} cost {m(totals[ran])}{' ' + who if who else ''}"]
    phrases = {"static": "keeping peak capacity would have cost", "hpa": "plain autoscaling"}
    for b in baselines:
        parts.append(f"{phrases.get(b, strategy_label(b) + ' would have cost')} {m(totals[b])}")
    saved = {b: totals[b] - totals[ran] for b in baselines}
    pct = {b: _pct(saved[b], totals[b]) for b in baselines}
    verdicts = []
    names = {"static": "peak capacity", "hpa": "plain autoscaling"}
    potential = False
    for b in baselines:
        p, name = pct[b], names.get(b, strategy_label(b))
        share = f" ({abs(p):.1f}%)" if p is not None else ""
        compute = costs[b].compute - costs[ran].compute
        if saved[b] < 0:
            verdicts.append(f"cost {m(-saved[b])}{share} more than {name}")
        elif compute_realised or compute <= 0:
            verdicts.append(f"saved {m(saved[b])}{share} against {name}")
        elif compute >= saved[b]:  # all of it (or more) is compute: potential
            potential = True
            verdicts.append(f"saved a potential {m(saved[b])}{share} against {name} (all compute)")
        else:
            potential = True
            verdicts.append(f"saved {m(saved[b])}{share} against {name} (of which {m(compute)} potential, "
                            f"on compute)")
    text = "; ".join(parts)
    if verdicts:
        text += "; " + " and ".join(verdicts)
    text += "."
    if potential:
        text += " Compute savings are potential: they become money once the freed machines are released."
    if ran == "ebbtide":  # a replay: every strategy, Ebbtide's included, is simulated on recorded demand
        text += (" Simulated: recorded demand replayed through Ebbtide and each baseline, so these are what each "
                 "would have cost.")
    if not_costed:
        text += f" {_upper_first(' and '.join(COMPONENT_NAMES[k] for k in COMPONENT_NAMES if k in not_costed))} " \
                f"not costed."
    return Headline(text, window, totals[ran], {b: totals[b] for b in baselines}, saved, pct)


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _span(a: pd.Timestamp, b: pd.Timestamp) -> str:
    """`Jul 13, 1995` for one local day, else `Jul 13 to Jul 20, 1995`."""
    if a.date() == b.date():
        return f"{a:%b %-d, %Y}"
    return f"{a:%b %-d} to {b:%b %-d, %Y}"


def _ran_caps(caps: pd.DataFrame, tiers: Sequence[str], top: float, ladder: Sequence[float], step: timedelta,
              billing: str, transcoding: bool, notes: list[str]
              ) -> tuple[dict[str, np.ndarray | float], dict[str, np.ndarray | float]]:
    """The tier caps of what ran (kbit/s): for its egress, and for the rungs it transcoded. A
    row whose cap is between two rungs held two rungs in turn, so which rungs were produced is
    unknown: transcoding counts every rung there under any billing (its average cap under-counted
    them: 4 rungs produced, 3 counted). A tier or interval whose cap is unknown
    is costed at the ladder's top, as the baselines are, so it saves nothing: costing it at
    nothing saved what was never measured. Caps between two rungs are a row's average (a cap
    changed inside a row): bandwidth billing reads 5-minute samples, whose peak inside such a row
    is unknown, so those rows are billed at the top too (a day's average cap had billed a daily
    timeline's 95th percentile 12% below what any of its samples could give)."""
    out: dict[str, np.ndarray | float] = {}
    rungs_of: dict[str, np.ndarray | float] = {}
    unknown = 0
    between = np.zeros(len(caps), dtype=bool)  # rows where some tier's cap is between rungs
    bandwidth = billing != "per_gb"
    for t in tiers:
        if t not in caps.columns:
            out[t], rungs_of[t], unknown = top, top, unknown + len(caps)
            continue
        k = caps[t].to_numpy(float)
        nan = ~np.isfinite(k)
        unknown += int(nan.sum())
        off_rung = ~nan & ~_on_rungs(k, ladder).any(axis=1)
        between |= off_rung
        out[t] = np.where(nan | (bandwidth & off_rung), top, k)
        rungs_of[t] = np.where(nan | off_rung, top, k)
    if unknown:
        notes.append(f"bitrate caps unknown on {unknown} tier-interval(s): costed at the ladder's top rung, as the "
                     f"baselines are (no saving is counted where none was measured)")
    if bandwidth and between.any():
        notes.append(f"{int(between.sum())} of {len(caps)} intervals hold a cap between two rungs (a cap changed "
                     f"inside the {format_duration(step)} interval, so the timeline holds its average); "
                     f"{billing} billing reads 5-minute samples, whose peak there is unknown: what ran is billed "
                     f"at the ladder's top rung in those intervals (no saving counted); replay at a finer "
                     f"interval for the exact bill")
    elif transcoding and between.any():
        notes.append(f"{int(between.sum())} of {len(caps)} intervals hold a cap between two rungs (a cap changed "
                     f"inside the {format_duration(step)} interval, so the timeline holds its average); which rungs "
                     f"were transcoded there is unknown: transcoding is costed at every rung in those intervals "
                     f"(no saving counted); replay at a finer interval for the exact bill")
    return out, rungs_of


def _clip(idx: pd.DatetimeIndex, step: pd.Timedelta, start: datetime | None, end: datetime | None,
          notes: list[str]) -> tuple[np.ndarray, pd.DatetimeIndex, pd.Timestamp]:
    """Rows of `idx` (each held for `step`, the last one until `end` when given) overlapping
    [start, end): (mask, their times with the first moved up to `start`, the end). A range the
    rows do not fill is said in `notes`."""
    data_end = idx[-1] + step
    a = max(pd.Timestamp(start), idx[0]) if start is not None else idx[0]
    b = pd.Timestamp(end) if end is not None else data_end
    row_end = idx[1:].append(pd.DatetimeIndex([max(data_end, b)]))
    keep = np.asarray((row_end > a) & (idx < b))
    if keep.sum() < 1:
        raise EbbtideError(f"report: no row of the timeline ({idx[0].isoformat()} .. {data_end.isoformat()}) is "
                           f"inside the range asked ({a.isoformat()} .. {b.isoformat()})")
    kept = idx[keep]
    kept = kept[1:].insert(0, max(kept[0], a)) if len(kept) > 1 else pd.DatetimeIndex([max(kept[0], a)])
    if start is not None and pd.Timestamp(start) < idx[0]:
        notes.append(f"the data start at {idx[0].isoformat()}, after the range's start "
                     f"{pd.Timestamp(start).isoformat()}: the report covers the data only")
    if end is not None and pd.Timestamp(end) > data_end:
        notes.append(f"the data end at {data_end.isoformat()}, before the range's end "
                     f"{pd.Timestamp(end).isoformat()}: the report covers the data only")
        b = data_end
    return keep, kept, b


def build_report(inp: ReportInput) -> Report:
    """Cost every strategy of `inp` by day and by event window, with savings and context."""
    if not inp.strategies:
        raise EbbtideError("report: no strategies given")
    frame = inp.timeline.reset_index(drop=True)
    idx = _timeline_index(frame, inp.step)
    missing = [s for s in inp.strategies if f"replicas_{s}" not in frame.columns]
    if missing:
        raise EbbtideError(f"report timeline has no replicas for {', '.join(missing)} "
                           f"(columns: {', '.join(map(str, frame.columns))})")
    n = len(frame)
    viewers = _aligned(inp.tier_viewers, n, "tier viewers")
    caps = _aligned(inp.caps_kbps, n, "bitrate caps")
    forecast = _aligned(inp.forecast, n, "forecast")
    step = inp.step if inp.step is not None else (idx[-1] - idx[-2]).to_pytimedelta()
    notes = list(inp.notes)
    keep, idx, end = _clip(idx, pd.Timedelta(step), inp.start, inp.end, notes)
    if not keep.all():
        frame, viewers, caps, forecast = (None if f is None else f[keep].reset_index(drop=True)
                                          for f in (frame, viewers, caps, forecast))
        n = len(frame)
    edges = idx.append(pd.DatetimeIndex([end]))
    dt_h = np.diff(edges.as_unit("ns").asi8) / 3.6e12

    video_quality: tuple[TierQuality, ...] = ()
    egress_for: dict[str, list[EgressTimeline]] = {s: [] for s in inp.strategies}
    transcoding_for: dict[str, list[TranscodingTimeline]] = {s: [] for s in inp.strategies}
    bitrate = inp.bitrate
    if bitrate is not None and viewers is not None:
        tiers = [t.name for t in bitrate.tiers]
        absent = [t for t in tiers if t not in viewers.columns]
        if absent:
            raise EbbtideError(f"report: no viewers for bitrate tier(s) {', '.join(absent)}")
        top = float(bitrate.ladder[0].kbps)
        ladder = [float(r.kbps) for r in bitrate.ladder]
        ran_kbps, ran_rungs = (_ran_caps(caps, tiers, top, ladder, step, inp.cost.egress_billing,
                                         inp.transcoded_streams is not None, notes) if caps is not None else ({}, {}))
        for s in inp.strategies:
            ran = s == inp.strategies[0] and caps is not None
            kbps = ran_kbps if ran else {t: top for t in tiers}
            egress_for[s].append(EgressTimeline(idx, {t: (viewers[t].to_numpy(float), kbps[t]) for t in tiers},
                                                end=end.to_pydatetime(), name="cdn"))
            if inp.transcoded_streams is not None:
                rungs = rungs_produced(ladder, ran_rungs if ran else kbps)
                transcoding_for[s].append(TranscodingTimeline(idx, inp.transcoded_streams,
                                                              rungs if rungs.size == n else float(rungs[0]),
                                                              end=end.to_pydatetime()))
        if caps is None:
            notes.append("bitrate caps unknown: egress of what ran is costed at the ladder's top rung")
        video_quality = _video_quality(viewers, caps, tiers, bitrate.ladder, dt_h)
    elif bitrate is not None:
        notes.append("CDN egress not costed: viewers per bitrate tier are unknown (give every tier a `share`, "
                     "or record the tiers' viewers_query in Prometheus)")
    if bitrate is None:
        notes.append("CDN egress and transcoding not costed: the policy has no `bitrate` section (no ladder to "
                     "cost streams with); the figures are compute only")
    elif inp.transcoded_streams is None:
        notes.append("transcoding not costed: the number of transcoded streams is not set "
                     "(`ebbtide report --transcoded-streams N`)")
    not_costed = {}
    if not egress_for[inp.strategies[0]]:
        not_costed["egress"] = ("the policy has no `bitrate` section" if bitrate is None
                                else "viewers per bitrate tier are unknown")
    if not transcoding_for[inp.strategies[0]]:
        not_costed["transcoding"] = ("the policy has no `bitrate` section" if bitrate is None
                                     else "the number of transcoded streams is not set: --transcoded-streams N"
                                     if inp.transcoded_streams is None else "viewers per bitrate tier are unknown")
    ran_pods = frame[f"replicas_{inp.strategies[0]}"].to_numpy(float)
    if not np.isfinite(ran_pods).all():  # cost every strategy over the same hours, or savings count the gap
        gap = ~np.isfinite(ran_pods)
        frame = frame.copy()
        for s in inp.strategies[1:]:
            frame.loc[gap, f"replicas_{s}"] = np.nan
        notes.append(f"{float(np.sum(dt_h[gap])):g} h where the replicas of what ran are unknown: every strategy's "
                     f"compute is left out there, so the savings compare the same hours")

    def breakdown(s: str, by) -> CostBreakdown:
        rep = ReplicaTimeline.for_workload(inp.workload, idx, frame[f"replicas_{s}"].to_numpy(float),
                                           end=end.to_pydatetime())
        return cost_breakdown(s, inp.cost, replicas=[rep], egress=egress_for[s], transcoding=transcoding_for[s],
                              by=by, zone=inp.zone, billing_zone=inp.billing_zone,
                              quantum=currency_quantum(inp.cost.currency))

    daily = {s: breakdown(s, "day") for s in inp.strategies}
    windows = event_windows(inp.events, idx[0].to_pydatetime(), end.to_pydatetime(), inp.ebb_after)
    if inp.focus_event is not None and not any(w.event == inp.focus_event for w in windows):
        raise EbbtideError(f"report: event {inp.focus_event!r} does not overlap the data "
                           f"({idx[0]:%Y-%m-%d} .. {end:%Y-%m-%d})")
    by = [(w.name, w.start, w.end) for w in windows]
    windowed = {s: breakdown(s, by) for s in inp.strategies} if by else {}
    ran = inp.strategies[0]
    sav_d = {b: savings(daily[ran], daily[b], compute_realised=inp.compute_realised) for b in inp.strategies[1:]}
    sav_w = ({b: savings(windowed[ran], windowed[b], compute_realised=inp.compute_realised)
              for b in inp.strategies[1:]} if windowed else {})
    per_replica = float(inp.workload.demand.per_replica)
    quality = {s: _quality(frame, s, per_replica, dt_h) for s in inp.strategies}
    measured = _measured_quality(inp, quality, idx[0], end, step)
    accuracy = _accuracy(idx, frame["demand"].to_numpy(float), forecast, windows, end)
    headline = _headline(windows, windowed, daily, inp.strategies, inp.cost.currency, inp.focus_event,
                         idx[0].to_pydatetime(), end.to_pydatetime(), inp.zone, inp.compute_realised, not_costed)
    for b in daily.values():
        notes.extend(n for n in b.notes if n not in notes)
    return Report(inp, idx[0].to_pydatetime(), end.to_pydatetime(), step, tuple(windows), daily, windowed,
                  sav_d, sav_w, measured or quality, accuracy, headline, tuple(notes), not_costed,
                  measured is not None, video_quality)


def _measured_quality(inp: ReportInput, timeline: Mapping[str, QualityFigures], start: pd.Timestamp,
                      end: pd.Timestamp, step: timedelta) -> dict[str, QualityFigures] | None:
    """The replay's own quality figures, with the timeline's pod-hours (what the costs are computed
    from), when they cover every strategy and the report's whole range (within one interval);
    else None (they cover another span: the timeline's figures are used)."""
    m, span = inp.measured_quality, inp.measured_span
    if not m or span is None or not all(s in m for s in inp.strategies):
        return None
    tol = pd.Timedelta(step)
    if abs(pd.Timestamp(span[0]) - start) >= tol or abs(pd.Timestamp(span[1]) - end) >= tol:
        return None
    return {s: QualityFigures(timeline[s].pod_hours, m[s].peak_pods, m[s].unserved_share, m[s].unserved_minutes)
            for s in inp.strategies}


def video_quality_sentence(report: Report) -> str | None:
    """What viewers received under what ran, in words (None without bitrate figures)."""
    if not report.video_quality or report.input.bitrate is None:
        return None
    top = report.input.bitrate.ladder[0].name
    return (f"Video quality under {strategy_label(report.ran)}, share of each tier's viewer-hours by its bitrate cap: "
            + "; ".join(q.text() for q in report.video_quality)
            + f". The baselines stream {top} to every viewer: the CDN egress and transcoding savings are this "
              f"difference, chosen by the policy's cap rules.")


def savings_sentence(sv: Savings, over: str = "the whole report period",
                     not_costed: Mapping[str, str] | None = None) -> str:
    """A Savings in words, money formatted, saying which part is already money and which is not,
    and over what span (`over`: the headline may speak of one event's ebb, these of everything).
    Components in `not_costed` (Report.not_costed) are said to be not costed, not saved 0.00."""
    cur = sv.currency
    m = lambda d: format_money(d, cur)  # noqa: E731
    t = sv.total
    base = baseline_phrase(sv.baseline_strategy)
    ran = strategy_label(sv.actual_strategy)
    outcome = f"saved {m(t.total)}" if t.total >= 0 else f"cost {m(-t.total)} more"
    skipped = [k for k in COMPONENT_NAMES if k in (not_costed or {})]
    billed = [k for k in COMPONENT_NAMES if k not in skipped]
    usage = sum((getattr(t, k) for k in billed), Decimal(0))

    def part(amount: Decimal, what: str) -> str:
        return f"saved {m(amount)} on {what}" if amount >= 0 else f"cost {m(-amount)} more on {what}"

    compute = f"{part(t.compute, 'compute')} ({sv.compute_status})"
    if billed:
        what = " and ".join(COMPONENT_NAMES[k] for k in billed)
        text = (f"Over {over}, against {base}, {ran} {outcome}: it {part(usage, what)} (billed by use: the bill moves "
                f"with them) "
                f"and {compute}.")
    else:
        text = f"Over {over}, against {base}, {ran} {outcome}, all of it on compute ({sv.compute_status})."
    if skipped:
        text += f" {_upper_first(' and '.join(COMPONENT_NAMES[k] for k in skipped))} not costed."
    if not sv.compute_realised:
        text += " Compute savings become money only when the freed machines are released."
    return text
