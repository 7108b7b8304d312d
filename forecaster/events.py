"""Event calendar -> forecasting features: holiday windows, pre-event ramp, inside, ebb decay.

Pure (no Prophet import, no clock). Every feature is evaluated on a grid of tz-aware timestamps
that are left-labelled: the value at `ts` covers [ts, ts + step), and the feature is taken at the
interval's midpoint `ts + step/2` (so a 1-hour bucket starting at the peak hour counts as half an
hour into it). Event times carry zones; everything is compared in UTC, so an event written as
`2026-11-11T20:00:00+08:00` lines up with the grid point `2026-11-11T12:00:00Z`.

Features for one event occurrence (start <= peak <= end, times in hours from the midpoint `t`):

- ramp(t)   = (t - start) / (peak - start) on [start, peak), else 0          (0 -> 1 before peak)
- inside(t) = 1 on [start, end), else 0                                       (the event itself)
- decay(t)  = exp(-(t - end) / tau) for t >= end, else 0                      (the ebb, 1 at end)
              or, for a power-law (hyperbolic) ebb of exponent alpha > 0,
              (1 + (t - end) / tau) ** -alpha                                 (a long tail)
- shape(t)  = ramp on [start, peak), 1 on [peak, end), decay(t) for t >= end  (one curve, 0..1)
- settle(t) = 1 - decay(t) for t >= end, else 0                               (new peace level)

`settle` is the optional move to a new peace level after the event: DOMAIN.md says some of the
event's viewers stay as regulars, so the ebb may not return to the old level but to a raised (or
lowered) floor, reached with the ebb's own time constant (0 at the end, 1 once the ebb is over).
It is 0 at the end on purpose: a step there would compete with the ebb's starting height and,
learnt from a few hours of tail, extrapolate a local misfit forever.

The ebb's kernel is an `EbbKernel` (tau, alpha): alpha 0 is the exponential, alpha > 0 the
power law. Attention after news and launches typically decays like a power law (fast first
hours, then a tail that lasts weeks); one exponential fitted to its first day either drops too
fast or, with a new peace level, extrapolates the curvature into a level below the old one.
Where a bare `timedelta` is accepted as tau it means the exponential kernel.

`shape` ties the ebb's amplitude to the event's height: with one coefficient, a model that has
seen the ramp and the peak also knows how high the ebb starts, even when cut at the peak.

DESIGN.md: day-level holiday dummies over a long event absorb the spike and leave the decay
nothing to learn, so sale and joint_live events are hour-level regressors here; only
`holiday`-kind events (and national holidays) become Prophet holiday windows (whole local
calendar days in a chosen zone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forecaster.csvio import interval_text
from policies.events import Event, country_calendar, expand_events

HOUR_S = 3600.0
REGRESSOR_KINDS = ("sale", "joint_live")


@dataclass(frozen=True, order=True)
class EbbKernel:
    """How an event's excess decays after its end, as a share of the end-of-event excess
    (unitless, 1 at the end, falling to 0): exp(-dt / tau) with `alpha` 0, else the power law
    (1 + dt / tau) ** -alpha (dt = time since the end). Invariant: tau > 0, alpha >= 0.

    For the power law tau is the time scale t0 (the excess halves by dt = tau at alpha 1) and
    alpha the tail exponent; as alpha grows with tau / alpha fixed it tends to the exponential of
    time constant tau / alpha. Ordered by (tau, alpha)."""

    tau: timedelta
    """Time constant (exponential) or time scale t0 (power law); > 0."""
    alpha: float = 0.0
    """0: exponential; > 0: power-law exponent."""

    def __post_init__(self) -> None:
        if self.tau <= timedelta(0):
            raise ValueError(f"tau must be positive, got {self.tau}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0 (0: exponential), got {self.alpha}")

    def text(self) -> str:
        """Short label: `16h` (exponential) or `16h^-1` (power law (1 + t/16h)^-1)."""
        base = interval_text(self.tau)
        return base if self.alpha == 0 else f"{base}^-{self.alpha:g}"

    def share_left(self, dt_s: np.ndarray) -> np.ndarray:
        """The kernel at `dt_s` seconds after the end (>= 0): 1 at 0, decreasing to 0."""
        x = np.asarray(dt_s, dtype=float) / self.tau.total_seconds()
        if self.alpha == 0:
            return np.exp(-x)
        return (1.0 + x) ** -self.alpha


def as_kernel(tau: timedelta | EbbKernel) -> EbbKernel:
    """`tau` as an EbbKernel (a bare time constant means the exponential)."""
    return tau if isinstance(tau, EbbKernel) else EbbKernel(tau)


def _midpoints_s(grid: pd.DatetimeIndex, step: timedelta) -> np.ndarray:
    """Interval midpoints of a tz-aware grid, as UTC epoch seconds (float)."""
    if not isinstance(grid, pd.DatetimeIndex) or grid.tz is None:
        raise ValueError("event features need a tz-aware DatetimeIndex (UTC or any zone)")
    epoch = grid.tz_convert("UTC").as_unit("ns").asi8.astype(np.float64) / 1e9
    return epoch + step.total_seconds() / 2.0


def _epoch_s(t: datetime) -> float:
    return pd.Timestamp(t).tz_convert("UTC").timestamp()


def ramp(grid: pd.DatetimeIndex, event: Event, step: timedelta = timedelta(0)) -> np.ndarray:
    """Pre-event ramp: 0 before `start`, linear to 1 at `peak`, 0 from `peak` on (unitless)."""
    t = _midpoints_s(grid, step)
    s, p = _epoch_s(event.start), _epoch_s(event.peak)
    out = np.zeros_like(t)
    if p > s:
        m = (t >= s) & (t < p)
        out[m] = (t[m] - s) / (p - s)
    return out


def inside(grid: pd.DatetimeIndex, event: Event, step: timedelta = timedelta(0)) -> np.ndarray:
    """1 inside [start, end) (ramp included), else 0."""
    t = _midpoints_s(grid, step)
    return ((t >= _epoch_s(event.start)) & (t < _epoch_s(event.end))).astype(float)


def decay(grid: pd.DatetimeIndex, event: Event, tau: timedelta | EbbKernel,
          step: timedelta = timedelta(0)) -> np.ndarray:
    """The ebb for t >= end, else 0: exp(-(t - end) / tau) for a time constant `tau` (1/e), or
    the `EbbKernel`'s curve (power law (1 + (t - end) / tau) ** -alpha when alpha > 0)."""
    kernel = as_kernel(tau)  # refuses tau <= 0
    t = _midpoints_s(grid, step)
    e = _epoch_s(event.end)
    out = np.zeros_like(t)
    m = t >= e
    out[m] = kernel.share_left(t[m] - e)
    return out


