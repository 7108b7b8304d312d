"""Long collection outages read as zeros are missing data, not demand
(`ModelSettings.zero_outage_typical`, forecaster.model.zero_outages).

Cases (fast, pure, by hand; hourly, `min_run` 6 h, typical 0.9):
- an 8 h run of zeros in a positive series, data after it: exactly those 8 points
- a 6 h run (not longer than `min_run`): nothing (the outlier screen's job)
- a run still going at the end of the series, or followed only by missing points: nothing
- zeros that recur (8 night hours a day, as an online shop's): the nights are not outages, nor
  is a 40 h closure that spans nights (its night hours are zero a day and a week away too)
- two long runs: both; 0 disables; the run finder by hand (runs at either end, none)
Case (slow, seeded Prophet): tests/test_model.py's sale series with a 36 h outage of zeros ten
days before the sale, cut a day after the sale's end: noted, and the week's WAPE is lower than
with the rule off (where the zeros also widen the band) and close to the series without an
outage.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import test_model as tm

from forecaster.events import true_runs
from forecaster.model import EbbtideForecaster, ModelSettings, zero_outages
from forecaster.series import Series

H = timedelta(hours=1)


def _series(v) -> pd.Series:
    return pd.Series(np.asarray(v, dtype=float),
                     index=pd.date_range("2026-10-01T00:00:00Z", periods=len(v), freq="1h"))


def _mask(v, typical=0.9):
    return zero_outages(_series(v), H, timedelta(hours=6), typical)


def test_true_runs_by_hand():
    assert true_runs(np.array([1, 1, 0, 1, 0, 0, 1], dtype=bool)) == [(0, 2), (3, 4), (6, 7)]
    assert true_runs(np.zeros(3, dtype=bool)) == [] and true_runs(np.zeros(0, dtype=bool)) == []


def test_a_long_zero_run_followed_by_data_is_an_outage():
    v = np.full(200, 50.0)
    v[100:108] = 0.0
    m = _mask(v)
    assert m.sum() == 8 and m[100:108].all()


def test_short_final_or_unconfirmed_runs_are_kept():
    v = np.full(200, 50.0)
    v[100:106] = 0.0  # 6 h: not longer than min_run
    assert not _mask(v).any()
    v = np.full(200, 50.0)
    v[190:] = 0.0  # still going at the end
    assert not _mask(v).any()
    v = np.full(200, 50.0)
    v[180:190] = 0.0
    v[190:] = np.nan  # nothing observed after it
    assert not _mask(v).any()


def test_common_zeros_mask_nothing():
    hours = np.arange(24 * 20) % 24
    v = np.where(hours < 8, 0.0, 50.0)  # closed every night
    v[200:240] = 0.0  # and a long closure
    assert not _mask(v).any()


def test_two_runs_and_disabled():
    v = np.full(400, 50.0)
    v[50:60] = 0.0
    v[300:320] = 0.0
    m = _mask(v)
    assert m.sum() == 30 and m[50:60].all() and m[300:320].all()
    assert not _mask(v, typical=0).any()


@pytest.mark.slow
def test_an_outage_does_not_spoil_the_forecast():
    all_s, _ = tm.hourly_series(35, seed=4)
    cut = tm.SALE_PEAK + pd.Timedelta(hours=4 + 24)
    v = all_s.values.copy()
    gap = tm.SALE_PEAK - pd.Timedelta(days=10)
    v[(v.index >= gap) & (v.index < gap + pd.Timedelta(hours=36))] = 0.0
    with_gap = Series(v, H, "outage")
    fut = with_gap.before(cut).future_index(timedelta(days=7))
    actual = all_s.values.reindex(fut).to_numpy()

    def run(series, **kw):
        return EbbtideForecaster([tm.SALE], ModelSettings(**kw)).fit(series.before(cut)).predict(fut)

    on, off, clean = run(with_gap), run(with_gap, zero_outage_typical=0), run(all_s)
    assert any(n.startswith("collection outage: 36 points") for n in on.notes)
    assert not any(n.startswith("collection outage") for n in off.notes + clean.notes)
    w_on, w_off, w_clean = (tm.wape(actual, f.yhat.to_numpy()) for f in (on, off, clean))
    assert w_on < w_off
    assert w_on <= w_clean + 0.05
    width = lambda f: float(np.median(f.yhat_upper.to_numpy() / f.yhat.to_numpy()))  # noqa: E731
    assert width(on) < width(off)
