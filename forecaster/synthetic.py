"""Synthetic live-stream e-commerce traffic (concurrent viewers) around big sales, seeded.

One generator for the demo, the tests and the benchmarks, so they all see the same shape:

- a daily cycle in the platform's local zone (default Asia/Shanghai): night trough around
  04:00-05:00 at ~15% of the evening level, a lunch bump, the evening peak 20:00-22:00;
- a weekly cycle (weekends ~12% busier, Friday evening a little);
- per sale (`SaleSpec`): a pre-event ramp (warm-up, pre-sale) rising convexly to a peak of
  `peak_multiplier` x the normal level at that hour, a fast fall while the event itself runs,
  then the ebb towards a peace level `peace_ratio` x the pre-sale baseline (some bargain
  hunters stay as regulars): an exponential decay with time constant `ebb_tau` (default), or a
  long-tailed power law (1 + t / ebb_tau) ** -ebb_alpha (`ebb_shape="power"`: attention after
  news and launches falls fast in the first hours, then slowly for weeks); or, with
  `held=True`, a plateau instead of ramp, peak and fall: `peak_multiplier` x normal through
  the whole window from the ramp's start to the event's end (11.11 over 28 h), the ebb
  starting from that level;
- multiplicative noise (AR(1) in log space, correlated over ~10 minutes, plus a little white
  noise), and short outages (zeros or dips for a few minutes);
- sampled at a fine grid (1 minute, or the step when it is finer), averaged to `step` (a gauge
  such as concurrent viewers averages over an interval), rounded to whole viewers.

The generator is a pure function of its arguments: the same seed gives the same trace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forecaster.events import EbbKernel
from forecaster.series import Series
from policies.events import Event

_FINE = timedelta(minutes=1)


@dataclass(frozen=True)
class SaleSpec:
    """One big sale. Times are set in the platform's local zone, relative to the trace start.

    The Event it produces: start = peak - `ramp`, peak, end = peak + `event_after_peak`.
    """

    name: str = "singles-day"
    """Event name (unique in the calendar)."""
    kind: Literal["sale", "joint_live"] = "sale"
    """Event kind in the calendar: a sale, or a joint live event with a partner platform."""
    day: int = 28
    """Local calendar day of the peak, counted from the local date of the trace start (0 = first)."""
    peak_hour_local: float = 20.5
    """Local hour of the peak (20.5 = 20:30), inside the usual evening peak."""
    ramp: timedelta = timedelta(days=3)
    """Pre-event ramp: traffic starts rising this long before the peak."""
    ramp_power: float = 3.0
    """Shape of the ramp: excess grows as (elapsed share of the ramp) ** ramp_power (convex)."""
    peak_multiplier: float = 6.0
    """Traffic at the peak, as a multiple of the normal traffic at that hour (> 1)."""
    event_after_peak: timedelta = timedelta(hours=4)
    """How long the event itself runs after the peak; the ebb starts when it ends."""
    event_tau: timedelta = timedelta(hours=3)
    """Time constant of the fall from the peak while the event still runs."""
    ebb_tau: timedelta = timedelta(hours=36)
    """Time constant of the ebb: the excess over the peace level falls to 1/e in this time
    (exponential), or the power law's time scale t0 (the excess halves by t0 at alpha 1)."""
    ebb_shape: Literal["exponential", "power"] = "exponential"
    """How the excess over the peace level decays after the event's end, t hours after it:
    exp(-t / ebb_tau), or the long-tailed power law (1 + t / ebb_tau) ** -ebb_alpha."""
    ebb_alpha: float = 1.0
    """Exponent of the power-law ebb (> 0; used with `ebb_shape="power"`): 1 halves the excess
    by t = ebb_tau and leaves a tenth at 9 x ebb_tau; 2 falls faster (a quarter by ebb_tau)."""
    peace_ratio: float = 1.15
    """Traffic level after the ebb, relative to before the sale (>= 1: some viewers stay)."""
    held: bool = False
    """A held sale: traffic is `peak_multiplier` x normal (a plateau, following the daily cycle)
    from the ramp's start (peak - `ramp`) to the event's end (peak + `event_after_peak`), with
    no convex ramp and no fall while the event runs (`ramp_power`, `event_tau` unused); the ebb
    then decays from the plateau's level. Off (default): the ramp-peak-fall shape."""

    def peak_time(self, start: datetime, zone: str) -> datetime:
        """The peak as an aware UTC datetime, for a trace starting at `start`."""
        tz = ZoneInfo(zone)
        local_day = start.astimezone(tz).date() + timedelta(days=self.day)
        midnight = datetime(local_day.year, local_day.month, local_day.day, tzinfo=tz)
        return (midnight + timedelta(hours=self.peak_hour_local)).astimezone(ZoneInfo("UTC"))

    def event(self, start: datetime, zone: str) -> Event:
        """The calendar entry describing this sale (no ebb hint: models have to learn it)."""
        peak = self.peak_time(start, zone)
        return Event(name=self.name, kind=self.kind, start=peak - self.ramp, peak=peak,
                     end=peak + self.event_after_peak)

    def multiplier(self, t_s: np.ndarray, peak_s: float) -> np.ndarray:
        """Traffic multiplier over the normal level at epoch seconds `t_s` (1 before the ramp,
        `peak_multiplier` at the peak, or through the whole window when `held`, tending to
        `peace_ratio` after the ebb; unitless)."""
        ramp_s = self.ramp.total_seconds()
        after_s = self.event_after_peak.total_seconds()
        p, peace = self.peak_multiplier, self.peace_ratio
        out = np.ones_like(t_s, dtype=float)
        rel = t_s - peak_s
        if self.held:
            in_window = (rel >= -ramp_s) & (rel <= after_s)
            out[in_window] = p
            in_ebb = rel > after_s
            out[in_ebb] = peace + (p - peace) * self.ebb_decay(rel[in_ebb] - after_s)
            return out
        in_ramp = (rel >= -ramp_s) & (rel < 0)
        u = (rel[in_ramp] + ramp_s) / ramp_s
        out[in_ramp] = 1.0 + (p - 1.0) * u ** self.ramp_power
        in_event = (rel >= 0) & (rel <= after_s)
        event_tau_s = self.event_tau.total_seconds()
        out[in_event] = peace + (p - peace) * np.exp(-rel[in_event] / event_tau_s)
        m_end = peace + (p - peace) * math.exp(-after_s / event_tau_s)
        in_ebb = rel > after_s
        out[in_ebb] = peace + (m_end - peace) * self.ebb_decay(rel[in_ebb] - after_s)
        return out

    def ebb_decay(self, since_end_s: np.ndarray) -> np.ndarray:
        """Share of the end-of-event excess left `since_end_s` seconds (>= 0) after the end:
        1 at the end, falling to 0 (unitless; see `ebb_shape`)."""
        return EbbKernel(self.ebb_tau, self.ebb_alpha if self.ebb_shape == "power" else 0.0).share_left(since_end_s)


