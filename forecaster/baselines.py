"""Baseline forecasters Ebbtide is measured against: seasonal naive and Holt-Winters.

Both implement the `Forecaster` protocol of forecaster.series (`fit(history) -> self`,
`predict(index) -> Forecast`), are deterministic, never return negative values, and keep
`yhat_lower <= yhat <= yhat_upper`. Their intervals are empirical (quantiles of past errors),
so `yhat_upper` stands for `upper_quantile` only as well as the past predicts the future, which
is exactly what the ebb after a sale breaks: that is the point of comparing against them.

`statistical_baselines(step)` lists them; the full list Ebbtide is compared with (these plus
plain Prophet, which lives in forecaster.model) is forecaster.comparison.baseline_models.
"""

from __future__ import annotations

import math
import warnings
from datetime import timedelta

import numpy as np
import pandas as pd

from forecaster.series import Forecast, Forecaster, Series
from policies.units import format_duration

DAY = timedelta(days=1)
WEEK = timedelta(days=7)

# Fewer error samples than this at a given lag and the empirical quantile is too noisy to use:
# the seasonal naive falls back to scaling the one-season quantiles by sqrt(seasons ahead).
_MIN_RESIDUALS = 10


def _check_quantiles(lower_quantile: float, upper_quantile: float) -> None:
    if not (0.0 < lower_quantile < upper_quantile < 1.0):
        raise ValueError(
            f"quantiles must satisfy 0 < lower ({lower_quantile}) < upper ({upper_quantile}) < 1"
        )


def _steps_in(span: timedelta, step: timedelta, what: str) -> int:
    """`span` as a whole number of `step`s; ValueError when it is not one."""
    ratio = span / step
    n = int(round(ratio))
    if n < 1 or abs(ratio - n) > 1e-9:
        raise ValueError(
            f"{what} {format_duration(span)} is not a whole number of the series step "
            f"{format_duration(step)}"
        )
    return n


def _steps_ahead(index: pd.DatetimeIndex, last: pd.Timestamp, step: timedelta, model: str) -> np.ndarray:
    """For each timestamp of `index`, how many steps after `last` it lies (>= 1, on the grid)."""
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError(f"{model}: predict needs a tz-aware DatetimeIndex")
    delta_s = (index.tz_convert("UTC") - last.tz_convert("UTC")).total_seconds().to_numpy()
    k = delta_s / step.total_seconds()
    k_int = np.rint(k).astype(np.int64)
    if k_int.size and (np.any(np.abs(k - k_int) > 1e-6) or np.any(k_int < 1)):
        raise ValueError(
            f"{model}: predict index must lie after the history ({last.isoformat()}) on its "
            f"{format_duration(step)} grid"
        )
    return k_int


def _assemble(
    index: pd.DatetimeIndex,
    yhat: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    model: str,
    lower_quantile: float,
    upper_quantile: float,
    notes: tuple[str, ...],
) -> Forecast:
    """Clip at 0 and order the bounds (lower <= yhat <= upper), then wrap as a Forecast."""
    yhat = np.clip(np.asarray(yhat, dtype=float), 0.0, None)
    lower = np.clip(np.minimum(np.asarray(lower, dtype=float), yhat), 0.0, None)
    upper = np.maximum(np.asarray(upper, dtype=float), yhat)
    frame = pd.DataFrame(
        {"yhat": yhat, "yhat_lower": lower, "yhat_upper": upper},
        index=pd.DatetimeIndex(index).tz_convert("UTC"),
    )
    return Forecast(frame, model=model, upper_quantile=upper_quantile,
                    lower_quantile=lower_quantile, notes=notes)


def _observed(history: Series, model: str) -> np.ndarray:
    y = history.values.to_numpy(dtype=float)
    if not np.isfinite(y).any():
        raise ValueError(f"{model}: history {history.name!r} has no observed values (all NaN)")
    return y


