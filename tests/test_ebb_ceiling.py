"""Two safeguards of the ebb forecast: the ebb ceiling (ModelSettings.ebb_ceiling: after an
event whose peak is in the history, the forecast over its ebb is capped at the highest value
observed) and the band over the ebb kernel's tau-grid neighbours (band_spans_neighbours).

Cases:
- the mask (no Prophet): points in [end, end + ebb_span) of an observed event are capped, points
  before its end, after the span, or from the start of a later event whose peak is not in the
  history are not (it may rise above any past value; `unseen_borrows_effect`); with that
  setting off, only the later event's window is left out (hand-computed);
- an occurrence whose peak is after the history's end is not covered (no cap without a peak);
  a peak inside the last observed interval (08:41 with hourly points ending at the 08:00 one)
  is in the history;
- (slow, seeded Prophet) an hourly page-view trace with a 50x spike cut at the event's end: without
  the ceiling the forecast rises above every value ever observed (the failure measured on such
  traces); with it, yhat and yhat_upper stay at or below the history's maximum, the note says so,
  and the forecast before the event's ebb window is unchanged;
- (slow) the same trace cut a day after the end: the band spans the best kernel's tau-grid
  neighbours half-way (`band_spans_neighbours`, `neighbour_reach` 0.5), so >= 90% of the week
  is under yhat_upper, more than without them, and yhat is the same; reach 0 gives the band
  without neighbours, and the upper bound grows with the reach.
"""

from __future__ import annotations

from dataclasses import replace
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


def _event(name: str, start: datetime, peak: datetime, end: datetime) -> Event:
    return Event(name=name, kind="sale", start=start, peak=peak, end=end)


def _bare_model(occ: list[Event], hist_end: datetime, span: timedelta = timedelta(days=2),
                **settings) -> EbbtideForecaster:
    """A model with only what the ceiling reads set (no fit)."""
    m = EbbtideForecaster(occ, ModelSettings(ebb_span=span, **settings))
    m._occ = occ
    m._step = timedelta(hours=1)
    m._ceiling = m._ebb_ceiling(pd.Series([1.0, 7.0, 3.0]), hist_end)
    return m


def test_mask_covers_the_ebb_of_an_observed_event_and_not_a_later_event_window():
    later = _event("next", datetime(2026, 3, 11, 10, tzinfo=UTC), datetime(2026, 3, 11, 12, tzinfo=UTC),
                   datetime(2026, 3, 11, 14, tzinfo=UTC))
    m = _bare_model([_event("news", START, PEAK, END), later], hist_end=END)
    assert m._ceiling == (7.0, ("news",))  # the later event's peak is not in the history
    idx = pd.date_range("2026-03-10T12:00:00Z", periods=60, freq="1h")
    mask = m._ceiling_mask(idx)
    t = idx.to_pydatetime()
    # Hourly points are judged at their midpoints (t + 30 min): capped in [14:00, 14:00 + 2 d)
    # outside [10:00, 14:00) on 03-11.
    expected = np.array([END <= ti + timedelta(minutes=30) < later.start for ti in t])
    assert mask.tolist() == expected.tolist()
    assert not mask[:2].any()  # 12:00 and 13:00: still inside the event
    assert mask[2]  # 14:00: first ebb hour
    assert not mask[idx >= "2026-03-11T10:00:00Z"].any()
    old = _bare_model([_event("news", START, PEAK, END), later], hist_end=END, unseen_borrows_effect=False)
    expected_old = np.array([(END <= ti + timedelta(minutes=30) < END + timedelta(days=2))
                             and not (later.start <= ti + timedelta(minutes=30) < later.end) for ti in t])
    assert old._ceiling_mask(idx).tolist() == expected_old.tolist()


def test_no_ceiling_before_the_peak_is_observed():
    m = _bare_model([_event("news", START, PEAK, END)], hist_end=PEAK - timedelta(hours=1))
    assert m._ceiling is None


