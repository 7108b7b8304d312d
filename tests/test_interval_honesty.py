"""Honest residuals for the interval (forecaster.model): what the calibration learns from.

Cases (fast):
- lead_buckets counts independent observations per forecast origin: two origins covering the
  same half day of lead count one day, not half a day (hand values); one origin as before
- _profile_left_out by hand: at a point inside the residual profile's window, the median of
  its slot over the window's other periods; outside the window, the profile itself
Cases (slow, seeded Prophet fits):
- a weekly shape that changes week to week, so the residual profile (the median of the last
  three weeks) partly fits its own points: with `honest_in_sample` the in-sample residuals use
  the profile with their own week left out, the upper quantile is wider, and the held-out
  week is covered at least as well as without it
- `holdout_origins`: a 42-day history gets a second origin (named in the notes, its residuals
  in the calibration, more holdout residuals); a 20-day history is too short for one (the
  quarter rule); `holdout_origins=1` never adds one
"""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecaster.intervals import lead_buckets
from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series

DAY_S, HOUR_S = 86400.0, 3600.0


def test_lead_buckets_count_each_origin():
    # Two origins, each forecasting leads 1-12 h (half a day): one bucket (<= 1 d) of 24
    # residuals counting 0.5 + 0.5 = 1 day; one origin over the same leads counts 0.5.
    lead = np.tile(np.arange(1, 13) * HOUR_S, 2)
    r = np.arange(24, dtype=float)
    origin = np.repeat([0.0, 7 * DAY_S], 12)
    edges = np.array([DAY_S])
    two = lead_buckets(r, lead, edges, DAY_S, HOUR_S, origin)
    assert two[0][1] == pytest.approx(1.0) and two[1] is None
    np.testing.assert_array_equal(np.sort(two[0][0]), r)
    one = lead_buckets(r, lead, edges, DAY_S, HOUR_S)
    assert one[0][1] == pytest.approx(0.5)
    # Every residual counts when block_s is 0, whatever the origins.
    assert lead_buckets(r, lead, edges, 0.0, HOUR_S, origin)[0][1] == 24.0


def test_profile_left_out_by_hand():
    model = EbbtideForecaster(settings=ModelSettings(profile_periods=3))
    model._fit_step = timedelta(hours=1)
    grid = pd.date_range("2026-03-02T00:00:00Z", periods=72, freq="1h")  # 3 days: a daily profile
    per_day = np.array([1.0, 2.0, 6.0])  # the residual of every hour of day 0, 1, 2
    resid = np.repeat(per_day, 24)
    exclude = np.zeros(72, dtype=bool)
    full = model._residual_profile(grid, resid, exclude)
    period, prof = full
    assert period == timedelta(days=1)
    np.testing.assert_allclose(prof, 2.0)  # median of 1, 2, 6 at every hour
    later = pd.date_range("2026-03-05T00:00:00Z", periods=24, freq="1h")  # after the window
    got = model._profile_left_out(full, grid, resid, exclude, grid.append(later))
    # Day 0: median(2, 6) = 4; day 1: median(1, 6) = 3.5; day 2: median(1, 2) = 1.5; later: 2.
    np.testing.assert_allclose(got, np.repeat([4.0, 3.5, 1.5, 2.0], 24))
    # Excluded points neither count nor change the others' values when left out.
    exclude[24:48] = True
    got = model._profile_left_out(model._residual_profile(grid, resid, exclude), grid, resid, exclude, grid)
    np.testing.assert_allclose(got[:24], 6.0)  # day 0: only day 2 left
    np.testing.assert_allclose(got[48:], 1.0)  # day 2: only day 0 left


# --------------------------------------------------------------------------- slow (Prophet)

START = pd.Timestamp("2026-03-02T00:00:00Z")


def _drifting_weeks(seed: int, days: int) -> Series:
    """Hourly demand, no event: a daily cycle plus a weekly shape that is partly new each week
    (per weekday a level drawn afresh every week, sd 0.15 in log), and hourly noise sd 0.05."""
    idx = pd.date_range(START, periods=days * 24, freq="1h")
    rng = np.random.default_rng(seed)
    week_day = rng.normal(0.0, 0.15, (days // 7 + 2, 7))
    wk = ((idx - START) // pd.Timedelta(days=7)).to_numpy()
    log_y = (np.log(500.0) + 0.5 * np.sin(2 * np.pi * (idx.hour.to_numpy() - 12) / 24)
             + week_day[wk, idx.day_of_week.to_numpy()] + rng.normal(0.0, 0.05, idx.size))
    return Series(pd.Series(np.round(np.exp(log_y)), index=idx), timedelta(hours=1), "drift")


def _upper_quantile_first_bucket(model: EbbtideForecaster) -> float:
    return float(np.max(np.atleast_2d(model._q_hi)[:, 0]))


@pytest.mark.slow
def test_honest_in_sample_widens_an_overfitted_profile():
    wider, cov_on, cov_off = [], [], []
    for seed in (3, 4, 5):
        series = _drifting_weeks(seed, 42)
        cut = START + pd.Timedelta(days=35)
        hist = series.before(cut)
        idx = hist.future_index(timedelta(days=7))
        y = series.values.reindex(idx).to_numpy()
        fits = {}
        for honest in (True, False):
            m = EbbtideForecaster(settings=ModelSettings(seed=0, honest_in_sample=honest, holdout_origins=1)).fit(hist)
            fits[honest] = m
        weight = [n for n in fits[True].notes if n.startswith("seasonal residual profile (")]
        if not weight or weight[0].endswith("weight 0"):
            continue  # the profile is not used: nothing to be honest about
        wider.append(_upper_quantile_first_bucket(fits[True]) > _upper_quantile_first_bucket(fits[False]))
        cov_on.append(float(np.mean(y <= fits[True].predict(idx).yhat_upper.to_numpy())))
        cov_off.append(float(np.mean(y <= fits[False].predict(idx).yhat_upper.to_numpy())))
    assert wider, "no seed used the residual profile"
    assert all(wider)
    assert np.mean(cov_on) >= np.mean(cov_off)


@pytest.mark.slow
def test_holdout_origins_need_history():
    series = _drifting_weeks(7, 42)
    hist = series.before(START + pd.Timedelta(days=42))
    two = EbbtideForecaster(settings=ModelSettings(seed=0)).fit(hist)
    one = EbbtideForecaster(settings=ModelSettings(seed=0, holdout_origins=1)).fit(hist)
    extra = [n for n in two.notes if "earlier origin" in n]
    # The 35-day lookback holds days 7-42; the holdout starts on day 35 and the earlier origin
    # one span (7 days) before it, day 28 (03-30), with 21 days (3 spans) of history before it.
    assert extra and "2026-03-30T00:00:00" in extra[0], two.notes

    def n_hold(m):
        note = next(n for n in m.notes if n.startswith("interval: conformal"))
        return int(re.search(r"(\d+) holdout", note).group(1))

    assert n_hold(two) == n_hold(one) + 7 * 24
    assert not any("earlier origin" in n for n in one.notes)
    short = EbbtideForecaster(settings=ModelSettings(seed=0)).fit(series.before(START + pd.Timedelta(days=20)))
    assert not any("earlier origin" in n for n in short.notes)