def seasonal_sources(index: pd.DatetimeIndex, season: timedelta, tz: str | None,
                     last: pd.Timestamp | None = None) -> pd.DatetimeIndex:
    """The time (UTC) a seasonal naive copies at each point of `index`: `j` seasons back, with
    `j` = 1, or with `last` (the history's last point) the fewest seasons that land at or
    before it (so past the first season the last season repeats). With `tz` the season is
    counted on that zone's clock: a week before 09:00 local is 09:00 local, also across a
    daylight-saving change (then 167 or 169 hours back, not 168). A local time that does not
    exist there (the hour skipped in spring) is moved forward to the next one that does; one
    that occurs twice (autumn) is its first occurrence. With `tz` None, or a zone without
    such changes, it is exactly `j` seasons of UTC time back."""
    idx = pd.DatetimeIndex(index).tz_convert("UTC")
    season_td = pd.Timedelta(season)
    if last is None:
        j = np.ones(len(idx))
    else:
        j = np.ceil(np.asarray((idx - last) / season_td, dtype=float)).clip(1, None)

    def back(j_: np.ndarray) -> pd.DatetimeIndex:
        shift = pd.to_timedelta(j_ * season_td.value, unit="ns")
        if tz is None:
            return pd.DatetimeIndex(idx - shift)
        local = idx.tz_convert(tz).tz_localize(None) - shift
        return (pd.DatetimeIndex(local).tz_localize(tz, ambiguous=np.ones(len(idx), dtype=bool),
                                                    nonexistent="shift_forward").tz_convert("UTC"))

    src = back(j)
    if last is not None:
        late = np.asarray(src > last)
        while late.any():  # a clock change put the source after the history: one season more
            j = np.where(late, j + 1, j)
            src = back(j)
            late = np.asarray(src > last)
    return src


def nearest_on_grid(times: pd.DatetimeIndex, anchor: pd.Timestamp, step: timedelta) -> pd.DatetimeIndex:
    """Each of `times` (UTC) moved to the nearest point of the grid through `anchor` with `step`
    (a source time `seasonal_sources` moved by a clock change of an hour lies between the points
    of a coarser grid, e.g. a daily one)."""
    step_td = pd.Timedelta(step)
    k = np.rint(np.asarray((pd.DatetimeIndex(times).tz_convert("UTC") - anchor) / step_td, dtype=float))
    return pd.DatetimeIndex(anchor + pd.to_timedelta(k * step_td.value, unit="ns"))


