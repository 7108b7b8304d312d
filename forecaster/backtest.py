"""Measuring forecasts: error metrics, rolling-origin backtests, and the trust gate.

Pure numpy/pandas; no model library is imported here (models come in through `make_model`).

Metrics work on aligned arrays of actual demand and a forecast. Points whose actual is NaN are
ignored (a scrape gap is not an error of the forecast); a NaN forecast where an actual exists is
a bug and raises. Ratios are shares of total actual demand, so a WAPE of 0.4 means the absolute
errors add up to 40% of the demand.

Edge cases, the same for every ratio metric (wape, under_forecast, over_forecast):
- no point with an actual: NaN (nothing was measured; the trust gate treats it as untrusted);
- total actual demand 0: 0.0 when the numerator is 0 too (a perfect forecast of silence),
  otherwise +inf (any error is infinitely large against no demand).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from forecaster.series import Forecast, Forecaster, Series
from policies.units import format_duration


def _pairs(actual, forecast, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of equal length with NaN actuals dropped."""
    a = np.asarray(actual, dtype=float).ravel()
    f = np.asarray(forecast, dtype=float).ravel()
    if a.shape != f.shape:
        raise ValueError(f"{what}: actual has {a.size} points, forecast {f.size}")
    keep = ~np.isnan(a)
    a, f = a[keep], f[keep]
    if np.isnan(f).any():
        raise ValueError(f"{what}: forecast is NaN where an actual exists")
    return a, f


def _share(numerator: float, total: float, n: int) -> float:
    if n == 0:
        return math.nan
    if total == 0:
        return 0.0 if numerator == 0 else math.inf
    return float(numerator / total)


def wape(actual, yhat) -> float:
    """Weighted absolute percentage error: sum|a - yhat| / sum a (0 is perfect; unbounded)."""
    a, f = _pairs(actual, yhat, "wape")
    return _share(float(np.abs(a - f).sum()), float(a.sum()), a.size)


def under_forecast(actual, upper) -> float:
    """Share of demand above the capacity bound: sum max(a - upper, 0) / sum a (0 is best).

    This is the demand that capacity sized to `yhat_upper` would not have served.
    """
    a, u = _pairs(actual, upper, "under_forecast")
    return _share(float(np.clip(a - u, 0.0, None).sum()), float(a.sum()), a.size)


def over_forecast(actual, upper) -> float:
    """Capacity sized to `upper` left unused, as a share of demand: sum max(upper - a, 0) / sum a."""
    a, u = _pairs(actual, upper, "over_forecast")
    return _share(float(np.clip(u - a, 0.0, None).sum()), float(a.sum()), a.size)


def smape(actual, yhat) -> float:
    """Symmetric MAPE on the 0..2 scale: mean of 2|a - f| / (|a| + |f|).

    A term with a = f = 0 counts as 0 (both agree there is nothing). 2 means every forecast was
    zero where demand was not, or the other way round. NaN when no point has an actual.
    """
    a, f = _pairs(actual, yhat, "smape")
    if a.size == 0:
        return math.nan
    denom = np.abs(a) + np.abs(f)
    num = 2.0 * np.abs(a - f)
    terms = np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)
    return float(terms.mean())


def coverage(actual, upper) -> float:
    """Share of points whose actual is at or below the upper bound (ideally ~ upper quantile).

    NaN when no point has an actual.
    """
    a, u = _pairs(actual, upper, "coverage")
    if a.size == 0:
        return math.nan
    return float(np.mean(a <= u))