def shape(grid: pd.DatetimeIndex, event: Event, tau: timedelta | EbbKernel,
          step: timedelta = timedelta(0)) -> np.ndarray:
    """Ramp, then 1 from peak to end, then the decay: the whole event as one 0..1 curve."""
    t = _midpoints_s(grid, step)
    p, e = _epoch_s(event.peak), _epoch_s(event.end)
    out = ramp(grid, event, step)
    out[(t >= p) & (t < e)] = 1.0
    return out + decay(grid, event, tau, step)


def settle(grid: pd.DatetimeIndex, event: Event, tau: timedelta | EbbKernel,
           step: timedelta = timedelta(0)) -> np.ndarray:
    """The move to the new peace level: 1 - decay(t) for t >= end, else 0 (0 -> 1)."""
    t = _midpoints_s(grid, step)
    out = np.zeros_like(t)
    m = t >= _epoch_s(event.end)
    out[m] = 1.0 - decay(grid, event, tau, step)[m]
    return out


def regressor_events(events: Iterable[Event], since: datetime, until: datetime,
                     tz: str | None = None) -> list[Event]:
    """Occurrences of sale/joint_live events (yearly ones repeated on their local dates in the
    calendar zone `tz`, `Event.occurrences`) that touch [since, until]."""
    occ = expand_events(tuple(e for e in events if e.kind in REGRESSOR_KINDS), since, until, tz)
    return [e for e in occ if e.start <= until]