class SeasonalNaive:
    """Tomorrow looks like today (or next week like this week).

    yhat at `t` is the value one season earlier; for horizons longer than a season the last
    season of history repeats. NaN in the history is filled from the season before (then from
    the history's median where no earlier season exists). With `tz`, "one season earlier" is
    read on that zone's clock (`seasonal_sources`): across a daylight-saving change the same
    local time is copied, not the same UTC offset, so a morning ramp is not forecast an hour
    off for the season after it. The default (None) counts steps, as the textbook model does.

    Intervals are empirical: for a point `j` seasons ahead, the quantiles of the past errors
    `y_t - y_{t - j*season}` (NaN ignored). Where fewer than 10 such errors exist, the
    one-season quantiles are scaled by sqrt(j) (errors of a seasonal random walk). A history
    shorter than one season falls back to the last observed value, with the spread of the
    history as the interval, and says so in `notes`.
    """

    def __init__(self, season: timedelta = DAY, upper_quantile: float = 0.9,
                 lower_quantile: float = 0.1, name: str | None = None, tz: str | None = None):
        if season <= timedelta(0):
            raise ValueError("season must be positive")
        _check_quantiles(lower_quantile, upper_quantile)
        self.season = season
        self.tz = tz
        self.upper_quantile = upper_quantile
        self.lower_quantile = lower_quantile
        if name is None:
            label = {DAY: "day", WEEK: "week"}.get(season, format_duration(season))
            name = f"seasonal_naive_{label}"
        self.name = name
        self._fitted = False

    def fit(self, history: Series) -> "SeasonalNaive":
        y = _observed(history, self.name)
        m = _steps_in(self.season, history.step, f"{self.name}: season")
        self._step = history.step
        self._last = history.end
        self._m = m
        notes: list[str] = []
        if len(y) < m:
            last_obs = y[np.isfinite(y)][-1]
            self._template = np.full(1, last_obs)
            self._short = True
            spread = y[np.isfinite(y)] - np.nanmean(y)
            self._spread_q = (np.quantile(spread, self.lower_quantile), np.quantile(spread, self.upper_quantile))
            notes.append(
                f"history {format_duration(history.step * len(y))} is shorter than one season "
                f"({format_duration(self.season)}): repeating the last value"
            )
        else:
            self._short = False
            filled = y.copy()
            for i in range(m, len(filled)):  # forward, so a run of NaN seasons chains back
                if np.isnan(filled[i]):
                    filled[i] = filled[i - m]
            if np.isnan(filled).any():
                filled[np.isnan(filled)] = np.nanmedian(y)
                notes.append("gaps with no earlier season were filled with the history's median")
            self._template = filled[-m:]
            self._y = y
            self._filled = pd.Series(filled, index=history.values.index.tz_convert("UTC"))
        self._notes = tuple(notes)
        self._fitted = True
        return self

    def at(self, times: pd.DatetimeIndex) -> np.ndarray:
        """The (gap-filled) history at `times` (`nearest_on_grid`); NaN outside the history."""
        if not self._fitted or self._short:
            return np.full(len(times), np.nan)
        return self._filled.reindex(nearest_on_grid(times, self._last, self._step)).to_numpy()

    def _lag_quantiles(self, j: int) -> tuple[float, float]:
        """(lower, upper) quantiles of the errors of a forecast `j` seasons ahead."""
        def errors(lag_seasons: int) -> np.ndarray:
            lag = lag_seasons * self._m
            if len(self._y) <= lag:
                return np.empty(0)
            e = self._y[lag:] - self._y[:-lag]
            return e[np.isfinite(e)]

        e = errors(j)
        if e.size >= _MIN_RESIDUALS:
            return float(np.quantile(e, self.lower_quantile)), float(np.quantile(e, self.upper_quantile))
        e1 = errors(1)
        if e1.size == 0:
            return 0.0, 0.0
        scale = math.sqrt(j)
        return (float(np.quantile(e1, self.lower_quantile)) * scale,
                float(np.quantile(e1, self.upper_quantile)) * scale)

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        if not self._fitted:
            raise RuntimeError(f"{self.name}: predict before fit")
        k = _steps_ahead(index, self._last, self._step, self.name)
        notes = self._notes
        if self._short:
            yhat = np.full(k.size, self._template[0])
            lo_q, hi_q = self._spread_q
            return _assemble(index, yhat, yhat + lo_q, yhat + hi_q, self.name,
                             self.lower_quantile, self.upper_quantile, notes)
        yhat = self._template[(k - 1) % self._m]
        if self.tz is not None:
            local = self.at(seasonal_sources(index, self.season, self.tz, self._last))
            yhat = np.where(np.isfinite(local), local, yhat)
        seasons_ahead = (k - 1) // self._m + 1
        lower = np.empty(k.size)
        upper = np.empty(k.size)
        for j in np.unique(seasons_ahead):
            sel = seasons_ahead == j
            lo_q, hi_q = self._lag_quantiles(int(j))
            lower[sel] = yhat[sel] + lo_q
            upper[sel] = yhat[sel] + hi_q
        return _assemble(index, yhat, lower, upper, self.name,
                         self.lower_quantile, self.upper_quantile, notes)