@dataclass(frozen=True)
class Metrics:
    """How one forecast did against actuals. Ratios as shares (0.25 = 25%), see module doc.

    `n_points`: points with an actual; `actual_total`: their summed demand (the value unit times
    points, e.g. requests).
    """

    n_points: int
    actual_total: float
    wape: float
    smape: float
    under_forecast: float
    over_forecast: float
    coverage: float

    @classmethod
    def of(cls, actual, yhat, upper) -> "Metrics":
        """Metrics from aligned arrays (actual NaN ignored)."""
        a = np.asarray(actual, dtype=float).ravel()
        return cls(
            n_points=int((~np.isnan(a)).sum()),
            actual_total=float(np.nansum(a)),
            wape=wape(a, yhat),
            smape=smape(a, yhat),
            under_forecast=under_forecast(a, upper),
            over_forecast=over_forecast(a, upper),
            coverage=coverage(a, upper),
        )

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-safe dict: non-finite values (NaN, inf) become None."""
        out: dict[str, float | int | None] = {}
        for k, v in self.__dict__.items():
            out[k] = v if isinstance(v, int) or math.isfinite(v) else None
        return out


def actuals_for(actual: Series, index: pd.DatetimeIndex) -> np.ndarray:
    """The actual values at `index` (NaN where the series has no point)."""
    return actual.values.reindex(index).to_numpy(dtype=float)


def evaluate(actual: Series, forecast: Forecast) -> Metrics:
    """Metrics of `forecast` over its own index, against `actual` (missing actuals ignored)."""
    a = actuals_for(actual, forecast.index)
    return Metrics.of(a, forecast.yhat.to_numpy(dtype=float), forecast.yhat_upper.to_numpy(dtype=float))


@dataclass(frozen=True)
class OriginResult:
    """One forecast origin: trained on points before `origin`, forecast [origin, origin + horizon)."""

    origin: pd.Timestamp
    train_points: int
    fit_s: float
    metrics: Metrics
    forecast: Forecast


@dataclass(frozen=True)
class BacktestResult:
    """A model's rolling-origin backtest: per-origin results and metrics pooled over all points.

    `skipped` says why an origin was left out (too little training data, no actuals).
    """

    model: str
    horizon: timedelta
    origins: tuple[OriginResult, ...]
    pooled: Metrics
    skipped: tuple[str, ...] = field(default=())

    @property
    def fit_s_median(self) -> float:
        """Median fit seconds over origins (NaN when none ran)."""
        if not self.origins:
            return math.nan
        return float(np.median([o.fit_s for o in self.origins]))


def last_origins(series: Series, horizon: timedelta, count: int) -> list[pd.Timestamp]:
    """`count` back-to-back origins whose horizons tile the end of `series`, oldest first.

    The last horizon ends at the series' end: origins are end + step - k * horizon, k = count..1.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    stop = series.end + pd.Timedelta(series.step)
    return [stop - k * pd.Timedelta(horizon) for k in range(count, 0, -1)]


def align_origin(series: Series, origin) -> pd.Timestamp:
    """`origin` rounded up to the series' grid (UTC): the first forecast point; training data is
    every point before it."""
    origin = pd.Timestamp(origin)
    if origin.tz is None:
        raise ValueError(f"origin {origin} must carry a zone")
    step = pd.Timedelta(series.step)
    k = math.ceil((origin.tz_convert("UTC") - series.start) / step)
    return series.start + k * step


def observed_span(series: Series) -> timedelta:
    """How much observed (non-NaN) data the series holds: observed points x step."""
    return series.step * int(series.values.notna().sum())


@dataclass(frozen=True)
class ModelRun:
    """One model fitted before a cutoff and its forecast of the horizon after it.

    `metrics` is None when no actual exists in the horizon (a pure forecast). `fit_s`: seconds
    spent in fit (a duration).
    """

    model: str
    forecast: Forecast
    fit_s: float
    train_points: int
    metrics: Metrics | None


def forecast_at_cutoff(series: Series, model: Forecaster, cutoff, horizon: timedelta) -> ModelRun:
    """Fit `model` on the points before `cutoff` (rounded up to the grid) and forecast
    [cutoff, cutoff + horizon) on the series' grid; score it where actuals exist.

    Model errors propagate (the caller decides whether a failing model is fatal).
    """
    origin = align_origin(series, cutoff)
    train = series.before(origin)
    if len(train) == 0:
        raise ValueError(f"no data before the cutoff {origin.isoformat()}")
    index = train.future_index(horizon, start=origin)
    if len(index) == 0:
        raise ValueError(f"horizon {format_duration(horizon)} is shorter than the series step "
                         f"{format_duration(series.step)}")
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    fc = model.predict(index)
    actual = actuals_for(series, index)
    metrics = None
    if not np.isnan(actual).all():
        metrics = Metrics.of(actual, fc.yhat.to_numpy(dtype=float), fc.yhat_upper.to_numpy(dtype=float))
    return ModelRun(model.name, fc, fit_s, len(train), metrics)


