"""The seasonal naive inside Ebbtide copies the same LOCAL time a season back (calendar_tz).

Before, it copied the value 168 hours back in UTC. In the week after a daylight-saving change
that is an hour off the audience's clock: Melbourne's Bourke Street, cut 2015-10-05 (the day
after the clocks went forward, the holdout chose the seasonal naive), forecast the morning
ramp an hour late; coverage of yhat_upper 0.82, 1.25x the best baseline's WAPE. With the
local clock: 0.90 and 0.82x (bench/README.md, "The seasonal naive reads the local clock").

Cases, by hand:
- `seasonal_sources` in America/New_York: a week before 09:00 local is 09:00 local, 169 h
  back across the autumn change and 167 h across the spring one; without a zone (or in UTC)
  exactly 168 h; a local time skipped in spring moves forward to 03:00, one repeated in autumn
  is its first occurrence; with `last`, a source a clock change put after the history goes one
  season further back;
- `SeasonalNaive(tz=...)` on a series that is a function of the local hour forecasts it exactly
  across the autumn change, where the step-counting naive (the baseline) is an hour off;
- a daily series: a source an hour off the grid is read at the nearest day;
- Ebbtide's `_naive_off_days` and `_naive_forecast` read the local clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from forecaster.baselines import SeasonalNaive, nearest_on_grid, seasonal_sources
from forecaster.model import EbbtideForecaster, ModelSettings, _naive_forecast
from forecaster.series import Series
from policies.events import Event

NY = "America/New_York"
WEEK = timedelta(days=7)


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def test_a_week_back_is_the_same_local_time_across_clock_changes():
    autumn = pd.DatetimeIndex([_ts("2024-11-04T14:00:00Z")])  # Mon 09:00 EST; 10-28 09:00 EDT = 13:00Z
    assert seasonal_sources(autumn, WEEK, NY)[0] == _ts("2024-10-28T13:00:00Z")
    spring = pd.DatetimeIndex([_ts("2024-03-11T13:00:00Z")])  # Mon 09:00 EDT; 03-04 09:00 EST = 14:00Z
    assert seasonal_sources(spring, WEEK, NY)[0] == _ts("2024-03-04T14:00:00Z")
    for tz in (None, "UTC"):
        assert seasonal_sources(autumn, WEEK, tz)[0] == _ts("2024-10-28T14:00:00Z")
        assert seasonal_sources(spring, WEEK, tz)[0] == _ts("2024-03-04T13:00:00Z")


def test_skipped_and_repeated_local_times():
    skipped = pd.DatetimeIndex([_ts("2024-03-17T06:30:00Z")])  # 02:30 EDT; 03-10 02:30 never happened
    assert seasonal_sources(skipped, WEEK, NY)[0] == _ts("2024-03-10T07:00:00Z")  # 03:00 EDT
    repeated = pd.DatetimeIndex([_ts("2024-11-10T06:30:00Z")])  # 01:30 EST; 11-03 01:30 happened twice
    assert seasonal_sources(repeated, WEEK, NY)[0] == _ts("2024-11-03T05:30:00Z")  # the first, EDT


def test_with_last_the_source_is_never_after_the_history():
    last = _ts("2024-03-08T12:00:00Z")  # Fri 07:00 EST
    idx = pd.DatetimeIndex([last + timedelta(hours=1), last + WEEK, last + WEEK + timedelta(hours=2)])
    src = seasonal_sources(idx, WEEK, NY, last)
    assert (src <= last).all()
    # last + 1 h: 08:00 EST a week back; last + 168 h is 08:00 EDT on 03-15, whose 08:00 a week
    # back (13:00Z) is after the history: two weeks back, 03-01 08:00 EST.
    assert list(src) == [_ts("2024-03-01T13:00:00Z"), _ts("2024-03-01T13:00:00Z"), _ts("2024-03-01T15:00:00Z")]
    assert list(seasonal_sources(idx, WEEK, None, last)) == [
        _ts("2024-03-01T13:00:00Z"), _ts("2024-03-08T12:00:00Z"), _ts("2024-03-01T14:00:00Z")]


def _local_hour_series(start: str, end: str, tz: str, step: str = "1h") -> Series:
    idx = pd.date_range(start, end, freq=step, tz="UTC")
    return Series(pd.Series(100.0 + 10.0 * idx.tz_convert(tz).hour, index=idx), pd.Timedelta(step).to_pytimedelta(),
                  name="local")


def test_the_local_naive_forecasts_a_local_pattern_exactly_across_the_change():
    hist = _local_hour_series("2024-10-14T00:00:00Z", "2024-11-04T05:00:00Z", NY)  # DST ended 11-03
    idx = pd.date_range("2024-11-04T06:00:00Z", periods=48, freq="h")
    truth = 100.0 + 10.0 * idx.tz_convert(NY).hour.to_numpy()
    local = SeasonalNaive(WEEK, tz=NY).fit(hist).predict(idx).yhat.to_numpy()
    steps = SeasonalNaive(WEEK).fit(hist).predict(idx).yhat.to_numpy()
    assert np.array_equal(local, truth)
    # The step-counting naive copies 168 h back: an hour later on the local clock (EDT).
    assert np.array_equal(steps, 100.0 + 10.0 * ((idx.tz_convert(NY).hour.to_numpy() + 1) % 24))


def test_a_daily_series_reads_the_nearest_day():
    hist = Series(pd.Series(np.arange(40.0), index=pd.date_range("2024-09-20", periods=40, freq="D", tz="UTC")),
                  timedelta(days=1), name="daily")
    idx = pd.date_range(hist.end + timedelta(days=1), periods=14, freq="D")
    local = SeasonalNaive(WEEK, tz="Europe/Berlin").fit(hist).predict(idx).yhat.to_numpy()
    steps = SeasonalNaive(WEEK).fit(hist).predict(idx).yhat.to_numpy()
    assert np.array_equal(local, steps)  # 10-27's change moves sources an hour, not a day
    src = pd.DatetimeIndex([_ts("2024-10-20T23:00:00Z"), _ts("2024-10-21T01:00:00Z")])
    assert list(nearest_on_grid(src, hist.end, timedelta(days=1))) == [_ts("2024-10-21T00:00:00Z")] * 2


def test_ebbtide_reads_the_local_clock():
    hist = _local_hour_series("2024-10-14T00:00:00Z", "2024-11-04T05:00:00Z", NY)
    idx = pd.date_range("2024-11-04T06:00:00Z", periods=24, freq="h")
    ny = _naive_forecast(hist, idx, WEEK, NY)
    assert np.array_equal(ny, 100.0 + 10.0 * idx.tz_convert(NY).hour.to_numpy())

    # The holiday rule: Sun 2024-10-27 is a holiday (local), so the naive gives way on the
    # points that copy it: all 25 local hours of Sun 11-03. 168 h back in UTC, the last of them
    # (23:00 EST) would copy Mon 10-28 00:00 EDT and be left to the naive.
    from forecaster import events as evf
    hol = (Event(name="h", kind="holiday", start="2024-10-27T00:00:00-04:00", peak="2024-10-27T12:00:00-04:00",
                 end="2024-10-27T23:59:00-04:00"),)
    m = EbbtideForecaster(hol, ModelSettings(calendar_tz=NY))
    m._step = timedelta(hours=1)
    m._set_holidays(evf.holidays_frame(hol, datetime(2024, 10, 1, tzinfo=timezone.utc),
                                       datetime(2024, 11, 20, tzinfo=timezone.utc), tz=NY))
    m._last = hist.end
    m._naive = SeasonalNaive(WEEK, tz=NY)
    days = pd.date_range("2024-11-03T04:00:00Z", periods=49, freq="h")  # Sun 11-03 00:00 EDT on
    off = days[m._naive_off_days(days)]
    assert sorted(set(off.tz_convert(NY).date)) == [pd.Timestamp("2024-11-03").date()]
    assert len(off) == 25