@dataclass(frozen=True)
class Outage:
    """A short outage in the trace: demand seen is `factor` x normal in [start, end)."""

    start: pd.Timestamp
    end: pd.Timestamp
    factor: float


@dataclass(frozen=True)
class SyntheticTrace:
    """A generated trace, the events describing its sales, and the truth behind it.

    `series`: concurrent viewers (whole numbers, >= 0) at `series.step`. `expected`: the same
    without noise and outages (the mean the forecaster should find). `baseline_level`: mean
    viewers of a normal day before any sale; `peace_level` likewise after the last sale's ebb.
    """

    series: Series
    events: tuple[Event, ...]
    sales: tuple[SaleSpec, ...]
    zone: str
    expected: pd.Series
    baseline_level: float
    peace_level: float
    outages: tuple[Outage, ...] = field(default=())


def _bump(hour: np.ndarray, centre: float, width_h: float) -> np.ndarray:
    """A smooth bump on the 24 h circle, 1 at `centre`, about `width_h` hours wide."""
    kappa = (24.0 / (2 * math.pi * width_h)) ** 2
    return np.exp(kappa * (np.cos(2 * math.pi * (hour - centre) / 24.0) - 1.0))


def daily_profile(hour_local: np.ndarray) -> np.ndarray:
    """Relative traffic by local hour (mean 1 over a day): trough ~04:30, lunch bump, peak ~21:00."""
    raw = 0.15 + 0.25 * _bump(hour_local, 12.5, 1.5) + 0.35 * _bump(hour_local, 17.0, 3.0) \
        + 1.0 * _bump(hour_local, 21.0, 1.6)
    grid = np.arange(0, 24, 1 / 60)
    mean = (0.15 + 0.25 * _bump(grid, 12.5, 1.5) + 0.35 * _bump(grid, 17.0, 3.0)
            + 1.0 * _bump(grid, 21.0, 1.6)).mean()
    return raw / mean


def weekly_profile(dayofweek_local: np.ndarray, hour_local: np.ndarray) -> np.ndarray:
    """Weekday factor: Saturday and Sunday 1.12, Friday evening (from 18:00) 1.05, else 1."""
    out = np.ones_like(hour_local, dtype=float)
    out[dayofweek_local >= 5] = 1.12
    out[(dayofweek_local == 4) & (hour_local >= 18)] = 1.05
    return out


