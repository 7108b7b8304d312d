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

import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import numpy as np
import pandas as pd

from forecaster.series import Forecast, Forecaster, Series
from policies.units import format_duration, plural


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


def anchored_growth_factors(upper_ahead, upper_at_observation, per_unit: float) -> np.ndarray:
    """The planner's expected growth (docs/planner.md, step 1), elementwise, as factors >= 1:
    max(1, (upper_ahead + per_unit) / (upper_at_observation + per_unit)).

    `per_unit` (demand one pod serves, >= 0) on both sides keeps a forecast near zero from
    turning noise into a huge factor. A non-finite level or a non-positive denominator gives 1.
    `scaler.safety.anchored_growth` is the scalar form of this function.
    """
    ua = np.asarray(upper_ahead, dtype=float)
    uo = np.asarray(upper_at_observation, dtype=float)
    den = uo + per_unit
    ok = np.isfinite(ua) & np.isfinite(uo) & (den > 0)
    with np.errstate(over="ignore"):  # a subnormal level with per_unit 0: an infinite factor
        ratio = np.divide(ua + per_unit, den, out=np.ones_like(den), where=ok)
    return np.maximum(1.0, ratio)


def pinball_loss(actual, capacity, quantile: float) -> float:
    """Quantile (pinball) loss of sizing `capacity` for `actual`, as a share of demand:
    sum(q x max(a - c, 0) + (1 - q) x max(c - a, 0)) / sum a. A unit of demand left unserved
    weighs q, a unit of capacity unused 1 - q: the trade the upper quantile q stands for.
    Same edge cases as the other ratio metrics (module doc)."""
    a, c = _pairs(actual, capacity, "pinball_loss")
    loss = quantile * np.clip(a - c, 0.0, None) + (1.0 - quantile) * np.clip(c - a, 0.0, None)
    return _share(float(loss.sum()), float(a.sum()), a.size)


@dataclass(frozen=True)
class GrowthMetrics:
    """How sizing on the observation grown by the forecast's expected growth did, one forecast step
    ahead.

    For each pair of consecutive grid points (i-1, i) of one issued forecast with both actuals:
    the observation is a[i-1], the sizing `(a[i-1] + per_unit) x g - per_unit` with
    g = anchored_growth_factors(U[i], U[i-1], per_unit) (U = yhat_upper), as the planner sizes
    (docs/planner.md, step 1; never below a[i-1]), and the realised demand a[i]. "Reactive" is the observation
    alone (growth 1), what the planner does without a trusted forecast. Ratios are shares of the
    realised demand; `loss_*` are pinball losses at `quantile` (the forecast's upper quantile).
    """

    n_points: int
    quantile: float
    loss_forecast: float
    loss_reactive: float
    under_forecast: float
    """Demand above the growth-sized level: sum max(a[i] - sized, 0) / sum a[i]."""
    under_reactive: float
    """Demand above the observation: sum max(a[i] - a[i-1], 0) / sum a[i]."""
    extra: float
    """Demand the growth added to the observation: sum (sized - a[i-1]) / sum a[i]."""

    @property
    def no_worse(self) -> bool:
        """The growth scored no worse than reactive sizing (pinball loss; NaN -> False)."""
        return bool(self.loss_forecast <= self.loss_reactive + 1e-12)

    @property
    def better(self) -> bool:
        """The growth scored strictly better than reactive sizing."""
        return bool(self.loss_forecast < self.loss_reactive - 1e-12)