def test_a_peak_inside_the_last_observed_interval_is_observed():
    # Hourly points are labelled at their start: the point at 08:00 holds 08:00-09:00, so a peak
    # at 08:41 is in the history that ends with it (was: only peaks <= 08:00 counted, so a cut
    # at 09:00 right after the peak had no ceiling and its ebb ran above every value observed).
    peak = PEAK + timedelta(minutes=41)
    assert _bare_model([_event("news", START, peak, END)], hist_end=PEAK)._ceiling == (7.0, ("news",))
    assert _bare_model([_event("news", START, peak, END)], hist_end=PEAK - timedelta(hours=1))._ceiling is None
    on_the_hour = _event("news", START, PEAK + timedelta(hours=1), END)  # starts the next interval
    assert _bare_model([on_the_hour], hist_end=PEAK)._ceiling is None


def _pageviews(seed: int = 3) -> pd.Series:
    return spike_pageviews(START, PEAK, END, seed)


@pytest.mark.slow
def test_cut_at_the_end_stays_below_the_highest_value_observed():
    y = _pageviews()
    hist = Series(y[y.index < END], step=timedelta(hours=1), name="pv")
    ev = [_event("news", START, PEAK, END)]
    week = pd.date_range(END, periods=7 * 24, freq="1h")
    top = float(hist.values.max())
    off_model = EbbtideForecaster(ev, ModelSettings(ebb_ceiling=False)).fit(hist)
    on_model = EbbtideForecaster(ev, ModelSettings()).fit(hist)
    off, on = off_model.predict(week).frame, on_model.predict(week)
    assert off["yhat"].max() > top  # the failure the ceiling is for (measured 2-6.7x)
    assert on.frame["yhat"].max() <= top and on.frame["yhat_upper"].max() <= top
    assert any(n.startswith("ebb ceiling:") for n in on.notes)
    before = pd.date_range(END - timedelta(hours=30), periods=24, freq="1h")  # not the ebb
    np.testing.assert_allclose(on_model.predict(before).frame["yhat"].to_numpy(),
                               off_model.predict(before).frame["yhat"].to_numpy())


@pytest.mark.slow
def test_band_spans_the_best_kernels_grid_neighbours():
    """`band_spans_neighbours`: cut a day after the end, the (1 + t/6 h)^-0.8 tail lies between
    the tau grid's points; the band spans the best kernel's neighbours in its family, so the
    week stays under yhat_upper on >= 90% of hours (measured 99% half-way; the best and each
    family's best alone: 76%), with yhat unchanged."""
    y = _pageviews()
    cut = END + timedelta(days=1)
    hist = Series(y[y.index < cut], step=timedelta(hours=1), name="pv")
    ev = [_event("news", START, PEAK, END)]
    week = y[(y.index >= cut) & (y.index < cut + timedelta(days=7))]
    model = EbbtideForecaster(ev, ModelSettings()).fit(hist)
    on = model.predict(week.index)
    off = EbbtideForecaster(ev, ModelSettings(band_spans_neighbours=False)).fit(hist).predict(week.index)
    # neighbour_reach: 0 collapses the neighbours onto the best kernel (the band without them),
    # 1 reaches them; the upper bound grows with the reach and yhat does not move.
    uppers = {}
    for reach in (0.0, 0.5, 1.0):
        model.settings = replace(model.settings, neighbour_reach=reach)
        uppers[reach] = model.predict(week.index).frame["yhat_upper"].to_numpy()
    np.testing.assert_allclose(uppers[0.0], off.frame["yhat_upper"].to_numpy())
    np.testing.assert_allclose(uppers[0.5], on.frame["yhat_upper"].to_numpy())
    assert (uppers[0.5] >= uppers[0.0] - 1e-9).all() and (uppers[1.0] >= uppers[0.5] - 1e-9).all()
    assert uppers[1.0].sum() > uppers[0.5].sum() > uppers[0.0].sum()
    cov_on = float((week.to_numpy() <= on.frame["yhat_upper"].to_numpy()).mean())
    cov_off = float((week.to_numpy() <= off.frame["yhat_upper"].to_numpy()).mean())
    assert cov_on >= 0.9 and cov_on > cov_off
    np.testing.assert_allclose(on.frame["yhat"].to_numpy(), off.frame["yhat"].to_numpy())
    tau_note = next(n for n in on.notes if n.startswith("ebb tau"))
    best = tau_note.split(": ")[1].split(" ")[0]  # e.g. "8h^-1"
    plausible = tau_note.split("plausible ")[1].split(";")[0].split(", ")
    assert len(plausible) > 2 and best in plausible