def _week_mean_factor() -> float:
    """Mean of daily x weekly profile over one week (1-minute grid): normal mean / base_level."""
    minutes = np.arange(7 * 1440)
    hour = (minutes % 1440) / 60.0
    return float((daily_profile(hour) * weekly_profile(minutes // 1440, hour)).mean())


def generate(
    start: datetime,
    days: int,
    step: timedelta,
    seed: int,
    sale: SaleSpec | Sequence[SaleSpec] | None = SaleSpec(),
    *,
    base_level: float = 20_000.0,
    zone: str = "Asia/Shanghai",
    noise_sigma: float = 0.06,
    outages: int = 2,
) -> SyntheticTrace:
    """Generate `days` of traffic from `start` (aware) at `step`, seeded.

    `sale`: one SaleSpec, several, or None (no sale). `base_level`: mean concurrent viewers of
    a normal weekday. `noise_sigma`: sd of the log-space noise at 1-minute resolution.
    `outages`: how many short outages (3-15 min, zero or a dip to 20-50%) to place at random.
    """
    if start.tzinfo is None:
        raise ValueError("start must carry a zone")
    if days <= 0 or step <= timedelta(0):
        raise ValueError("days and step must be positive")
    fine = step if step < _FINE else _FINE
    factor = step / fine
    if abs(factor - round(factor)) > 1e-9:
        raise ValueError(f"step {step} must be a whole number of minutes (or finer than a minute)")
    factor = int(round(factor))
    sales = () if sale is None else ((sale,) if isinstance(sale, SaleSpec) else tuple(sale))
    rng = np.random.default_rng(seed)

    t0 = pd.Timestamp(start).tz_convert("UTC")
    n = int(timedelta(days=days) / step)
    fine_index = pd.date_range(t0, periods=n * factor, freq=pd.Timedelta(fine))
    local = fine_index.tz_convert(zone)
    hour = (local.hour + local.minute / 60.0 + local.second / 3600.0).to_numpy(dtype=float)
    dow = local.day_of_week.to_numpy()
    normal = base_level * daily_profile(hour) * weekly_profile(dow, hour)
    t_s = (fine_index - pd.Timestamp(0, tz="UTC")).total_seconds().to_numpy()
    mult = np.ones(len(fine_index))
    events = []
    for s in sales:
        if s.peak_multiplier <= 1 or s.peace_ratio <= 0:
            raise ValueError(f"sale {s.name}: peak_multiplier must be > 1 and peace_ratio > 0")
        if s.ebb_shape not in ("exponential", "power") or not s.ebb_alpha > 0 or s.ebb_tau <= timedelta(0):
            raise ValueError(f"sale {s.name}: ebb_shape must be 'exponential' or 'power', ebb_alpha > 0 "
                             f"and ebb_tau > 0 (got {s.ebb_shape!r}, {s.ebb_alpha}, {s.ebb_tau})")
        peak = s.peak_time(start, zone)
        mult *= s.multiplier(t_s, peak.timestamp())
        events.append(s.event(start, zone))
    expected_fine = normal * mult

    fine_s = fine.total_seconds()
    phi = math.exp(-fine_s / 600.0)  # correlated over ~10 minutes
    innov = rng.normal(0.0, noise_sigma * math.sqrt(1 - phi * phi), len(fine_index))
    ar = np.empty(len(fine_index))
    level = rng.normal(0.0, noise_sigma)
    for i, e in enumerate(innov):  # plain loop: ~60k points at 1 min for 6 weeks, fast enough
        level = phi * level + e
        ar[i] = level
    noisy = expected_fine * np.exp(ar + rng.normal(0.0, noise_sigma / 3, len(fine_index)))

    placed: list[Outage] = []
    for _ in range(outages):
        length = int(rng.integers(3, 16)) * 60  # seconds
        n_fine = max(1, int(round(length / fine_s)))
        at = int(rng.integers(0, max(1, len(fine_index) - n_fine)))
        f = 0.0 if rng.random() < 0.5 else float(rng.uniform(0.2, 0.5))
        noisy[at:at + n_fine] *= f
        placed.append(Outage(fine_index[at], fine_index[at] + n_fine * pd.Timedelta(fine), f))

    idx = fine_index[::factor]
    values = np.round(noisy.reshape(n, factor).mean(axis=1))
    expected = pd.Series(expected_fine.reshape(n, factor).mean(axis=1), index=idx, name="expected")
    series = Series(pd.Series(values, index=idx, name="value"), step, name=f"synthetic(seed={seed})")

    baseline = base_level * _week_mean_factor()
    peace = baseline * float(np.prod([s.peace_ratio for s in sales]))
    return SyntheticTrace(series, tuple(events), sales, zone, expected, baseline, peace,
                          tuple(sorted(placed, key=lambda o: o.start)))
