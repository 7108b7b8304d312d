"""Ebbtide's forecast in simulated time: refit on the policy's interval, predict from the cached
model between refits, and judge trust from how the forecasts it actually issued did.

No leakage: at simulated time `now` the model sees only history points whose interval is over
at `data_until` (= now - metric lag): ts + step <= data_until. Every refit predicts the
horizon plus one refit interval once; each tick slices that frame (predict is not called per
tick).

Trust (a cheap rolling check, re-judged at each refit): the forecasts issued by earlier refits
are scored, as issued, against what happened over the last `trust_window`: the growth they
expected as the planner uses it ((observation + per_replica) x growth - per_replica vs realised
demand, pinball loss at the forecast's upper quantile, against sizing on the observation alone)
and their level (WAPE against trust_bound); `forecaster.backtest.judge_issued` is the rule,
shared with the controller. Before any issued forecast can be scored, one rolling-origin backtest (a single
origin `trust_window` ago) bootstraps the verdict.

Each refit is warm-started from the previous one's params, as in the controller (the model
reuses its tau choice, outlier mask and holdout calibration while they hold; see
`ModelSettings.warm_reuse`), so a replay costs about one Prophet fit per refit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from forecaster.backtest import TrustPolicy, judge_and_fit, model_params
from forecaster.series import Forecast, Forecaster, Series
from policies.errors import EbbtideError
from policies.schema import Workload
from policies.units import format_duration
from scaler.plans import TrustedForecast, forecast_window

ModelFactory = Callable[[], Forecaster]


def forecast_history(trace: Series, forecast_step: timedelta) -> Series:
    """The trace at the resolution the controller would query: the policy's forecast step when it
    is a whole multiple of the trace's interval (mean per bucket, complete buckets only), else
    the trace's own interval (a trace cannot be made finer)."""
    ratio = forecast_step / trace.step
    if forecast_step <= trace.step or abs(ratio - round(ratio)) > 1e-9:
        return trace
    n = int(round(ratio))
    step = pd.Timedelta(forecast_step)
    epoch = pd.Timestamp(0, tz="UTC")
    bucket = epoch + ((trace.index - epoch) // step) * step
    g = trace.values.groupby(bucket)
    means = g.mean()
    complete = g.size() == n
    means[~complete] = np.nan
    full = pd.date_range(means.index[0], means.index[-1], freq=step)
    return Series(means.reindex(full), forecast_step, trace.name)


@dataclass
class ForecastStats:
    """What forecasting cost and said over a replay (wall seconds, counts)."""

    refits: int = 0
    fit_s: list[float] = field(default_factory=list)
    predict_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    trusted_refits: int = 0


class ReplayForecaster:
    """The forecasting half of Ebbtide's controller, for one workload, in simulated time."""

    def __init__(self, history: Series, workload: Workload, make_model: ModelFactory,
                 trust_window: timedelta = timedelta(days=1)):
        self.history = history
        self.settings = workload.forecast
        self.make_model = make_model
        self.trust_window = trust_window
        self.trust_policy = TrustPolicy(max_wape=self.settings.trust_bound, min_history=self.settings.min_history)
        self.per_replica = workload.demand.per_replica
        self.stats = ForecastStats()
        self._idx_ns = history.index.as_unit("ns").asi8
        self._step = pd.Timedelta(history.step)
        self._issued: list[tuple[pd.Timestamp, Forecast]] = []  # (first forecast point, forecast)
        self._frame: pd.DataFrame | None = None
        self._current: Forecast | None = None
        self._verdict: TrustedForecast = TrustedForecast(None, False, ("no forecast yet",))
        self._last_fit: datetime | None = None
        self._fitted_on: tuple | None = None  # (points, first ts, last ts) of the last refit's history
        self._params: dict | None = None
        self._frame_ns = np.empty(0, dtype=np.int64)  # the cached frame's index, int64 ns
        self._slice: tuple[tuple[int, int], TrustedForecast] | None = None  # ((lo, hi), what at() returned)

    # ------------------------------------------------------------------ public
    def at(self, now: datetime, data_until: datetime) -> TrustedForecast:
        """The trusted forecast the controller has at `now` (refits when due).

        Between refits the slice of the cached frame moves only when `now` crosses a forecast
        point, so the same TrustedForecast object is returned until then (the planner caches its
        arrays per Forecast object: scaler.planning._prepared)."""
        if self._last_fit is None or now - self._last_fit >= self.settings.refit_interval:
            self._refit(now, data_until)
        if self._current is None or self._frame is None:
            return self._verdict
        after, before = forecast_window(now, self.settings.horizon, self._step, data_until)
        lo = int(np.searchsorted(self._frame_ns, pd.Timestamp(after).value, side="right"))
        hi = int(np.searchsorted(self._frame_ns, pd.Timestamp(before).value, side="left"))
        if self._slice is not None and self._slice[0] == (lo, hi):
            return self._slice[1]
        fc = Forecast(self._frame.iloc[lo:hi], self._current.model, self._current.upper_quantile,
                      self._current.lower_quantile, self._current.notes)
        tf = self._verdict.sliced(fc, self._last_fit)
        self._slice = ((lo, hi), tf)
        return tf

    # ------------------------------------------------------------------ refit
    def visible_bounds(self, data_until: datetime) -> tuple[int, int]:
        """Positions [lo, hi) in `history` of what the controller may see at `data_until`: the
        lookback, complete intervals only."""
        until = pd.Timestamp(data_until)
        hi = int(np.searchsorted(self._idx_ns, (until - self._step).value, side="right"))
        lo = int(np.searchsorted(self._idx_ns, (until - pd.Timedelta(self.settings.lookback)).value, side="left"))
        return lo, hi

    def visible(self, data_until: datetime) -> Series:
        """History the controller may see at `data_until` (`visible_bounds`)."""
        lo, hi = self.visible_bounds(data_until)
        return Series(self.history.values.iloc[lo:hi], self.history.step, self.history.name)

    def _refit(self, now: datetime, data_until: datetime) -> None:
        self._last_fit = now
        self._slice = None
        hist = self.visible(data_until)
        fitted_on = (len(hist), hist.index[0], hist.index[-1]) if len(hist) else (0, None, None)
        if fitted_on == self._fitted_on:
            # No interval completed since the last refit (a daily trace refitted every 6 h): the
            # same history gives the same model and verdict; keep them instead of refitting.
            return
        self._fitted_on = fitted_on
        span = self.history.step * int(hist.values.notna().sum())
        if span < self.settings.min_history:
            self._current, self._frame = None, None
            self._verdict = TrustedForecast(None, False, (
                f"only {format_duration(span)} of history, need {format_duration(self.settings.min_history)}; "
                f"sizing reactively",))
            return
        t0 = time.perf_counter()
        try:
            # As the controller does: trust from the forecasts issued earlier, then a fit warm-
            # started from the previous one's params (forecaster.backtest.judge_and_fit).
            verdict, model, _ = judge_and_fit(hist, [f for _, f in self._issued], self.trust_window, span,
                                              self.trust_policy, self.make_model, self.per_replica, self._params)
        except (EbbtideError, ValueError, RuntimeError) as exc:
            self.stats.failures.append(f"{pd.Timestamp(now).isoformat()}: fit failed: {exc}")
            self._current, self._frame = None, None
            self._verdict = TrustedForecast(None, False, (f"forecast failed: {exc}",))
            return
        self._params = model_params(model)
        self.stats.fit_s.append(time.perf_counter() - t0)
        self.stats.refits += 1
        index = hist.future_index(self.settings.horizon + self.settings.refit_interval,
                                  start=hist.end + self._step, partial=True)
        t0 = time.perf_counter()
        fc = model.predict(index)
        self.stats.predict_s.append(time.perf_counter() - t0)
        self._current, self._frame = fc, fc.frame
        self._frame_ns = fc.index.as_unit("ns").asi8
        self._issued.append((index[0], fc))
        self._issued = [(o, f) for o, f in self._issued
                        if f.index[-1] >= pd.Timestamp(now) - pd.Timedelta(self.trust_window)]
        self.stats.trusted_refits += int(verdict.trusted)
        self._verdict = TrustedForecast.judged(fc, verdict)