def base_name(occurrence_name: str) -> str:
    """The calendar name of an occurrence (`singles-day@2025` -> `singles-day`)."""
    return occurrence_name.split("@")[0]


def event_features(
    grid: pd.DatetimeIndex,
    events: Sequence[Event],
    tau_by_event: dict[str, timedelta | EbbKernel],
    step: timedelta = timedelta(0),
    with_settle: bool = False,
    with_tail: bool = False,
) -> pd.DataFrame:
    """Hour-level regressors per sale/joint_live event: `<name>:shape` and `<name>:inside`,
    indexed like `grid`; with `with_tail` also `<name>:tail` (the decay alone, 0 before the end:
    lets the ebb's starting height differ from the peak-tied one once the tail is observed) and
    with `with_settle` `<name>:settle` (the move to a new peace level), in that order.
    Occurrences of one yearly event share its columns (summed), so what an earlier year taught
    applies to the next. `tau_by_event` maps the calendar name (without `@year`) -> tau (the
    exponential's time constant) or an `EbbKernel`.
    Holiday-kind events are skipped (see `holidays_frame`).
    """
    cols: dict[str, np.ndarray] = {}
    for ev in events:
        if ev.kind not in REGRESSOR_KINDS:
            continue
        name = base_name(ev.name)
        if name not in tau_by_event:
            raise KeyError(f"no ebb time constant given for event {name!r}")
        tau = tau_by_event[name]
        parts = [("shape", shape(grid, ev, tau, step)), ("inside", inside(grid, ev, step))]
        if with_tail:
            parts.append(("tail", decay(grid, ev, tau, step)))
        if with_settle:
            parts.append(("settle", settle(grid, ev, tau, step)))
        for suffix, values in parts:
            key = f"{name}:{suffix}"
            cols[key] = cols[key] + values if key in cols else values
    return pd.DataFrame(cols, index=grid)


def in_or_after(grid: pd.DatetimeIndex, events: Sequence[Event], after: timedelta,
                step: timedelta = timedelta(0)) -> np.ndarray:
    """Mask of grid points within [start, end + after) of any of `events` (event-affected time)."""
    t = _midpoints_s(grid, step)
    m = np.zeros(t.shape, dtype=bool)
    for ev in events:
        m |= (t >= _epoch_s(ev.start)) & (t < _epoch_s(ev.end) + after.total_seconds())
    return m


def ebb_windows(grid: pd.DatetimeIndex, events: Sequence[Event], span: timedelta,
                step: timedelta = timedelta(0)) -> np.ndarray:
    """Mask of grid points in [end, end + span) of any of `events`: where the ebb is observed."""
    t = _midpoints_s(grid, step)
    m = np.zeros(t.shape, dtype=bool)
    for ev in events:
        e = _epoch_s(ev.end)
        m |= (t >= e) & (t < e + span.total_seconds())
    return m


def clean_ebb_windows(grid: pd.DatetimeIndex, events: Sequence[Event], others: Sequence[Event], span: timedelta,
                      step: timedelta = timedelta(0)) -> np.ndarray:
    """Mask of grid points where the ebb of one of `events` is observed alone: [end, end + span)
    cut short at the start of the first of `others` (any calendar occurrences; the event itself
    and those starting before its end are skipped) that starts at or after that end. From then
    on the next event's ramp, peak and ebb lie on top of this ebb and the two cannot be told
    apart (a pre-sale wave's ebb running into the main sale's ramp). A subset of `ebb_windows`;
    equal to it when no other event starts within `span` of an end."""
    t = _midpoints_s(grid, step)
    m = np.zeros(t.shape, dtype=bool)
    for ev in events:
        e = _epoch_s(ev.end)
        stop = e + span.total_seconds()
        for o in others:
            so = _epoch_s(o.start)
            if o is not ev and o.name != ev.name and so >= e:
                stop = min(stop, so)
        m |= (t >= e) & (t < stop)
    return m


