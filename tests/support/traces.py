"""Generated traces shared by forecaster tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

import numpy as np
import pandas as pd

from forecaster.series import Series


def hourly_csv(path, hours: int = 72, start: str = "2026-03-01T00:00:00Z"):
    """A `ts,value` CSV at `path` of `hours` hourly points from `start`, 100 + the hour's index
    within its day: a small regular trace for the command-line tests. Returns `path`."""
    idx = pd.date_range(start, periods=hours, freq="1h")
    lines = ["ts,value"] + [f"{t:%Y-%m-%dT%H:%M:%SZ},{100 + i % 24}" for i, t in enumerate(idx)]
    path.write_text("\n".join(lines) + "\n")
    return path


def spike_pageviews(start: datetime, peak: datetime, end: datetime, seed: int = 3) -> pd.Series:
    """Hourly page views: daily and weekly cycle (1000 a day-hour on average, weekends x 0.8),
    8 weeks before a 50x spike on a linear ramp from `start` to `peak`, held to `end`, then a
    power-law decline 1 + 49 (1 + t / 6 h)^-0.8, lognormal noise 8%; 8 days after `end`."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start - timedelta(days=56), end + timedelta(days=8), freq="1h", inclusive="left")
    mid = idx + pd.Timedelta(minutes=30)
    h = np.asarray((mid - mid.normalize()).total_seconds() / 3600)
    base = 1000 * (1 + 0.45 * np.sin(2 * np.pi * (h - 9) / 24)) * np.where(mid.day_of_week >= 5, 0.8, 1.0)
    mult = np.ones(len(idx))
    ramp = (mid >= start) & (mid < peak)
    mult[ramp] = 1 + 49 * np.asarray((mid[ramp] - start) / (peak - start))
    mult[(mid >= peak) & (mid < end)] = 50
    after = mid >= end
    mult[after] = 1 + 49 * (1 + np.asarray((mid[after] - end) / pd.Timedelta(hours=6))) ** -0.8
    return pd.Series(np.round(base * mult * np.exp(rng.normal(0, 0.08, len(idx)))), index=idx)


def ordinary_hourly(start: str, end: str, seed: int, noise: float,
                    level_walk: float | None = None) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Hourly UTC traffic with no event, `start` up to `end`: 1000 x a daily sine (peak 15:00,
    x1.6; trough 03:00, x0.4) x weekends at 0.7, times a daily level that random-walks
    (`level_walk`, sd in log per day; None holds it at 1 and draws nothing, so a seed gives
    the same noise as before), times lognormal noise (`noise`, sd)."""
    idx = pd.date_range(start, end, freq="h", inclusive="left")
    hour = np.asarray(idx.hour, dtype=float)
    daily = 1.0 + 0.6 * np.sin(2 * np.pi * (hour - 9) / 24)
    weekly = np.where(np.asarray(idx.day_of_week) >= 5, 0.7, 1.0)
    rng = np.random.default_rng(seed)
    level = np.ones(len(idx))
    if level_walk is not None:
        day = np.asarray((idx - idx[0]) // pd.Timedelta(days=1))
        level = np.exp(np.cumsum(rng.normal(0.0, level_walk, day.max() + 1)))[day]
    return idx, 1000.0 * daily * weekly * level * np.exp(rng.normal(0.0, noise, len(idx)))


def wandering_week(edit: Callable[[pd.Series], None] | None = None, name: str = "wandering",
                   end: str = "2024-05-01T00:00:00Z") -> Series:
    """Five weeks of `ordinary_hourly` (2024-03-27 up to `end`, seed 2, 5% noise, a daily level
    that wanders by 5% a day): the history on which, with no event around, Ebbtide forecasts
    the average of Prophet and the weekly naive. `edit` changes the values in place first."""
    idx, y = ordinary_hourly("2024-03-27T00:00:00Z", end, seed=2, noise=0.05, level_walk=0.05)
    values = pd.Series(y, index=idx)
    if edit is not None:
        edit(values)
    return Series(values, step=timedelta(hours=1), name=name)
