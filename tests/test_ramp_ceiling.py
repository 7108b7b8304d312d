"""`ModelSettings.ramp_ceiling`: an event whose ramp the history holds but whose peak it does not is
not extrapolated beyond the history's highest value (times its `lift`).

Cases (seeded Prophet on four weeks of hourly synthetic traffic without events; the last 6 hours
are raised 4x, the start of a declared sale's ramp whose peak is 12 h after the cut, as early
Boxing Day crowds at 5 am were; the model's ramp then extrapolates far above anything seen):
- with the setting off the forecast over the event climbs above 2x the history's highest value
  (the case has teeth); on, yhat and yhat_upper stay at or below that value over [start, end +
  ebb_span), yhat_lower keeps its ratio to yhat where the cap bit, the forecast before the cap
  binds is unchanged, and a note says so;
- the same event with `lift: 3`: the cap is 3x the history's highest value, and the forecast
  reaches above the history's highest value (the lift lets it);
- a second event that has not started yet, 2 days after the cut, with `lift: 10`: its window is
  not capped by the first event's ceiling (it rises above the cap);
- cut after the peak (the peak in the history): the setting changes nothing (equal frames).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series
from forecaster.synthetic import generate
from policies.events import Event

pytestmark = pytest.mark.slow

UTC = timezone.utc
H = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def case():
    """(history cut 6 h into the ramp, its forecast index, the sale) with the ramp's hours raised 4x."""
    tr = generate(datetime(2026, 10, 1, tzinfo=UTC), 28, timedelta(hours=1), 11, None, noise_sigma=0.05, outages=0)
    values = tr.series.values.copy()
    values.iloc[-6:] *= 4.0
    history = Series(values, tr.series.step, name="ramp")
    cut = history.end + H
    sale = Event(name="sale", kind="sale", start=cut - 6 * H, peak=cut + 12 * H, end=cut + 18 * H)
    return history, history.future_index(timedelta(days=3)), sale, tr.zone


def _fit(events, history, index, zone, **kw):
    return EbbtideForecaster(events, ModelSettings(calendar_tz=zone, **kw)).fit(history).predict(index)


def test_partial_ramp_is_not_extrapolated_beyond_the_history(case):
    history, index, sale, zone = case
    top = float(history.values.max())
    off = _fit([sale], history, index, zone, ramp_ceiling=False).frame
    on_fc = _fit([sale], history, index, zone)
    on = on_fc.frame
    assert off["yhat"].max() > 2 * top  # the extrapolation the ceiling is for
    assert (on["yhat"] <= top * (1 + 1e-9)).all() and (on["yhat_upper"] <= top * (1 + 1e-9)).all()
    capped = off["yhat"] > top
    assert capped.any() and (~capped).any()
    np.testing.assert_allclose(on["yhat"][~capped], off["yhat"][~capped], rtol=1e-9)
    np.testing.assert_allclose((on["yhat_lower"] / on["yhat"])[capped], (off["yhat_lower"] / off["yhat"])[capped],
                               rtol=1e-6)
    assert any(n.startswith("ramp ceiling: sale's ramp is seen in part") for n in on_fc.notes)


def test_a_lift_raises_the_ceiling(case):
    history, index, sale, zone = case
    top = float(history.values.max())
    on = _fit([sale.model_copy(update={"lift": 3.0})], history, index, zone).frame
    assert (on["yhat_upper"] <= 3 * top * (1 + 1e-9)).all()
    assert on["yhat_upper"].max() > top


def test_a_later_event_not_started_is_not_capped(case):
    history, index, sale, zone = case
    top = float(history.values.max())
    cut = history.end + H
    later = Event(name="partner-show", kind="joint_live", start=cut + 48 * H, peak=cut + 54 * H, end=cut + 57 * H,
                  lift=10.0)
    f = _fit([sale, later], history, index, zone).frame
    inside_first = f.index + H / 2 < later.start
    assert (f["yhat_upper"][inside_first] <= top * (1 + 1e-9)).all()
    assert f["yhat_upper"][~inside_first].max() > top


def test_no_change_once_the_peak_is_in_the_history(case):
    history, _, sale, zone = case
    full = generate(datetime(2026, 10, 1, tzinfo=UTC), 28, timedelta(hours=1), 11, None, noise_sigma=0.05,
                    outages=0).series
    cut = history.end + H
    seen = Event(name="sale", kind="sale", start=cut - 30 * H, peak=cut - 24 * H, end=cut - 20 * H)
    index = full.future_index(timedelta(days=3))
    on = _fit([seen], full, index, zone).frame
    off = _fit([seen], full, index, zone, ramp_ceiling=False).frame
    pd.testing.assert_frame_equal(on, off)