def tau_grid(shortest: timedelta, longest: timedelta, count: int) -> tuple[timedelta, ...]:
    """`count` time constants spaced geometrically from `shortest` to `longest` (inclusive),
    rounded to whole minutes. A geometric grid: a 2x error in tau matters equally at any scale.
    """
    if count < 1 or shortest <= timedelta(0) or longest < shortest:
        raise ValueError("tau_grid needs 0 < shortest <= longest and count >= 1")
    if count == 1:
        return (shortest,)
    vals = np.geomspace(shortest.total_seconds(), longest.total_seconds(), count)
    return tuple(timedelta(minutes=round(v / 60.0)) for v in vals)


def _country_calendar(country: str, since: datetime, until: datetime):
    """`policies.events.country_calendar` of `country` for the years touching [since, until]."""
    return country_calendar(country, range(since.year, until.year + 1))


def pooled_holiday_days(country: str, since: datetime, until: datetime) -> dict[date, str]:
    """The public holidays of `country` (ISO code) in the years touching [since, until] that
    fall on one of its working days (date -> name): the days that share the pooled public-holiday
    effect (forecaster.model, `ModelSettings.pooled_holidays`). A holiday on the country's
    weekend is left out: the day is already a weekend day in the weekly seasonality, and an
    effect learnt on weekdays (closed shops, no commute) would count twice there; where the
    holiday moves to a weekday, the `holidays` package lists that day ("... (observed)") and it
    is kept."""
    cal = _country_calendar(country, since, until)
    weekend = set(getattr(cal, "weekend", {5, 6}))
    return {day: name for day, name in sorted(cal.items()) if day.weekday() not in weekend}


def local_date_mask(grid: pd.DatetimeIndex, days: Iterable[date], tz: str = "UTC") -> np.ndarray:
    """Mask (unitless 0/1) of the grid points whose local date in `tz` (the date of the point's
    own timestamp, as Prophet matches its holiday windows on `ds`) is one of `days`, else 0."""
    if not isinstance(grid, pd.DatetimeIndex) or grid.tz is None:
        raise ValueError("local_date_mask needs a tz-aware DatetimeIndex (UTC or any zone)")
    local = grid.tz_convert(ZoneInfo(tz)).tz_localize(None).normalize()
    wanted = pd.DatetimeIndex([pd.Timestamp(d) for d in days])
    return np.asarray(local.isin(wanted), dtype=float)


PROPHET_RESERVED = frozenset(
    [n + sfx for n in ("trend", "additive_terms", "daily", "weekly", "yearly", "holidays", "zeros",
                       "extra_regressors_additive", "yhat", "extra_regressors_multiplicative",
                       "multiplicative_terms") for sfx in ("", "_lower", "_upper")]
    + ["ds", "y", "cap", "floor", "y_scaled", "cap_scaled"])
"""Names Prophet keeps for itself (prophet.Prophet.validate_column_name, 1.1), `daily` and
`weekly` also being this model's seasonalities."""


def prophet_holiday_name(name: str) -> str:
    """A holiday event's name as the model's holiday window: as written, or `event:NAME` when
    Prophet keeps that name for itself (an event called `holidays` or `trend` made every fit fail)."""
    return f"event:{name}" if name in PROPHET_RESERVED else name


