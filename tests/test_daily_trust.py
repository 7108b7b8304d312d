"""Trust for forecasts that hold one point per refit (a daily history), and the growth pair at
the boundary between two issued forecasts.

Cases:
- `Series.future_index(partial=True)`: a 30-hour frame on a daily grid holds 2 points (the
  second day's included, as a lead window reaching into it needs), 1 without `partial`; on an
  hourly grid both give 30;
- `judge_issued`: the pair whose realised point is the next forecast's first is scored on the
  forecast in use before it (hand-computed growth bought), and the pair into the window's first
  point counts: 6 pairs for 6 realised points, where the rule before this change scored 4 and
  none of the growth;
- `judge_issued` on daily forecasts of two points each, issued one a day: scored on their growth
  over a 1-day window (1 step) and a 3-day one (3 steps) and trusted; before this change every
  verdict was "no consecutive forecast points with actuals to score the growth on";
- `ReplayForecaster` over a daily trace with a model that knows the weekly cycle: trusted
  after a week of refits (never before: each frame held one point, so no growth to score).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecaster.backtest import TrustPolicy, judge_issued
from forecaster.series import Forecast, Series
from policies.loading import load_policy_text
from scaler.replay.forecasting import ReplayForecaster

T0 = pd.Timestamp("2026-03-02T00:00:00Z")  # a Monday
D, H = timedelta(days=1), timedelta(hours=1)


def _series(values, step) -> Series:
    idx = pd.date_range(T0, periods=len(values), freq=pd.Timedelta(step))
    return Series(pd.Series(np.asarray(values, dtype=float), index=idx), step, "test")


def _weekly(days: np.ndarray) -> np.ndarray:
    """A shop's week: 1000 on weekdays, 1600 on Saturday, 1300 on Sunday."""
    return np.array([1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1600.0, 1300.0])[np.asarray(days) % 7]


def _fc(index: pd.DatetimeIndex, upper) -> Forecast:
    u = np.asarray(upper, dtype=float)
    return Forecast(pd.DataFrame({"yhat": u / 1.1, "yhat_lower": u / 1.3, "yhat_upper": u}, index=index), "m")


class _Missing:
    """A model the trust check must not need (a bootstrap fit would call it)."""

    name = "missing"

    def fit(self, history):
        raise AssertionError("the issued forecasts overlap the window: no bootstrap fit")


def test_a_partial_horizon_includes_the_point_it_reaches_into():
    daily = _series(np.ones(10), D)
    assert len(daily.future_index(timedelta(hours=30))) == 1
    got = daily.future_index(timedelta(hours=30), partial=True)
    assert list(got) == [daily.end + D, daily.end + 2 * D]
    hourly = _series(np.ones(10), H)
    assert len(hourly.future_index(timedelta(hours=30), partial=True)) == 30
    assert len(hourly.future_index(timedelta(hours=30))) == 30


def test_the_pair_into_the_next_forecasts_first_point_is_scored_on_the_forecast_before_it():
    t0 = T0 + 10 * D
    hist = _series(np.full(10 * 24 + 7, 1000.0), H)  # flat; ends at t0 + 6 h
    # A, issued first: sees a rise into t0 + 3 h, the first point of B (flat).
    a_idx = pd.date_range(t0, periods=6, freq="h")
    a = _fc(a_idx, [1000.0, 1000.0, 1000.0, 1200.0, 1000.0, 1000.0])
    b = _fc(pd.date_range(t0 + 3 * H, periods=6, freq="h"), np.full(6, 1000.0))
    policy = TrustPolicy(max_wape=0.5, min_history=timedelta(days=7))
    v = judge_issued(hist, [a, b], timedelta(hours=6), timedelta(days=10), policy, _Missing, per_unit=100.0)
    g = v.growth
    assert g is not None and g.n_points == 6  # realised t0+1h .. t0+6h, each scored once
    # A sized t0+3h from the observation 1000: (1000 + 100) x 1300/1100 - 100 = 1200; 200 bought of 6000
    assert g.extra == pytest.approx(200.0 / 6000.0)
    assert g.under_forecast == 0.0 and not v.trusted  # a rise that did not come: worse than reactive
    assert v.reasons[0].startswith("growth scored worse than reactive sizing")


@pytest.mark.parametrize("window_days, steps", [(1, 1), (3, 3)])
def test_daily_forecasts_of_two_points_are_judged_on_their_growth(window_days, steps):
    n = 21
    hist = _series(_weekly(np.arange(n)), D)
    issued = []
    for first in range(n - 5, n):  # one a day, each for its day and the next, as the replay issues them
        idx = pd.date_range(T0 + first * D, periods=2, freq="D")
        issued.append(_fc(idx, 1.1 * _weekly(np.arange(first, first + 2))))
    policy = TrustPolicy(max_wape=0.35, min_history=timedelta(days=7))
    v = judge_issued(hist, issued, timedelta(days=window_days), timedelta(days=n), policy, _Missing, per_unit=100.0)
    assert v.growth is not None and v.growth.n_points == steps
    assert v.trusted and v.level_trusted, v.reasons


class _KnowsTheWeek:
    """A model that forecasts `_weekly` exactly (upper 10% above)."""

    name = "knows-the-week"

    def fit(self, history: Series) -> "_KnowsTheWeek":
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        days = ((index - T0) / pd.Timedelta(D)).to_numpy().astype(int)
        return _fc(index, 1.1 * _weekly(days))


DAILY_POLICY = """
apiVersion: ebbtide/v1
workloads:
  - name: shop
    target: {kind: Deployment, namespace: default, name: shop}
    demand: {query: 'orders', per_replica: 100}
    scaling: {min_replicas: 1, max_replicas: 100}
    forecast: {lookback: 28d, step: 1d, horizon: 24h, refit_interval: 6h, min_history: 7d}
"""


def test_the_replay_trusts_a_daily_forecast_that_knows_the_week():
    wl = load_policy_text(DAILY_POLICY).workloads[0]
    hist = _series(_weekly(np.arange(40)), D)
    fc = ReplayForecaster(hist, wl, _KnowsTheWeek)
    verdicts = []
    now = T0 + 8 * D + timedelta(minutes=5)
    while now < T0 + 30 * D:
        tf = fc.at(now.to_pydatetime(), (now - timedelta(minutes=1)).to_pydatetime())
        verdicts.append((now, tf.trusted, tf.reasons))
        assert tf.forecast is not None and len(tf.forecast.index) >= 1
        now += timedelta(hours=6)
    later = [t for when, t, _ in verdicts if when >= T0 + 11 * D]
    assert later and all(later), [r for _, t, r in verdicts if not t][:2]
