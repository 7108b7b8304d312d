"""The ebb start cap (ModelSettings.ebb_start_cap): until the ebb's own height is observed, an
ebb does not start above the event it follows.

Cases:
- the prediction frame (no Prophet): for a carried event (weight w) the `inside` column is 0
  before the start, 1 inside [start, end) and w x the shape's decay after the end, by hand
  (exponential, tau 16 h, hourly midpoints); the shape column is unchanged, and without a
  carried event the frame is the plain features;
- (slow, seeded Prophet) an hourly page-view trace with a 50x spike cut at the event's end (no
  ebb observed; `inside` is fitted negative, the failure the ebb ceiling also guards against):
  with the ebb ceiling off, without the cap the event's fitted effect jumps UP at the end (the
  ebb starts above the event); with it the effect at the first ebb hour is at most the effect
  at the event's last hour and at least 0, the note says so, yhat over the ebb is never higher
  than without the cap, yhat_upper is the same (the band spans the uncapped ebb), and the
  forecast before the end is unchanged;
- (slow) cut a day after the end (the `tail` is learnt), the cap does not act: same forecast.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series
from policies.events import Event
from support.traces import spike_pageviews

UTC = timezone.utc
START = datetime(2026, 3, 10, 6, tzinfo=UTC)
PEAK = datetime(2026, 3, 10, 8, tzinfo=UTC)
END = datetime(2026, 3, 10, 14, tzinfo=UTC)
NEWS = Event(name="news", kind="sale", start=START, peak=PEAK, end=END)
TAU = timedelta(hours=16)


def test_carried_inside_follows_the_decay_after_the_end():
    m = EbbtideForecaster([NEWS], ModelSettings())
    m._occ, m._fit_step, m._peak_excess, m._use_settle = [NEWS], timedelta(hours=1), {}, False
    grid = pd.date_range("2026-03-10T04:00:00Z", periods=40, freq="1h")
    cols = ("news:shape", "news:inside")
    plain = m._frame(grid, {"news": TAU}, cols)
    capped = m._frame(grid, {"news": TAU}, cols, carried=(("news", 0.25),))
    mid_h = np.asarray((grid + pd.Timedelta(minutes=30) - pd.Timestamp(END)) / pd.Timedelta(hours=1))
    # 04:00 and 05:00 are before the start; 06:00 .. 13:00 inside; from 14:00 the ebb, its
    # midpoints 0.5 h, 1.5 h, ... after the end: decay exp(-dt / 16 h), times w = 0.25.
    expected = np.where(mid_h < -8, 0.0, np.where(mid_h < 0, 1.0, 0.25 * np.exp(-mid_h / 16.0)))
    np.testing.assert_allclose(capped["news:inside"].to_numpy(), expected, rtol=1e-12)
    assert capped["news:inside"].iloc[10] == pytest.approx(0.25 * math.exp(-0.5 / 16))  # 14:00
    np.testing.assert_allclose(plain["news:inside"].to_numpy(), np.where((mid_h >= -8) & (mid_h < 0), 1.0, 0.0))
    np.testing.assert_array_equal(capped["news:shape"].to_numpy(), plain["news:shape"].to_numpy())
    np.testing.assert_array_equal(capped["ds"].to_numpy(), plain["ds"].to_numpy())


def _pageviews(seed: int = 3) -> pd.Series:
    return spike_pageviews(START, PEAK, END, seed)


def _event_effect(model: EbbtideForecaster, at: pd.DatetimeIndex) -> np.ndarray:
    """The chosen fit's event contribution in z (shape + inside [+ tail]) at `at`, as predicted."""
    f = model._best
    out = f.prophet.predict(model._frame(at, f.taus, f.columns, f.carried))
    return out[[c for c in f.columns if c.startswith("news:")]].sum(axis=1).to_numpy()


@pytest.mark.slow
def test_cut_at_the_end_the_ebb_does_not_start_above_the_event():
    y = _pageviews()
    hist = Series(y[y.index < END], step=timedelta(hours=1), name="pv")
    off = EbbtideForecaster([NEWS], ModelSettings(ebb_ceiling=False, ebb_start_cap=False)).fit(hist)
    on = EbbtideForecaster([NEWS], ModelSettings(ebb_ceiling=False)).fit(hist)
    last_hour, first_ebb = pd.DatetimeIndex([END - timedelta(hours=1)]), pd.DatetimeIndex([END])
    # The failure: without the cap the fitted effect jumps up at the end.
    assert _event_effect(off, first_ebb)[0] > _event_effect(off, last_hour)[0] + 0.1
    assert on._best.carried and on._best.carried[0][0] == "news"
    assert 0.0 <= _event_effect(on, first_ebb)[0] <= _event_effect(on, last_hour)[0] + 1e-9
    week = pd.date_range(END, periods=7 * 24, freq="1h")
    fc_on, fc_off = on.predict(week), off.predict(week)
    assert any(n.startswith("ebb starts at the event") for n in fc_on.notes)
    assert not any(n.startswith("ebb starts at the event") for n in fc_off.notes)
    assert (fc_on.frame["yhat"].to_numpy() <= fc_off.frame["yhat"].to_numpy() + 1e-6).all()
    assert fc_on.frame["yhat"].sum() < fc_off.frame["yhat"].sum()
    # A prior, not data: the band still spans the uncapped ebb, so capacity is not cut.
    np.testing.assert_allclose(fc_on.frame["yhat_upper"].to_numpy(), fc_off.frame["yhat_upper"].to_numpy(),
                               rtol=1e-6)
    # The cap removes no more than the event's excess: the ebb stays above the forecast of the
    # same hours one week earlier, before the event (same weekday and hour, no event then).
    quiet = on.predict(week - pd.Timedelta(days=7)).frame["yhat"].to_numpy()
    assert (fc_on.frame["yhat"].to_numpy()[:24] >= 0.95 * quiet[:24]).all()
    before = pd.date_range(END - timedelta(hours=30), periods=24, freq="1h")
    np.testing.assert_allclose(on.predict(before).frame["yhat"].to_numpy(),
                               off.predict(before).frame["yhat"].to_numpy())


@pytest.mark.slow
def test_no_cap_once_the_tail_is_observed():
    y = _pageviews()
    cut = END + timedelta(days=1)
    hist = Series(y[y.index < cut], step=timedelta(hours=1), name="pv")
    week = pd.date_range(cut, periods=7 * 24, freq="1h")
    on = EbbtideForecaster([NEWS], ModelSettings()).fit(hist)
    off = EbbtideForecaster([NEWS], ModelSettings(ebb_start_cap=False)).fit(hist)
    assert on._best.carried == ()
    assert not any(n.startswith("ebb starts at the event") for n in on.notes)
    np.testing.assert_allclose(on.predict(week).frame["yhat"].to_numpy(), off.predict(week).frame["yhat"].to_numpy())