class HoltWinters:
    """Additive Holt-Winters with a damped trend and a daily season (what PHPA uses).

    statsmodels' ExponentialSmoothing, heuristic initialisation. When the daily season holds
    more than `max_season_steps` points (1-min data), the model is fitted on a coarser
    aggregate (mean per bucket, the smallest multiple of the step that fits) and its forecast
    mapped back as a step function. Intervals: the empirical quantiles of the in-sample
    residuals at the history's own step (one-step-ahead errors: they understate long-horizon
    error, as any in-sample interval does).

    Never crashes on awkward input: a history shorter than two seasons drops the season, fewer
    than 10 points (or a fit that fails) falls back to the mean level; each fallback is in
    `notes`. NaN in the history is interpolated in time before fitting.
    """

    name = "holt_winters"

    def __init__(self, season: timedelta = DAY, upper_quantile: float = 0.9,
                 lower_quantile: float = 0.1, max_season_steps: int = 288):
        _check_quantiles(lower_quantile, upper_quantile)
        self.season = season
        self.upper_quantile = upper_quantile
        self.lower_quantile = lower_quantile
        self.max_season_steps = max_season_steps
        self._fitted = False

    def fit(self, history: Series) -> "HoltWinters":
        from statsmodels.tsa.holtwinters import ExponentialSmoothing  # heavy: import on use

        y = _observed(history, self.name)
        notes: list[str] = []
        step = history.step
        m_raw = self.season / step
        factor = 1
        if m_raw > self.max_season_steps:
            factor = math.ceil(m_raw / self.max_season_steps)
            while factor < m_raw and (m_raw / factor) != int(m_raw / factor):
                factor += 1
        if len(y) < 2 * factor:  # too short to aggregate; the season will be dropped anyway
            factor = 1
        agg_step = step * factor
        filled = pd.Series(y).interpolate(limit_direction="both").to_numpy()
        drop = len(filled) % factor  # leading points that do not fill a whole bucket
        agg = filled[drop:].reshape(-1, factor).mean(axis=1)
        if factor > 1:
            notes.append(f"fitted on {format_duration(agg_step)} means (daily season too long at "
                         f"{format_duration(step)})")
        season_ratio = self.season / agg_step
        m = int(round(season_ratio)) if abs(season_ratio - round(season_ratio)) < 1e-9 else 0

        attempts = []
        if m >= 2 and len(agg) >= 2 * m + 2:
            attempts.append(("damped trend + daily season",
                             dict(trend="add", damped_trend=True, seasonal="add", seasonal_periods=m)))
        elif m >= 2:
            notes.append(f"history shorter than two seasons ({format_duration(2 * self.season)}): "
                         f"no seasonal component")
        if len(agg) >= 10:
            attempts.append(("damped trend", dict(trend="add", damped_trend=True)))
        self._fit_result = None
        self._level = float(np.mean(agg))
        wanted = attempts[0][0] if attempts else None
        for label, kwargs in attempts:
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    res = ExponentialSmoothing(agg, initialization_method="heuristic", **kwargs).fit()
                    first = res.forecast(1)
                fitted = np.asarray(res.fittedvalues, dtype=float)
                if not np.all(np.isfinite(fitted)) or not np.all(np.isfinite(first)):
                    raise ValueError("non-finite fit")
            except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
                notes.append(f"{label} fit failed ({exc}); trying a simpler model")
                continue
            self._fit_result = res
            if label != wanted:
                notes.append(f"fell back to {label}")
            break
        if self._fit_result is None:
            fitted = np.full(len(agg), self._level)
            notes.append("too little data for Holt-Winters: forecasting the mean level")
        # Residuals at the history's own step: the aggregate's fit repeated over its bucket.
        resid = y[drop:] - np.repeat(fitted, factor)
        resid = resid[np.isfinite(resid)]
        if resid.size:
            self._resid_q = (float(np.quantile(resid, self.lower_quantile)),
                             float(np.quantile(resid, self.upper_quantile)))
        else:
            self._resid_q = (0.0, 0.0)
        self._step = step
        self._factor = factor
        self._last = history.end
        self._notes = tuple(notes)
        self._fitted = True
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        if not self._fitted:
            raise RuntimeError(f"{self.name}: predict before fit")
        k = _steps_ahead(index, self._last, self._step, self.name)
        # The last bucket ends exactly at the history's end, so step k falls in bucket ceil(k/f).
        buckets = (k - 1) // self._factor + 1
        if k.size == 0:
            yhat = np.empty(0)
        elif self._fit_result is None:
            yhat = np.full(k.size, self._level)
        else:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # log(0) in its AIC on a perfect fit
                path = np.asarray(self._fit_result.forecast(int(buckets.max())), dtype=float)
            yhat = path[buckets - 1]
        lo_q, hi_q = self._resid_q
        return _assemble(index, yhat, yhat + lo_q, yhat + hi_q, self.name,
                         self.lower_quantile, self.upper_quantile, self._notes)


def statistical_baselines(step: timedelta, upper_quantile: float = 0.9,
                          lower_quantile: float = 0.1) -> list[Forecaster]:
    """Fresh, unfitted seasonal naive (day, week) and Holt-Winters for a series of this step.

    A seasonal naive is included only where its season is a whole number of at least two steps.
    The full comparison list, with plain Prophet, is forecaster.comparison.baseline_models (this
    module must not reach Prophet, not even through forecaster.model).
    """
    models: list[Forecaster] = []
    for season in (DAY, WEEK):
        ratio = season / step
        if ratio >= 2 and abs(ratio - round(ratio)) < 1e-9:
            models.append(SeasonalNaive(season, upper_quantile=upper_quantile, lower_quantile=lower_quantile))
    models.append(HoltWinters(upper_quantile=upper_quantile, lower_quantile=lower_quantile))
    return models