def holidays_frame(
    events: Iterable[Event],
    since: datetime,
    until: datetime,
    tz: str = "UTC",
    country: str | None = None,
) -> pd.DataFrame:
    """Prophet `holidays` frame (columns holiday, ds, lower_window, upper_window) for
    holiday-kind events and, with `country` (ISO code such as "CN", "US"), that country's public
    holidays from the `holidays` package, for the years touching [since, until].

    `ds` are local calendar dates in `tz` (naive midnight), the zone the model's `ds` must be in
    for Prophet to match them. A holiday event covers the local dates from its start to its end:
    `ds` is the start date and `upper_window` the number of further days (lower_window 0). A
    yearly one repeats on the same local dates (`Event.occurrences` in `tz`).
    """
    zone = ZoneInfo(tz)
    rows = []
    for ev in expand_events(tuple(e for e in events if e.kind == "holiday"), since, until, tz):
        d0 = ev.start.astimezone(zone).date()
        # The end is exclusive: an event ending exactly at local midnight does not cover that day.
        end_local = ev.end.astimezone(zone)
        d1 = (end_local - timedelta(microseconds=1)).date() if ev.end > ev.start else d0
        rows.append((prophet_holiday_name(ev.name.split("@")[0]), pd.Timestamp(d0), 0, max(0, (d1 - d0).days)))
    if country:
        for day, name in sorted(_country_calendar(country, since, until).items()):
            rows.append((f"{country}:{name}", pd.Timestamp(day), 0, 0))
    frame = pd.DataFrame(rows, columns=["holiday", "ds", "lower_window", "upper_window"])
    lo = pd.Timestamp(since.astimezone(zone).date()) - pd.Timedelta(days=400)
    hi = pd.Timestamp(until.astimezone(zone).date()) + pd.Timedelta(days=400)
    frame = frame[(frame["ds"] >= lo) & (frame["ds"] <= hi)]
    return frame.sort_values(["ds", "holiday"]).reset_index(drop=True)