def rolling_origin(
    series: Series,
    make_model: Callable[[], Forecaster],
    origins: Sequence[pd.Timestamp],
    horizon: timedelta,
    min_train: timedelta,
) -> BacktestResult:
    """Fit a fresh model before each origin and score its forecast of the following `horizon`.

    Training data: every point with ts < origin (the origin is rounded up to the series' grid).
    An origin is skipped, with a reason, when the observed training data spans less than
    `min_train` or no actual exists in its horizon. `fit_s` measures fit only.
    """
    if horizon <= timedelta(0):
        raise ValueError("horizon must be positive")
    results: list[OriginResult] = []
    skipped: list[str] = []
    all_a: list[np.ndarray] = []
    all_f: list[np.ndarray] = []
    all_u: list[np.ndarray] = []
    name = ""
    for origin in origins:
        origin = align_origin(series, origin)
        train_span = observed_span(series.before(origin))
        if train_span < min_train or train_span == timedelta(0):
            skipped.append(f"origin {origin.isoformat()}: {format_duration(train_span)} of training "
                           f"data, need {format_duration(min_train)}")
            continue
        if np.isnan(actuals_for(series, series.future_index(horizon, start=origin))).all():
            skipped.append(f"origin {origin.isoformat()}: no actuals in the horizon")
            continue
        run = forecast_at_cutoff(series, make_model(), origin, horizon)
        name = run.model
        assert run.metrics is not None
        results.append(OriginResult(origin, run.train_points, run.fit_s, run.metrics, run.forecast))
        all_a.append(actuals_for(series, run.forecast.index))
        all_f.append(run.forecast.yhat.to_numpy(dtype=float))
        all_u.append(run.forecast.yhat_upper.to_numpy(dtype=float))
    if not name:
        name = getattr(make_model(), "name", "model")
    cat = (lambda xs: np.concatenate(xs) if xs else np.empty(0))
    pooled = Metrics.of(cat(all_a), cat(all_f), cat(all_u))
    return BacktestResult(name, horizon, tuple(results), pooled, tuple(skipped))


@dataclass(frozen=True)
class TrustPolicy:
    """When a workload's forecast may drive scaling (otherwise: reactive sizing, said so)."""

    max_wape: float = 0.4
    """Pooled backtest WAPE above this (a share: 0.4 = 40%) -> not trusted."""
    min_history: timedelta = timedelta(days=7)
    """Less history than this -> not trusted (daily and weekly cycles need a week to show)."""
    max_under: float | None = None
    """Pooled share of demand above yhat_upper above this -> not trusted; None: not checked."""
    min_origins: int = 1
    """Fewer scored backtest origins than this -> not trusted."""


@dataclass(frozen=True)
class TrustVerdict:
    """Whether to trust the forecast, and the reasons in words for people (always at least one)."""

    trusted: bool
    reasons: tuple[str, ...]


def _pct(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else ("inf" if x > 0 else "n/a")


def judge_trust(result: BacktestResult, history_len: timedelta, policy: TrustPolicy) -> TrustVerdict:
    """Apply the trust policy to a backtest. Every failed check adds a reason; a trusted verdict
    carries the measured figures as its reason."""
    problems: list[str] = []
    n = len(result.origins)
    if history_len < policy.min_history:
        problems.append(f"only {format_duration(history_len)} of history, need "
                        f"{format_duration(policy.min_history)}")
    if n < policy.min_origins or result.pooled.n_points == 0:
        problems.append(f"{n} backtest origin(s) with actuals, need {policy.min_origins}"
                        + (f" ({result.skipped[-1]})" if result.skipped else ""))
    else:
        w = result.pooled.wape
        if not (w <= policy.max_wape):  # NaN and inf fail too
            problems.append(f"WAPE {_pct(w)} above bound {policy.max_wape:.2f} over {n} origin(s)")
        if policy.max_under is not None:
            u = result.pooled.under_forecast
            if not (u <= policy.max_under):
                problems.append(f"under-forecast {_pct(u)} of demand above bound "
                                f"{policy.max_under:.2f} over {n} origin(s)")
    if problems:
        return TrustVerdict(False, tuple(problems))
    msg = f"WAPE {_pct(result.pooled.wape)} within bound {policy.max_wape:.2f} over {n} origin(s)"
    if policy.max_under is not None:
        msg += f", under-forecast {_pct(result.pooled.under_forecast)} within {policy.max_under:.2f}"
    return TrustVerdict(True, (msg,))
