"""Holdout model choices scored on ordinary days only (ModelSettings.holdout_ordinary_days).

Cases:
- the scoring rule (`_scored_points`) by hand on an hourly grid: 48 points of which 24 on a
  holiday keep the 24 ordinary ones (a day, and half); 47 points of which 24 on a holiday (23
  ordinary: less than a day) and 72 points of which 40 on holidays (32 ordinary: less than half)
  score all of them; only the points of the given base are ever scored;
- holiday dates (`_ordinary_points`) by hand: a two-day holiday event (local 2024-03-04 00:00
  .. 03-06 00:00 in Europe/Berlin) marks local 03-04 and 03-05, i.e. 2024-03-03T23:00Z ..
  2024-03-05T22:00Z (48 hourly points) and nothing else; with the setting off nothing is marked;
- where the naive gives way to Prophet (`_naive_off_days`, `naive_skips_holidays`) by hand:
  hourly history ending 2024-04-30T23:00Z, holidays (UTC) on Mondays 04-29 and 05-06, a weekly
  naive over two weeks ahead: exactly the 48 points of 05-06 (a holiday, and its source 04-29
  is one) and 05-13 (its source two weeks back, 04-29, is one); none with the setting off;
- (slow, seeded Prophet) a generated hourly trace (smooth daily and weekly shape, 15%
  multiplicative noise, no sale) with two one-day "closed" holidays (5% of normal) on the
  Mondays a week apart, the second one inside the holdout: the holdout refit never saw the
  second holiday's name, so Prophet misses that day while the seasonal naive copies the first
  closed Monday. Off: the holdout picks the naive or the average; on: ordinary days pick
  Prophet, the note names the day left out, and the forecast week (no holiday) has a lower WAPE
  than with the setting off. Both with `no_event_average` off, so that the holdout's lowest
  WAPE decides, and `naive_skips_holidays` off: with it on, the naive the holdout scores gives
  way to Prophet on holidays, so a holiday inside the holdout cannot sway this choice anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series
from policies.events import Event
from support.traces import ordinary_hourly

UTC = timezone.utc


def _hourly_model(settings: ModelSettings | None = None, events=()) -> EbbtideForecaster:
    """A forecaster with only what the holdout helpers read set (no fit: they are pure)."""
    m = EbbtideForecaster(events, settings or ModelSettings())
    m._step = timedelta(hours=1)
    return m


def test_scoring_rule_keeps_ordinary_days_only_when_enough_remain():
    m = _hourly_model()
    base = np.ones(48, dtype=bool)
    ordinary = np.r_[np.zeros(24, dtype=bool), np.ones(24, dtype=bool)]
    assert (m._scored_points(base, ordinary) == ordinary).all()

    base47 = np.ones(47, dtype=bool)
    ordinary47 = np.r_[np.zeros(24, dtype=bool), np.ones(23, dtype=bool)]  # 23 h < a day
    assert m._scored_points(base47, ordinary47).all()

    base72 = np.ones(72, dtype=bool)
    ordinary72 = np.r_[np.zeros(40, dtype=bool), np.ones(32, dtype=bool)]  # 32 < 72 / 2
    assert m._scored_points(base72, ordinary72).all()

    # Only base points are scored: 24 ordinary points outside the base are never added.
    base_part = np.r_[np.ones(48, dtype=bool), np.zeros(24, dtype=bool)]
    ordinary_part = np.r_[np.zeros(24, dtype=bool), np.ones(48, dtype=bool)]
    scored = m._scored_points(base_part, ordinary_part)
    assert scored.sum() == 24 and scored[24:48].all()


def test_holiday_event_dates_follow_the_calendar_zone():
    berlin = "Europe/Berlin"
    closed = Event(name="closed", kind="holiday", start="2024-03-04T00:00:00+01:00",
                   peak="2024-03-04T12:00:00+01:00", end="2024-03-06T00:00:00+01:00")
    from forecaster import events as evf

    m = _hourly_model(ModelSettings(calendar_tz=berlin), (closed,))
    m._set_holidays(evf.holidays_frame((closed,), datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 10, tzinfo=UTC),
                                       tz=berlin))
    grid = pd.date_range("2024-03-03T00:00:00Z", "2024-03-07T00:00:00Z", freq="h")
    off = grid[~m._ordinary_points(grid)]
    assert len(off) == 48
    assert off[0] == pd.Timestamp("2024-03-03T23:00:00Z") and off[-1] == pd.Timestamp("2024-03-05T22:00:00Z")

    m_off = _hourly_model(ModelSettings(calendar_tz=berlin, holdout_ordinary_days=False), (closed,))
    m_off._set_holidays(m._holidays)
    assert m_off._ordinary_points(grid).all()


def _closed_mondays_trace(seed: int = 3) -> tuple[Series, tuple[Event, ...], pd.Timestamp]:
    """Five weeks of history and one forecast week, hourly UTC; holidays (5% of normal, one day
    each, different names) on Mondays 2024-04-22 and 2024-04-29; the cut is Wed 2024-05-01
    00:00Z, so the second holiday lies inside the 7-day holdout and the first one a week before."""
    idx, y = ordinary_hourly("2024-03-27T00:00:00Z", "2024-05-08T00:00:00Z", seed, 0.15)
    events = []
    for i, day in enumerate(("2024-04-22", "2024-04-29")):
        on = np.asarray(idx.normalize() == pd.Timestamp(day, tz="UTC"))
        y[on] *= 0.05
        events.append(Event(name=f"closed-{i}", kind="holiday", start=f"{day}T00:00:00Z",
                            peak=f"{day}T12:00:00Z", end=f"{day}T23:59:00Z"))
    series = Series(pd.Series(y, index=idx), step=timedelta(hours=1), name="closed-mondays")
    return series, tuple(events), pd.Timestamp("2024-05-01T00:00:00Z")


def _wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.abs(actual - forecast).sum() / np.abs(actual).sum())


@pytest.mark.slow
def test_a_holiday_inside_the_holdout_does_not_decide_the_model():
    series, events, cut = _closed_mondays_trace()
    history = series.before(cut)
    index = series.future_index(timedelta(days=7), cut)
    actual = series.values.reindex(index).to_numpy()

    base = dict(no_event_average=False, naive_skips_holidays=False, seed=0)
    off = EbbtideForecaster(events, ModelSettings(holdout_ordinary_days=False, **base)).fit(history)
    on = EbbtideForecaster(events, ModelSettings(**base)).fit(history)
    choice_off = next(n for n in off.notes if n.startswith("holdout WAPE:"))
    choice_on = next(n for n in on.notes if n.startswith("holdout WAPE:"))
    assert not choice_off.endswith("-> prophet"), choice_off
    assert choice_on.endswith("-> prophet"), choice_on
    assert any("left out 2024-04-29 closed-1" in n for n in on.notes), on.notes
    assert not any("left out" in n for n in off.notes)
    assert _wape(actual, on.predict(index).yhat.to_numpy()) < _wape(actual, off.predict(index).yhat.to_numpy())


def test_naive_gives_way_on_holidays_and_on_copies_of_holidays():
    from forecaster import events as evf
    from forecaster.baselines import SeasonalNaive

    days = ("2024-04-29", "2024-05-06")
    events = tuple(Event(name=f"h{i}", kind="holiday", start=f"{d}T00:00:00Z", peak=f"{d}T12:00:00Z",
                         end=f"{d}T23:59:00Z") for i, d in enumerate(days))
    for skips in (True, False):
        m = _hourly_model(ModelSettings(naive_skips_holidays=skips), events)
        m._set_holidays(evf.holidays_frame(events, datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 20, tzinfo=UTC)))
        m._last = pd.Timestamp("2024-04-30T23:00:00Z")
        m._naive = SeasonalNaive(timedelta(days=7))
        idx = pd.date_range("2024-05-01T00:00:00Z", periods=14 * 24, freq="h")
        off = idx[m._naive_off_days(idx)]
        if not skips:
            assert len(off) == 0
            continue
        assert len(off) == 48
        assert sorted(set(off.date)) == [pd.Timestamp("2024-05-06").date(), pd.Timestamp("2024-05-13").date()]