def growth_metrics(segments: Sequence[tuple[np.ndarray, np.ndarray]], per_unit: float,
                   quantile: float) -> GrowthMetrics:
    """GrowthMetrics pooled over `segments`: (actual, yhat_upper) arrays aligned on consecutive
    grid points of one issued forecast each (pairs never span two segments). Pairs with a NaN
    actual or a non-finite upper are left out."""
    obs, real, sized = [], [], []
    for actual, upper in segments:
        a = np.asarray(actual, dtype=float).ravel()
        u = np.asarray(upper, dtype=float).ravel()
        if a.shape != u.shape:
            raise ValueError(f"growth_metrics: actual has {a.size} points, upper {u.size}")
        if a.size < 2:
            continue
        keep = ~np.isnan(a[:-1]) & ~np.isnan(a[1:]) & np.isfinite(u[:-1]) & np.isfinite(u[1:])
        o = a[:-1][keep]
        obs.append(o)
        real.append(a[1:][keep])
        g = anchored_growth_factors(u[1:][keep], u[:-1][keep], per_unit)
        # as the planner sizes (docs/planner.md, step 1): the growth applies to the observation
        # offset by one pod's worth, so a night at 0 the forecast sees rising is sized for the rise;
        # never below the observation (exactly it where there is no growth: no rounding residue)
        sized.append(np.where(g > 1.0, np.maximum(o, (o + per_unit) * g - per_unit), o))
    cat = (lambda xs: np.concatenate(xs) if xs else np.empty(0))
    o, r, s = cat(obs), cat(real), cat(sized)
    total, n = float(r.sum()), int(r.size)
    return GrowthMetrics(
        n_points=n, quantile=quantile,
        loss_forecast=pinball_loss(r, s, quantile), loss_reactive=pinball_loss(r, o, quantile),
        under_forecast=_share(float(np.clip(r - s, 0.0, None).sum()), total, n),
        under_reactive=_share(float(np.clip(r - o, 0.0, None).sum()), total, n),
        extra=_share(float((s - o).sum()), total, n),
    )


@dataclass(frozen=True)
class TrustPolicy:
    """When a workload's forecast may drive scaling (otherwise: reactive sizing, said so)."""

    max_wape: float = 0.4
    """Pooled backtest WAPE above this (a share: 0.4 = 40%) -> the level is not trusted."""
    min_history: timedelta = timedelta(days=7)
    """Less history than this -> not trusted (daily and weekly cycles need a week to show)."""
    max_under: float | None = None
    """Pooled share of demand above yhat_upper above this -> level not trusted; None: not checked."""
    min_origins: int = 1
    """Fewer scored backtest origins than this -> not trusted."""


@dataclass(frozen=True)
class TrustVerdict:
    """Whether to trust the forecast, and the reasons in words for people (always at least one).

    `trusted`: the forecast may drive sizing (its growth over the lead window). `level_trusted`:
    its level is accurate too (WAPE within the bound), which the paths that size to the level
    itself (no usable demand sample, event pre-scaling) need. `growth`: the growth figures when
    they were judged.
    """

    trusted: bool
    reasons: tuple[str, ...]
    level_trusted: bool | None = None
    growth: GrowthMetrics | None = None


