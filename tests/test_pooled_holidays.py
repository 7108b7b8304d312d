"""Pooled public holidays (ModelSettings.pooled_holidays): a holiday the history never showed
borrows the effect of those it did.

Cases:
- `pooled_holiday_days`: GB 2011 by hand: the working-day bank holidays only (New Year's Day
  on Saturday 01-01 and Christmas Day on Sunday 12-25 left out, their Monday/Tuesday
  "(observed)" days kept); an unknown country code is an error that names it;
- `local_date_mask`: on an hourly UTC grid in Europe/London summer time (UTC+1) the local day
  2011-04-29 is 2011-04-28T23:00Z .. 2011-04-29T22:00Z (24 points), nothing else; the same grid
  in UTC marks 00:00Z .. 23:00Z; a naive grid is refused;
- (slow, seeded Prophet) a generated GB office-hours trace where Good Friday, the royal wedding
  and May Day all run at 5% of an ordinary day: cut after Good Friday, the forecast for the
  wedding and May Day (absent from the history) is at most 30% of the ordinary Thursday
  before it with the pooled effect and at least 60% without it; yhat_upper is the same as
  without it (the band spans the forecast without the borrowed effect), yhat is the same off
  the holidays, and the notes name the day it was learnt on and the days it is applied to;
- (slow) cut before any holiday of the country: the effect is unidentified, the forecast is
  the same as with the setting off, and the note says so.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster import events as evf
from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series

UTC = timezone.utc
LONDON = "Europe/London"


def test_pooled_days_are_the_working_day_bank_holidays():
    days = evf.pooled_holiday_days("GB", datetime(2011, 4, 1, tzinfo=UTC), datetime(2011, 5, 10, tzinfo=UTC))
    assert sorted(days) == [date(2011, 1, 3), date(2011, 4, 22), date(2011, 4, 29), date(2011, 5, 2),
                            date(2011, 5, 30), date(2011, 12, 26), date(2011, 12, 27)]
    assert days[date(2011, 4, 22)] == "Good Friday"
    assert days[date(2011, 5, 2)] == "May Day"
    assert date(2011, 1, 1) not in days and date(2011, 12, 25) not in days  # Saturday, Sunday


def test_unknown_country_is_named():
    with pytest.raises(ValueError, match="'XX'"):
        evf.pooled_holiday_days("XX", datetime(2011, 4, 1, tzinfo=UTC), datetime(2011, 5, 1, tzinfo=UTC))


def test_local_date_mask_follows_the_calendar_zone():
    grid = pd.date_range("2011-04-28T20:00:00Z", "2011-04-30T02:00:00Z", freq="h")
    m = evf.local_date_mask(grid, [date(2011, 4, 29)], LONDON)
    on = grid[m > 0]
    assert len(on) == 24
    assert on[0] == pd.Timestamp("2011-04-28T23:00:00Z") and on[-1] == pd.Timestamp("2011-04-29T22:00:00Z")
    on_utc = grid[evf.local_date_mask(grid, [date(2011, 4, 29)], "UTC") > 0]
    assert on_utc[0] == pd.Timestamp("2011-04-29T00:00:00Z") and on_utc[-1] == pd.Timestamp("2011-04-29T23:00:00Z")
    with pytest.raises(ValueError, match="tz-aware"):
        evf.local_date_mask(grid.tz_localize(None), [date(2011, 4, 29)], LONDON)


# The generated trace: office hours (08-18 local) at 100 an hour, 10 at night, weekends x0.3,
# and every GB working-day bank holiday at 5% all day; lognormal noise sd 0.1, seeded.
HOLIDAYS_AT = {date(2011, 4, 22), date(2011, 4, 29), date(2011, 5, 2)}


def _office_trace(seed: int = 3) -> Series:
    idx = pd.date_range("2011-03-10T00:00:00Z", "2011-05-06T23:00:00Z", freq="h")
    local = idx.tz_convert(LONDON)
    hour, dow = np.asarray(local.hour), np.asarray(local.day_of_week)
    y = np.where((hour >= 8) & (hour < 18), 100.0, 10.0) * np.where(dow >= 5, 0.3, 1.0)
    y = y * np.where(np.isin(np.asarray(local.date), list(HOLIDAYS_AT)), 0.05, 1.0)
    y = y * np.exp(np.random.default_rng(seed).normal(0.0, 0.1, len(idx)))
    return Series(pd.Series(np.round(y), index=idx), pd.Timedelta(hours=1).to_pytimedelta(), name="office")


def _fit(series: Series, cut: str, pooled: bool):
    history = series.before(pd.Timestamp(cut))
    settings = ModelSettings(calendar_tz=LONDON, country_holidays="GB", pooled_holidays=pooled)
    model = EbbtideForecaster((), settings).fit(history)
    index = series.future_index(pd.Timedelta(days=7).to_pytimedelta(), pd.Timestamp(cut))
    return model.predict(index)


def _daily_mean(fc, day: date, column: str = "yhat") -> float:
    f = fc.frame[column]
    return float(f[np.asarray(f.index.tz_convert(LONDON).date) == day].mean())


@pytest.mark.slow
def test_a_holiday_absent_from_the_history_is_forecast_low_after_others_were_seen_low():
    series = _office_trace()
    cut = "2011-04-26T23:00:00Z"  # Wednesday 04-27 00:00 in London, Good Friday in the history
    pooled, plain = _fit(series, cut, True), _fit(series, cut, False)
    thursday = _daily_mean(pooled, date(2011, 4, 28))
    for day in (date(2011, 4, 29), date(2011, 5, 2)):
        assert _daily_mean(pooled, day) <= 0.3 * thursday
        assert _daily_mean(plain, day) >= 0.6 * _daily_mean(plain, date(2011, 4, 28))
    # The borrowed effect moves yhat on those days only; the band still spans the plain forecast.
    on = np.isin(np.asarray(pooled.frame.index.tz_convert(LONDON).date), [date(2011, 4, 29), date(2011, 5, 2)])
    np.testing.assert_allclose(pooled.frame["yhat"].to_numpy()[~on], plain.frame["yhat"].to_numpy()[~on])
    np.testing.assert_allclose(pooled.frame["yhat_upper"].to_numpy(), plain.frame["yhat_upper"].to_numpy())
    note = next(n for n in pooled.notes if n.startswith("pooled holiday effect"))
    assert "2011-04-22 Good Friday" in note
    assert "applied to 2011-04-29 Wedding of William and Catherine, 2011-05-02 May Day" in note


@pytest.mark.slow
def test_no_holiday_in_the_history_leaves_the_forecast_alone():
    series = _office_trace()
    cut = "2011-04-19T23:00:00Z"  # Good Friday 04-22 is ahead; no GB holiday since 01-03
    pooled, plain = _fit(series, cut, True), _fit(series, cut, False)
    np.testing.assert_allclose(pooled.frame.to_numpy(), plain.frame.to_numpy())
    assert any("unidentified" in n for n in pooled.notes)
