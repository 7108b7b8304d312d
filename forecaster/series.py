"""Plain value types shared by every part of the forecaster: a demand Series and a Forecast.

Both hold pandas objects indexed by tz-aware UTC timestamps, left-labelled (the value at `ts`
covers [ts, ts + step)). Missing values are NaN; nothing here fills them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd


def _check_index(index: pd.Index, what: str) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{what}: index must be a DatetimeIndex, got {type(index).__name__}")
    if index.tz is None or str(index.tz) != "UTC":
        raise ValueError(f"{what}: index must be tz-aware UTC, got tz={index.tz}")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValueError(f"{what}: timestamps must be strictly increasing")


@dataclass(frozen=True)
class Series:
    """A regular time series of one quantity (demand, an SLI), with its grid step.

    `values`: float pandas Series on a UTC DatetimeIndex, strictly increasing, on a regular grid
    of `step` (missing points present as NaN, not absent). `name` says what it is (a query, a
    file), for error messages.
    """

    values: pd.Series
    step: timedelta
    name: str = ""

    def __post_init__(self) -> None:
        _check_index(self.values.index, self.name or "series")
        if self.step <= timedelta(0):
            raise ValueError(f"{self.name or 'series'}: step must be positive")

    @classmethod
    def from_pairs(cls, ts, values, step: timedelta, name: str = "") -> "Series":
        idx = pd.DatetimeIndex(pd.to_datetime(ts, utc=True))
        return cls(pd.Series(np.asarray(values, dtype=float), index=idx, name="value"), step, name)

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.values.index  # type: ignore[return-value]

    @property
    def step_s(self) -> float:
        return self.step.total_seconds()

    def __len__(self) -> int:
        return len(self.values)

    @property
    def start(self) -> pd.Timestamp:
        return self.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """Timestamp of the last point (its interval ends one step later)."""
        return self.index[-1]

    def before(self, cutoff: datetime | pd.Timestamp) -> "Series":
        """Points with ts < cutoff."""
        return Series(self.values[self.index < pd.Timestamp(cutoff)], self.step, self.name)

    def between(self, start, end) -> "Series":
        """Points with start <= ts < end."""
        m = (self.index >= pd.Timestamp(start)) & (self.index < pd.Timestamp(end))
        return Series(self.values[m], self.step, self.name)

    def future_index(self, horizon: timedelta, start: datetime | pd.Timestamp | None = None,
                     partial: bool = False) -> pd.DatetimeIndex:
        """The grid of this series' step covering [start, start + horizon); start defaults to
        one step after the last point. `partial`: also the last point whose interval starts inside
        and ends after it (what a forecast for the controller's ticks needs: a 30-hour frame on a
        daily grid holds 2 points, so a lead window reaching into the second day sees its growth)."""
        first = pd.Timestamp(start) if start is not None else self.end + self.step
        if first.tz is None:
            raise ValueError("future_index: start must carry a zone")
        n = math.ceil(horizon / self.step) if partial else int(horizon / self.step)
        return pd.date_range(first.tz_convert("UTC"), periods=n, freq=pd.Timedelta(self.step))


@dataclass(frozen=True)
class Forecast:
    """A forecast on a UTC grid: `frame` has columns yhat, yhat_lower, yhat_upper (>= 0).

    `upper_quantile` is the quantile yhat_upper stands for (capacity is sized to it);
    `lower_quantile` likewise for yhat_lower. `model` names what produced it; `notes` explain
    choices made while fitting (ebb time constant chosen, transform, fallbacks), for the Plan's
    reasons.
    """

    frame: pd.DataFrame
    model: str
    upper_quantile: float = 0.9
    lower_quantile: float = 0.1
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_index(self.frame.index, f"forecast ({self.model})")
        missing = {"yhat", "yhat_lower", "yhat_upper"} - set(self.frame.columns)
        if missing:
            raise ValueError(f"forecast ({self.model}) lacks columns {sorted(missing)}")

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.frame.index  # type: ignore[return-value]

    @property
    def yhat(self) -> pd.Series:
        return self.frame["yhat"]

    @property
    def yhat_lower(self) -> pd.Series:
        return self.frame["yhat_lower"]

    @property
    def yhat_upper(self) -> pd.Series:
        return self.frame["yhat_upper"]

    def to_csv_frame(self) -> pd.DataFrame:
        """`ts,yhat,yhat_lower,yhat_upper` with ts as ISO 8601 UTC (`...Z`)."""
        out = self.frame[["yhat", "yhat_lower", "yhat_upper"]].copy()
        out.insert(0, "ts", self.index.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return out.reset_index(drop=True)


class Forecaster(Protocol):
    """What every model (Ebbtide's and each baseline) offers: fit on history, predict a grid.

    `fit` returns self (fitted). `predict(index)` forecasts exactly those timestamps, which lie
    after the history; values are clipped at 0. Implementations are deterministic for equal
    inputs (seeded).
    """

    name: str

    def fit(self, history: Series) -> "Forecaster": ...

    def predict(self, index: pd.DatetimeIndex) -> Forecast: ...
