"""The ebb starts at the event's level at its end (ModelSettings.ebb_start_at_event_level), the
other side of the ebb start cap (tests/test_ebb_start_cap.py).

Cases (slow, seeded Prophet, a generated hourly trace: daily cycle, 6 weeks of history, a sale
held at 4x the usual level through a 28 h window, then an exponential ebb from that level,
tau 24 h, lognormal noise 6 %):
- cut at the sale's end (no ebb observed): `inside` carries the level held through the window
  (b > 0), so without the setting the forecast falls back to the usual level at the end; with
  it the first 12 h are forecast well above that, the 48 h WAPE is lower, the note says so,
  and the upper bound is never below the one without it (the band spans both starts);
- cut a day after the end (the tail observed): the setting does not act, the forecast is the
  same with it off.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series
from policies.events import Event

UTC = timezone.utc
START = datetime(2026, 11, 10, 12, tzinfo=UTC)
PEAK = datetime(2026, 11, 10, 16, tzinfo=UTC)
END = datetime(2026, 11, 11, 16, tzinfo=UTC)
SALE = Event(name="double-11", kind="sale", start=START, peak=PEAK, end=END)


def _sale(seed: int = 5) -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START - timedelta(days=42), END + timedelta(days=4), freq="1h", inclusive="left")
    mid = idx + pd.Timedelta(minutes=30)
    h = np.asarray((mid - mid.normalize()).total_seconds() / 3600)
    base = 200 * (1 + 0.5 * np.sin(2 * np.pi * (h - 8) / 24))
    mult = np.ones(len(idx))
    mult[(mid >= START) & (mid < END)] = 4.0
    after = mid >= END
    mult[after] = 1 + 3.0 * np.exp(-np.asarray((mid[after] - END) / pd.Timedelta(hours=24)))
    return pd.Series(np.round(base * mult * np.exp(rng.normal(0, 0.06, len(idx)))), index=idx)


def _fit(y: pd.Series, cut: datetime, on: bool) -> EbbtideForecaster:
    hist = Series(y[y.index < cut], step=timedelta(hours=1), name="orders")
    return EbbtideForecaster([SALE], ModelSettings(ebb_start_at_event_level=on)).fit(hist)


def _wape(actual: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.abs(actual - yhat).sum() / actual.sum())


@pytest.mark.slow
def test_cut_at_the_end_the_ebb_starts_at_the_event_level():
    y = _sale()
    on, off = _fit(y, END, True), _fit(y, END, False)
    hours = pd.date_range(END, periods=48, freq="1h")
    f_on, f_off = on.predict(hours), off.predict(hours)
    actual = y.reindex(hours).to_numpy(dtype=float)
    usual = y[(y.index >= START - timedelta(days=7)) & (y.index < START - timedelta(days=6))].mean()
    assert f_on.frame["yhat"].iloc[:12].mean() > 1.5 * f_off.frame["yhat"].iloc[:12].mean()
    assert f_on.frame["yhat"].iloc[:12].mean() > 2.0 * usual
    assert _wape(actual, f_on.frame["yhat"].to_numpy()) < _wape(actual, f_off.frame["yhat"].to_numpy())
    assert any(n.startswith("ebb starts at the event") for n in f_on.notes)
    assert not any(n.startswith("ebb starts at the event") for n in f_off.notes)
    assert (f_on.frame["yhat_upper"].to_numpy() >= f_off.frame["yhat_upper"].to_numpy() * (1 - 1e-6)).all()


@pytest.mark.slow
def test_with_the_tail_observed_it_does_not_act():
    y = _sale()
    cut = END + timedelta(days=1)
    on, off = _fit(y, cut, True), _fit(y, cut, False)
    week = pd.date_range(cut, periods=72, freq="1h")
    assert on._best.carried == ()
    np.testing.assert_allclose(on.predict(week).frame["yhat"].to_numpy(), off.predict(week).frame["yhat"].to_numpy())