def _pct(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else ("inf" if x > 0 else "n/a")


def _level_problems(result: BacktestResult, policy: TrustPolicy) -> list[str]:
    problems: list[str] = []
    n = len(result.origins)
    w = result.pooled.wape
    if not (w <= policy.max_wape):  # NaN and inf fail too
        problems.append(f"WAPE {_pct(w)} above bound {policy.max_wape:.2f} over {plural(n, 'origin')}")
    if policy.max_under is not None:
        u = result.pooled.under_forecast
        if not (u <= policy.max_under):
            problems.append(f"under-forecast {_pct(u)} of demand above bound "
                            f"{policy.max_under:.2f} over {plural(n, 'origin')}")
    return problems


def _level_ok_reason(result: BacktestResult, policy: TrustPolicy) -> str:
    msg = (f"WAPE {_pct(result.pooled.wape)} within bound {policy.max_wape:.2f} over "
           f"{plural(len(result.origins), 'origin')}")
    if policy.max_under is not None:
        msg += f", under-forecast {_pct(result.pooled.under_forecast)} within {policy.max_under:.2f}"
    return msg


def _short_history(history_len: timedelta, policy: TrustPolicy) -> list[str]:
    """The problem of a history shorter than `policy.min_history`, or none."""
    if history_len < policy.min_history:
        return [f"only {format_duration(history_len)} of history, need {format_duration(policy.min_history)}"]
    return []


def judge_trust(result: BacktestResult, history_len: timedelta, policy: TrustPolicy,
                growth: GrowthMetrics | None = None) -> TrustVerdict:
    """Apply the trust policy to a backtest. Every failed check adds a reason; a trusted verdict
    carries the measured figures as its reason.

    Without `growth`: trusted when the history is long enough, an origin was scored and the
    level checks (WAPE, under-forecast) pass. With `growth` (what the planner sizes on: the
    observation grown by the forecast's expected growth), the same history and origin checks, then:
    trusted when the level checks pass and the growth scores no worse than reactive sizing, or
    when the level checks fail but the growth scores strictly better than reactive sizing (a
    forecast whose level is off earns trust only by its shape). `level_trusted` says whether the
    level checks passed.
    """
    problems: list[str] = _short_history(history_len, policy)
    n = len(result.origins)
    scored = not (n < policy.min_origins or result.pooled.n_points == 0)
    if not scored:
        problems.append(f"{plural(n, 'backtest origin')} with actuals, need {policy.min_origins}"
                        + (f" ({result.skipped[-1]})" if result.skipped else ""))
    level = _level_problems(result, policy) if scored else []
    level_ok = scored and not level
    if growth is None:
        problems += level
        if problems:
            return TrustVerdict(False, tuple(problems), level_ok)
        return TrustVerdict(True, (_level_ok_reason(result, policy),), True)
    g = growth
    q = f"q{g.quantile:g}"
    figures = (f"pinball loss at {q} {_pct(g.loss_forecast)} with the forecast's growth vs "
               f"{_pct(g.loss_reactive)} on the observation alone (demand above sizing "
               f"{_pct(g.under_forecast)} vs {_pct(g.under_reactive)}, growth bought {_pct(g.extra)}) "
               f"over {plural(g.n_points, 'step')}")
    if g.n_points == 0:
        problems.append("no consecutive forecast points with actuals to score the growth on")
    elif level_ok and not g.no_worse:
        problems.append(f"growth scored worse than reactive sizing: {figures}")
    elif not level_ok and scored and not g.better:
        problems.append(f"growth no better than reactive sizing: {figures}")
        problems += level
    if problems:
        return TrustVerdict(False, tuple(problems), level_ok, g)
    if level_ok:
        return TrustVerdict(True, (f"{_level_ok_reason(result, policy)}; growth {figures}",), True, g)
    return TrustVerdict(True, (f"growth better than reactive sizing: {figures}; level not trusted: "
                               + "; ".join(level),), False, g)


def judge_issued(
    history: Series,
    issued: Sequence[Forecast],
    window: timedelta,
    history_len: timedelta,
    policy: TrustPolicy,
    make_model: Callable[[], Forecaster],
    per_unit: float | None,
) -> TrustVerdict:
    """The rolling trust check shared by the controller and the replay. Pure (no clock).

    The forecasts issued earlier (`issued`, oldest first) are each scored, as issued, from their
    first point until the next one's first point, against `history` over its last `window`
    (ending at history.end + step, or where the last demand did when that window saw none:
    `judged_until`, whose reason the verdict then carries). When none overlaps the window, one
    rolling-origin backtest with an origin at the window's start bootstraps the verdict (one fit
    of `make_model()`, training span at least max(min_history - window, step)). `history_len`:
    the history's observed span. With `per_unit` (the demand one pod serves) the growth is judged
    as well (`judge_trust` with `growth_metrics` at the forecasts' upper quantile); None: level
    only.
    """
    end, quiet = judged_until(history, window, policy.min_history)
    if end is None:
        return TrustVerdict(False, (*_short_history(history_len, policy), quiet), False)
    start = end - pd.Timedelta(window)
    origins: list[OriginResult] = []
    a_all, f_all, u_all = [], [], []
    for i, fc in enumerate(issued):
        upto = issued[i + 1].index[0] if i + 1 < len(issued) else end
        lo, hi = max(fc.index[0], start), min(upto, end)
        if lo >= hi:
            continue
        seg = fc.frame[(fc.index >= lo) & (fc.index < hi)]
        if seg.empty:
            continue
        actual = history.values.reindex(seg.index).to_numpy(dtype=float)
        if np.isnan(actual).all():
            continue
        yhat, upper = seg["yhat"].to_numpy(dtype=float), seg["yhat_upper"].to_numpy(dtype=float)
        origins.append(OriginResult(fc.index[0], 0, math.nan, Metrics.of(actual, yhat, upper),
                                    Forecast(seg, fc.model, fc.upper_quantile, fc.lower_quantile)))
        a_all.append(actual)
        f_all.append(yhat)
        u_all.append(upper)
    if origins:
        cat = np.concatenate
        result = BacktestResult(origins[0].forecast.model, window, tuple(origins),
                                Metrics.of(cat(a_all), cat(f_all), cat(u_all)))
    else:
        min_train = max(policy.min_history - window, history.step)
        result = rolling_origin(history, make_model, [start], window, min_train)
    growth = None
    if per_unit is not None and result.origins:
        segs = (_growth_segments(history, issued, start, end) if origins else
                [(actuals_for(history, o.forecast.index), o.forecast.yhat_upper.to_numpy(dtype=float))
                 for o in result.origins])
        growth = growth_metrics(segs, per_unit, result.origins[-1].forecast.upper_quantile)
    verdict = judge_trust(result, history_len, policy, growth)
    return replace(verdict, reasons=verdict.reasons + (quiet,)) if quiet else verdict


def _growth_segments(history: Series, issued: Sequence[Forecast], start: pd.Timestamp,
                     end: pd.Timestamp) -> list[tuple[np.ndarray, np.ndarray]]:
    """(actual, yhat_upper) segments of the issued forecasts (oldest first) for `growth_metrics`:
    every pair of consecutive points (t - step, t) whose realised point t lies in [start, end),
    scored on the last forecast issued before t that holds both points, the one the planner
    sized t on (a forecast sizes the growth into the next one's first point until that one is
    issued). So a forecast of one point per refit (a daily history) is still scored on its
    growth, and the pair into the window's first point counts."""
    step = pd.Timedelta(history.step)
    segs = []
    for i, fc in enumerate(issued):
        upto = issued[i + 1].index[0] if i + 1 < len(issued) else end
        grown = fc.frame[(fc.index >= max(fc.index[0], start - step)) & (fc.index <= upto) & (fc.index < end)]
        if len(grown) >= 2:
            segs.append((actuals_for(history, grown.index), grown["yhat_upper"].to_numpy(dtype=float)))
    return segs


def judged_until(history: Series, window: timedelta, limit: timedelta) -> tuple[pd.Timestamp | None, str]:
    """Where the trust check's window of `window` ends, and why it is not the history's end.

    Normally the history's end (`history.end + step`; reason ""). A window in which no point is
    above zero (a shop's closed night, weekend or holiday: zeros, or no data) holds no evidence
    of the forecast's level or growth (WAPE and the growth's shares divide by the demand, and a
    forecast of zero is all the zeros could confirm), so the window ends instead where the last
    demand did (its point's end), with the reason in words. No demand in the last `limit`
    (the policy's min_history): None, with the reason (nothing to judge on: not trusted)."""
    step = pd.Timedelta(history.step)
    end = history.end + step
    values = history.values.to_numpy(dtype=float)
    seen = np.flatnonzero(values > 0)  # NaN compares False: no data is no demand
    last = history.index[seen[-1]] + step if seen.size else None  # the end of the last demand's point
    if last is not None and last > end - pd.Timedelta(window):
        return end, ""
    if last is None or last <= end - pd.Timedelta(limit):
        return None, (f"no demand in the last {format_duration(limit)}: nothing to judge the forecast on "
                      "(it is trusted again once demand returns)")
    return last, (f"no demand in the last {format_duration(window)}: judged on the "
                  f"{format_duration(window)} up to the last demand, {last.isoformat()}")


def model_params(model: object) -> dict | None:
    """A fitted model's warm-start parameters (`model.params`), or None when it has none, they
    are not a dict, or reading them fails (e.g. the fit did not happen)."""
    try:
        params = getattr(model, "params", None)
    except (RuntimeError, AttributeError, KeyError):
        return None
    return params if isinstance(params, dict) else None


def judge_and_fit(
    history: Series,
    issued: Sequence[Forecast],
    window: timedelta,
    history_len: timedelta,
    policy: TrustPolicy,
    make_model: Callable[[], Forecaster],
    per_unit: float | None,
    init: dict | None,
) -> tuple[TrustVerdict, Forecaster, bool]:
    """One refit, as the controller, its parallel engine and the replay all do it: the trust
    verdict (`judge_issued`), then a model fitted on `history`, warm-started from `init` (the
    previous fit's params) when its `fit` takes one. Returns (verdict, fitted model, warm:
    `init` was given to the model).

    With no `init`, the trust bootstrap's model (fitted on the history minus the last `window`,
    i.e. as a refit `window` ago would have been) warm-starts the fit, so a first fit costs
    about one model fit more than a warm refit, not two. Model errors propagate."""
    made: list[Forecaster] = []

    def capturing() -> Forecaster:
        m = make_model()
        made.append(m)
        return m

    verdict = judge_issued(history, issued, window, history_len, policy, capturing, per_unit)
    model = make_model()
    takes_init = "init" in inspect.signature(model.fit).parameters
    start = init
    if start is None and made and takes_init:
        start = model_params(made[-1])  # None: no params, or the bootstrap fit failed
    if start is not None and takes_init:
        model.fit(history, init=start)  # type: ignore[call-arg]
    else:
        model.fit(history)
    return verdict, model, init is not None and takes_init