def typical_ratio(values: pd.Series, occ: Sequence[Event], step: timedelta,
                  quiet_after: timedelta) -> tuple[np.ndarray, float] | None:
    """Each fit-grid value (left-labelled, `step` apart, NaN = missing) as a ratio to the
    typical level of its time of the week (time of day with under two weeks of quiet history):
    the median over quiet points, outside every occurrence of `occ` and its `quiet_after` (the
    ebb; only the windows themselves when that leaves under 2 points). Returns (ratio, the
    median of all quiet points), or None without quiet points. NaN where missing."""
    v = values.to_numpy(dtype=float)
    idx = values.index
    t = _midpoints_s(idx, step)
    finite = np.isfinite(v)
    quiet = finite & ~in_or_after(idx, occ, quiet_after, step)
    if quiet.sum() < 2:
        quiet = finite & ~in_or_after(idx, occ, timedelta(0), step)
    if not quiet.any():
        return None
    utc = idx.tz_convert("UTC")
    slot = ((utc.hour * 3600 + utc.minute * 60 + utc.second) // max(int(step.total_seconds()), 1)).to_numpy()
    if (t[quiet].max() - t[quiet].min()) >= 2 * 7 * 86400:  # two quiet weeks: the time of the week
        slot = slot + (10 ** 6) * utc.day_of_week.to_numpy()
    overall = float(np.median(v[quiet]))
    typical = np.full(v.shape, overall)
    for s_ in np.unique(slot):
        m = quiet & (slot == s_)
        if m.any():
            typical[slot == s_] = float(np.median(v[m]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(finite & (typical > 0), v / typical, np.nan), overall


_CLEARLY_HIGHER = 1.25
"""`align_to_observed`: how much higher (as a ratio to the typical level) the peak after the
declared end must be than the highest point inside the window: a sale held on a plateau through
its end is as high one bucket later by noise alone. `undeclared_excursions`: the same margin
tells a hold (within it of the peak) from the ebb."""


UNDECLARED_PREFIX = "undeclared-"
"""Name prefix of an occurrence inferred from the history (`Excursion.event`): it is modelled like
a declared one, but never lends its size to an unseen event of the calendar."""

_RAMP_FLOOR = 1.25
"""`undeclared_excursions`: going back from a run, the inferred event starts where the traffic
was last under this many times the typical level (noise on quiet buckets stays under it)."""

_LONGEST_RAMP = timedelta(days=3)
"""`undeclared_excursions`: how far back from the run the inferred ramp may reach."""

_REBOUND = 2.0
"""`undeclared_excursions`: a run inside the ebb of the one before is another event when its
peak (smoothed ratio) stands this many times above the lowest point since the earlier peak."""


@dataclass(frozen=True)
class Excursion:
    """A run of the history well above the typical level that no calendar entry explains
    (`undeclared_excursions`), with the event times it implies. Times are fit-grid buckets
    (left-labelled); `end` is the end of the event's last bucket."""

    start: pd.Timestamp
    """The inferred ramp's start: going back from the run, the last bucket under `_RAMP_FLOOR`
    x typical, plus a step (at most `_LONGEST_RAMP` back). Ratios here and for `end` are
    smoothed over an hour (a centred mean of 3 buckets at least)."""
    peak: pd.Timestamp
    """The bucket with the highest ratio to the typical level (unsmoothed) in the run, or later
    in its hold when the traffic rose higher there (a ramp that goes on rising: one event)."""
    end: pd.Timestamp
    """The event's end: from the peak on, the hold (the smoothed ratio within `_CLEARLY_HIGHER`
    of its value at the peak), then the fast fall (the ratio an hour later still
    `_CLEARLY_HIGHER` x lower; at most 12 h of it): the ebb is the slow part after that knee."""
    ratio: float
    """The peak's ratio to the typical level."""
    run: timedelta
    """How long the traffic stood at least `min_ratio` x typical."""
    fallen: bool
    """The hold ended inside the history and the last observed bucket is clearly under the peak
    (smoothed ratio at most the peak's / `_CLEARLY_HIGHER`): the peak is past, the ebb under way."""

    def event(self) -> Event:
        """The calendar entry this run implies (kind `joint_live`: a spike, its cause unknown)."""
        return Event(name=f"{UNDECLARED_PREFIX}{self.peak.tz_convert('UTC'):%Y%m%dT%H%MZ}", kind="joint_live",
                     start=self.start.to_pydatetime(), peak=self.peak.to_pydatetime(),
                     end=self.end.to_pydatetime())


def _smoothed(ratio: np.ndarray, step: timedelta) -> np.ndarray:
    """`ratio` smoothed over an hour (a centred mean of 3 buckets at least; NaN -> 0): one noisy
    bucket is neither an event's level nor the end of its hold."""
    width = max(3, math.ceil(timedelta(hours=1) / step))
    return (pd.Series(ratio).rolling(width + (width % 2 == 0), center=True, min_periods=1).mean()
            .fillna(0.0).to_numpy())


def undeclared_excursions(values: pd.Series, occ: Sequence[Event], step: timedelta, quiet_after: timedelta,
                          min_ratio: float, min_run: timedelta) -> list[Excursion]:
    """Runs of the history (`values`: fit-grid buckets, left-labelled, `step` apart, NaN =
    missing) at least `min_ratio` x the typical level (`typical_ratio`) for longer than
    `min_run` (dips of up to an hour inside a run tolerated), outside [a day before, the end)
    of any occurrence of `occ`: an event nobody declared, which the model fits as ordinary
    traffic unless told (or inferring) it. Shorter runs are the outlier screen's (masked for
    fitting). One `Excursion` per run, in order. A run inside the `quiet_after` (the ebb) of an
    occurrence or of an excursion before it is that ebb, not another event, unless its peak
    stands `_REBOUND` x above the lowest (smoothed) point since the earlier peak (a second sale:
    its ramp then starts after that trough)."""
    typ = typical_ratio(values, occ, step, quiet_after)
    if typ is None:
        return []
    ratio, overall = typ
    v = values.to_numpy(dtype=float)
    idx = values.index
    # From a day before a declared event to its end, a run is that event's; in its ebb, it is
    # its ebb unless the traffic rose again from a trough (below), as after an inferred one.
    core = in_or_after(idx + timedelta(days=1), occ, timedelta(days=1), step)
    high = np.nan_to_num(ratio, nan=0.0) >= min_ratio
    high &= (np.nan_to_num(v, nan=0.0) >= min_ratio * overall) & ~core
    hour = max(int(timedelta(hours=1) / step), 1)  # buckets, one at least
    # A dip of up to an hour inside a run is noise on a fine grid, not its end.
    for i, j in true_runs(~high):
        if 0 < i and j < high.size and j - i <= hour and not core[i:j].any():
            high[i:j] = True
    sm = _smoothed(ratio, step)  # times are read off it
    finite = np.flatnonzero(np.isfinite(ratio))
    last = int(finite[-1]) if finite.size else -1
    back = max(int(_LONGEST_RAMP / step), 1)
    knee_max = max(int(timedelta(hours=12) / step), 1)
    # (peak index, end) of each event whose ebb a later run may lie in: the declared ones, then
    # each inferred one as it is found.
    before = [(max(int(idx.searchsorted(pd.Timestamp(e.peak), side="right")) - 1, 0), pd.Timestamp(e.end))
              for e in occ]
    out: list[Excursion] = []
    for i, j in true_runs(high):
        if (j - i) * step <= min_run or (out and idx[i] < out[-1].end):
            continue  # too short, or inside the event found before (its ramp went on rising)
        k = i + int(np.nanargmax(ratio[i:j]))
        trough = -1  # the ramp starts after it
        ebb_of = [p for p, end in before if p < i and idx[i] < end + pd.Timedelta(quiet_after)]
        if ebb_of:
            # In the ebb of one before: its ebb (a night whose typical level is low stands out
            # again), unless the traffic rose again from a trough (a second sale).
            p = max(ebb_of)
            trough = p + int(np.argmin(sm[p:i]))
            if sm[k] < _REBOUND * sm[trough]:
                continue
        a = i
        while a - 1 > trough and i - a < back and sm[a - 1] >= _RAMP_FLOOR and not core[a - 1]:
            a -= 1
        while True:  # the hold; when the traffic rises above the run's peak in it, that is the peak
            hold = sm[k] / _CLEARLY_HIGHER
            b = k
            while b + 1 <= last and sm[b + 1] >= hold:
                b += 1
            top = k + int(np.nanargmax(ratio[k:b + 1]))
            if not ratio[top] > ratio[k]:
                break
            k = top
        # Past the hold, the event lasts while the traffic still falls fast (by 1.25x within the
        # hour: the show is over, its crowd leaving); the ebb is the slow part after that knee.
        held = b
        while b + hour <= last and sm[b + hour] * _CLEARLY_HIGHER < sm[b] and b - held < knee_max:
            b += 1
        fallen = b < last and sm[last] <= hold
        out.append(Excursion(start=idx[a], peak=idx[k], end=idx[b] + pd.Timedelta(step), ratio=float(ratio[k]),
                             run=(j - i) * step, fallen=bool(fallen)))
        before.append((k, out[-1].end))
    return out


def true_runs(flag: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) index ranges of the runs of True in `flag`, in order."""
    edges = np.diff(np.concatenate([[0], flag.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def flat_occurrences(occ: Sequence[Event], values: pd.Series, step: timedelta, quiet_after: timedelta,
                     max_ratio: float) -> list[tuple[Event, float]]:
    """Declared occurrences of `occ` that brought no peak: their whole window [start, end) lies
    in the history (`values`: fit-grid buckets, left-labelled, `step` apart, NaN = missing),
    half of its buckets at least are observed, and the ratio to the typical level of the time
    of the week (`typical_ratio`, smoothed over an hour: one noisy bucket is no peak) stays
    under `max_ratio` in all of it. Pure. Returns (occurrence, its highest smoothed ratio) in
    the order of `occ`; inferred occurrences (`UNDECLARED_PREFIX`) are never flat (they are
    runs well above typical by construction)."""
    declared = [e for e in occ if not e.name.startswith(UNDECLARED_PREFIX)]
    if max_ratio <= 0 or not declared or not len(values):
        return []
    typ = typical_ratio(values, occ, step, quiet_after)
    if typ is None:
        return []
    ratio = typ[0]
    smooth = _smoothed(ratio, step)
    t = _midpoints_s(values.index, step)
    first, last = t[0] - step.total_seconds() / 2, t[-1] + step.total_seconds() / 2
    out = []
    for e in declared:
        s0, e0 = _epoch_s(e.start), _epoch_s(e.end)
        window = (t >= s0) & (t < e0)
        seen = window & np.isfinite(ratio)
        if s0 < first or e0 > last or not window.any() or 2 * seen.sum() < window.sum():
            continue
        top = float(smooth[seen].max())
        if top < max_ratio:
            out.append((e, top))
    return out


def align_to_observed(occ: Sequence[Event], values: pd.Series, step: timedelta, within: timedelta,
                      min_ratio: float, quiet_after: timedelta) -> tuple[list[Event], list[str]]:
    """Occurrences whose traffic kept rising after the declared end, moved to the observed peak.

    A calendar's times are a person's: a peak written in local time as UTC, or the announced
    start of a show whose crowd peaks hours later. Take the fit-grid bucket (`values`:
    left-labelled, `step` apart, NaN = missing) with the highest ratio to the typical level
    (`typical_ratio`) in the `within` after an occurrence's declared end. When that ratio is at
    least `min_ratio` (a clear excursion, not a normal evening), the bucket is `min_ratio` x the
    median of all quiet points too (a night busier than usual is no sale's peak), and the ratio
    is `_CLEARLY_HIGHER` x the highest inside [start, end), the traffic peaked after the
    declared end: the whole entry moves so that its peak is that bucket (ramp and hold keep
    their declared lengths; the end at least a step after the peak), and the ebb starts where
    the traffic falls, not inside the rise. An end placed late costs little (the hold absorbs
    the first hours of the ebb); one placed at the peak of a sale that holds its level for hours
    made the hold look like a new level. Only occurrences whose whole `within` is observed are
    moved (cut inside it, the highest point so far need not be the peak), and none whose
    `within` reaches another occurrence's start (that one explains the rise). Returns
    (occurrences, notes)."""
    if within <= timedelta(0) or not len(occ):
        return list(occ), []
    typ = typical_ratio(values, occ, step, quiet_after)
    if typ is None:
        return list(occ), []
    ratio, overall = typ
    v = values.to_numpy(dtype=float)
    idx = values.index
    t = _midpoints_s(idx, step)
    finite = np.isfinite(v)
    last = float(t[finite].max()) if finite.any() else -np.inf
    out, notes = [], []
    for e in occ:
        s0, e0 = _epoch_s(e.start), _epoch_s(e.end)
        stop = e0 + within.total_seconds()
        later = [_epoch_s(o.start) for o in occ if o is not e and _epoch_s(o.start) >= e0]
        inside_m = (t >= s0) & (t < e0) & np.isfinite(ratio)
        after_m = (t >= e0) & (t < stop) & np.isfinite(ratio)
        if (last < stop - step.total_seconds() or any(x < stop for x in later)
                or not after_m.any() or not inside_m.any()):
            out.append(e)
            continue
        r_in = float(np.max(ratio[inside_m]))
        i = int(np.flatnonzero(after_m)[np.argmax(ratio[after_m])])
        if ratio[i] >= min_ratio and ratio[i] >= _CLEARLY_HIGHER * r_in and v[i] >= min_ratio * overall:
            peak = idx[i].to_pydatetime()
            by = peak - e.peak
            moved = e.model_copy(update={"start": e.start + by, "peak": peak, "end": max(e.end + by, peak + step)})
            notes.append(f"{e.name}: traffic rose after the declared end {e.end.isoformat()} to {ratio[i]:.1f}x "
                         f"the typical level at {peak.isoformat()} (inside the declared window at most "
                         f"{r_in:.1f}x): the entry is fitted {interval_text(by)} later, its peak there "
                         f"(`event_align_within`)")
            out.append(moved)
        else:
            out.append(e)
    return out, notes
