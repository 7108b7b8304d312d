"""Baseline forecasters (forecaster/baselines.py).

Cases:
- seasonal naive (day) repeats yesterday exactly, also for horizons longer than a season;
- seasonal naive fills a NaN in the last season from the season before;
- seasonal naive intervals: on a series whose day-to-day change is a known set of values, the
  bounds are yhat + the empirical quantiles of those changes (hand-computed);
- seasonal naive with a history shorter than a season repeats the last value and says so;
- seasonal naive names (`seasonal_naive_day` / `_week`) and refusal of a season that is not a
  whole number of steps;
- property: for any non-negative history, every baseline returns 0 <= lower <= yhat <= upper;
- Holt-Winters recovers a clean daily pattern (WAPE small) and is flat-ish on a constant series;
- Holt-Winters survives zeros, a constant zero series, NaN gaps and short histories (notes say
  which fallback was taken);
- Holt-Winters on 1-minute data fits an aggregate and maps the forecast back to the 1-min grid;
- predict refuses timestamps that are not after the history.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.backtest import wape
from forecaster.baselines import HoltWinters, SeasonalNaive
from forecaster.series import Series

H = timedelta(hours=1)
T0 = pd.Timestamp("2026-03-02T00:00:00Z")


def series(values, step=H, start=T0) -> Series:
    idx = pd.date_range(start, periods=len(values), freq=pd.Timedelta(step))
    return Series(pd.Series(np.asarray(values, dtype=float), index=idx), step, "test")


def future(s: Series, n: int) -> pd.DatetimeIndex:
    return s.future_index(s.step * n)


def test_seasonal_naive_repeats_last_day_beyond_one_season():
    day = np.arange(24, dtype=float) * 10
    s = series(np.concatenate([day + 1000, day]))  # the last day is what must repeat
    fc = SeasonalNaive(timedelta(days=1)).fit(s).predict(future(s, 60))
    np.testing.assert_array_equal(fc.yhat.to_numpy(), np.concatenate([day, day, day[:12]]))
    assert fc.model == "seasonal_naive_day"


def test_seasonal_naive_fills_gap_from_season_before():
    vals = np.tile(np.arange(24, dtype=float), 3)
    vals[48 + 5] = np.nan  # hour 5 of the last day missing
    vals[48 + 6] = np.nan
    vals[24 + 6] = np.nan  # ... and hour 6 of the day before too: falls back two days
    s = series(vals)
    fc = SeasonalNaive(timedelta(days=1)).fit(s).predict(future(s, 24))
    np.testing.assert_array_equal(fc.yhat.to_numpy(), np.arange(24, dtype=float))


def test_seasonal_naive_interval_is_empirical_quantile_of_seasonal_changes():
    # Day d has level 100 + c_d at every hour, so each seasonal change y_t - y_{t-24} equals
    # c_d - c_{d-1} for all 24 hours of day d.
    changes = [0, 10, -10, 20, -20, 0, 30, -30, 0, 0, 10]  # day-to-day change of the level
    levels = 100 + np.cumsum(changes)
    vals = np.repeat(levels, 24).astype(float)
    s = series(vals)
    model = SeasonalNaive(timedelta(days=1), upper_quantile=0.9, lower_quantile=0.1).fit(s)
    fc = model.predict(future(s, 24))
    diffs = np.repeat(np.diff(levels), 24).astype(float)  # 10 days x 24 changes
    assert fc.yhat.iloc[0] == levels[-1]
    np.testing.assert_allclose(fc.yhat_upper.to_numpy(), levels[-1] + np.quantile(diffs, 0.9))
    np.testing.assert_allclose(fc.yhat_lower.to_numpy(), levels[-1] + np.quantile(diffs, 0.1))
    # Two days ahead: errors at lag 2 days are c_d + c_{d-1}.
    fc2 = model.predict(future(s, 48))
    lag2 = np.repeat(levels[2:] - levels[:-2], 24).astype(float)
    np.testing.assert_allclose(fc2.yhat_upper.to_numpy()[24:], levels[-1] + np.quantile(lag2, 0.9))


def test_seasonal_naive_short_history_repeats_last_value():
    s = series([5.0, 7.0, 9.0, 8.0])
    fc = SeasonalNaive(timedelta(days=1)).fit(s).predict(future(s, 3))
    np.testing.assert_array_equal(fc.yhat.to_numpy(), [8.0, 8.0, 8.0])
    assert any("shorter than one season" in n for n in fc.notes)


def test_seasonal_naive_names_and_bad_season():
    assert SeasonalNaive(timedelta(days=7)).name == "seasonal_naive_week"
    s = series(np.ones(100), step=timedelta(minutes=7))
    with pytest.raises(ValueError, match="whole number"):
        SeasonalNaive(timedelta(days=1)).fit(s)
    with pytest.raises(ValueError, match="quantiles"):
        SeasonalNaive(timedelta(days=1), upper_quantile=0.05)


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.one_of(st.floats(0, 1e6), st.just(float("nan"))), min_size=3, max_size=120).filter(
        lambda xs: any(not np.isnan(x) for x in xs)
    ),
    st.integers(1, 80),
)
def test_bounds_are_ordered_and_non_negative(values, horizon):
    s = series(values)
    for model in (SeasonalNaive(timedelta(days=1)), SeasonalNaive(timedelta(hours=6)), HoltWinters()):
        fc = model.fit(s).predict(future(s, horizon))
        f = fc.frame
        assert len(f) == horizon
        assert np.isfinite(f.to_numpy()).all()
        assert (f["yhat_lower"] >= 0).all()
        assert (f["yhat_lower"] <= f["yhat"]).all()
        assert (f["yhat"] <= f["yhat_upper"]).all()


def daily_pattern(days: int, step=H) -> np.ndarray:
    per_day = int(timedelta(days=1) / step)
    t = np.arange(days * per_day)
    return 100 + 50 * np.sin(2 * np.pi * t / per_day)


def test_holt_winters_recovers_clean_daily_pattern():
    vals = daily_pattern(15)
    s = series(vals[: 14 * 24])
    fc = HoltWinters().fit(s).predict(future(s, 24))
    assert wape(vals[14 * 24:], fc.yhat.to_numpy()) < 0.02
    assert fc.model == "holt_winters"
    assert fc.notes == ()


def test_holt_winters_robust_inputs():
    zeros = series(np.zeros(24 * 5))
    fc = HoltWinters().fit(zeros).predict(future(zeros, 10))
    np.testing.assert_allclose(fc.yhat.to_numpy(), 0.0, atol=1e-6)

    spiky = daily_pattern(5)
    spiky[::7] = 0.0
    spiky[30:40] = np.nan
    fc = HoltWinters().fit(series(spiky)).predict(future(series(spiky), 30))
    assert np.isfinite(fc.frame.to_numpy()).all()

    short = series([3.0, 4.0, 5.0, 4.0, 6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 4.0, 5.0])
    fc = HoltWinters().fit(short).predict(future(short, 5))
    assert any("no seasonal component" in n for n in fc.notes)
    assert 2.0 < fc.yhat.iloc[0] < 8.0

    tiny = series([3.0, 5.0])
    fc = HoltWinters().fit(tiny).predict(future(tiny, 2))
    np.testing.assert_allclose(fc.yhat.to_numpy(), 4.0)
    assert any("mean level" in n for n in fc.notes)


def test_holt_winters_aggregates_fine_data_and_maps_back():
    step = timedelta(minutes=1)
    vals = daily_pattern(4, step)
    s = series(vals[: 3 * 1440], step=step)
    fc = HoltWinters(max_season_steps=288).fit(s).predict(future(s, 60))
    assert len(fc.frame) == 60
    assert fc.index[0] == s.end + pd.Timedelta(minutes=1)
    assert any("5m means" in n for n in fc.notes)
    # Step function over 5-minute buckets: values constant inside each bucket.
    y = fc.yhat.to_numpy().reshape(12, 5)
    np.testing.assert_allclose(y, y[:, :1].repeat(5, axis=1))
    assert wape(vals[3 * 1440: 3 * 1440 + 60], fc.yhat.to_numpy()) < 0.05


def test_predict_refuses_index_inside_history():
    s = series(daily_pattern(3))
    for model in (SeasonalNaive(timedelta(days=1)).fit(s), HoltWinters().fit(s)):
        with pytest.raises(ValueError, match="after the history"):
            model.predict(s.index[-5:])
