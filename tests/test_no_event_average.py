"""With no event around, the average of Prophet and the seasonal naive, unless one of the two
beats it on every ordinary day of the holdout (ModelSettings.no_event_average).

One week of holdout chose among Prophet, the naive and their average by its lowest WAPE, and
the choice followed that week's luck: over 58 swept ordinary weeks of two real traces the
choice was 0.897x the best baseline (geometric mean), the average always 0.879x
(bench/README.md, "No event around: the average").

Cases, by hand (`single_beats_average_daily`, pure):
- two days; a forecast exact on both days and one 50% high on both: the exact one beats the
  average (25% high) on each day and is chosen alone;
- each of the two wins one day: the average, and the note counts the wins (1 and 1 of 2);
- one forecast 20% low and the other 20% high on every point: the average is exact, so
  neither wins a day;
- a single day: the average (too little to choose on);
- a day with no demand at all (WAPE undefined): no one wins it, so the average stays;
- (slow, seeded Prophet) five weeks of generated hourly traffic with no event and a level that
  wanders from day to day: each of the two wins some days, the average is forecast, and its
  yhat is half Prophet's plus half the value a week before; with the setting off the lowest
  holdout WAPE (one of the two alone) decides, as before;
- (slow, seeded Prophet) a steady level under 15% hourly noise: the naive copies a week of
  noise, Prophet beats the average on all 7 days and is used alone;
- (slow, seeded Prophet) nine days of the wandering trace (under a week before the holdout):
  the naive is the daily one, and the lowest holdout WAPE decides with the setting on too;
- (slow, seeded Prophet) twelve days (nine before the holdout): the weekly naive, chosen or
  not by the lowest holdout WAPE (under two weeks of training, `no_event_average_min_training`);
  with the rule before (two weeks before the holdout for a week-back copy) the daily naive,
  whose holdout WAPE is far higher, and the week ahead forecast worse
  (`weekly_naive_min_training`).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings, single_beats_average_daily
from forecaster.series import Series
from support.traces import ordinary_hourly

D1, D2 = "2024-05-01", "2024-05-02"


def _days(n_per_day: int, *days: str) -> np.ndarray:
    return np.array([d for d in days for _ in range(n_per_day)], dtype=object)


def test_a_forecast_better_on_every_day_is_chosen_alone():
    y = np.array([100.0, 200.0, 100.0, 200.0])
    exact, high = y.copy(), 1.5 * y
    mode, note = single_beats_average_daily(y, {"prophet": high, "naive": exact}, _days(2, D1, D2))
    assert mode == "naive"
    assert "each of the 2 days" in note
    mode, _ = single_beats_average_daily(y, {"prophet": exact, "naive": high}, _days(2, D1, D2))
    assert mode == "prophet"


def test_split_wins_keep_the_average_and_are_counted():
    y = np.array([100.0, 100.0, 100.0, 100.0])
    a = np.array([100.0, 100.0, 150.0, 150.0])  # exact on day 1, 50% high on day 2
    b = np.array([150.0, 150.0, 100.0, 100.0])  # the other way round
    mode, note = single_beats_average_daily(y, {"prophet": a, "naive": b}, _days(2, D1, D2))
    assert mode == "blend"
    assert "prophet on 1, naive on 1 of 2" in note


def test_errors_that_cancel_make_the_average_exact():
    y = np.array([100.0, 300.0, 50.0, 80.0])
    mode, note = single_beats_average_daily(y, {"prophet": 0.8 * y, "naive": 1.2 * y}, _days(2, D1, D2))
    assert mode == "blend"
    assert "prophet on 0, naive on 0 of 2" in note


def test_one_day_is_too_little_to_choose_on():
    y = np.array([100.0, 200.0])
    mode, note = single_beats_average_daily(y, {"prophet": y.copy(), "naive": 2 * y}, _days(2, D1))
    assert mode == "blend"
    assert "under two days" in note


def test_a_day_without_demand_is_won_by_no_one():
    y = np.array([100.0, 200.0, 0.0, 0.0])
    exact, high = y.copy(), 1.5 * y + np.array([0.0, 0.0, 5.0, 5.0])
    mode, note = single_beats_average_daily(y, {"prophet": exact, "naive": high}, _days(2, D1, D2))
    assert mode == "blend"
    assert "prophet on 1, naive on 0 of 2" in note


def _ordinary_trace(seed: int, level_walk: float, noise: float) -> Series:
    """Five weeks of hourly traffic, no event: a smooth daily and weekly shape, times a daily
    level that random-walks (`level_walk`, sd in log per day), times hourly noise."""
    idx, y = ordinary_hourly("2024-03-27T00:00:00Z", "2024-05-01T00:00:00Z", seed, noise, level_walk)
    return Series(pd.Series(y, index=idx), step=timedelta(hours=1), name="ordinary")


def _choice(forecaster: EbbtideForecaster) -> str:
    return next(n for n in forecaster.notes if n.startswith("holdout WAPE:"))


def _lowest(note: str) -> str:
    scores = dict(part.rsplit(" ", 1) for part in note.split(": ", 1)[1].split(" -> ")[0].split(", "))
    return min(scores, key=lambda k: (float(scores[k]), k != "prophet"))


@pytest.mark.slow
def test_the_fit_forecasts_the_average_unless_one_wins_every_day():
    # A level that wanders from day to day (sd 0.05 a day) and little hourly noise: Prophet
    # and the naive each win some days of the holdout, so the average is forecast, although
    # one of them has the lowest holdout WAPE (the choice with the setting off).
    history = _ordinary_trace(seed=2, level_walk=0.05, noise=0.05)
    index = pd.date_range(history.end + timedelta(hours=1), periods=48, freq="h")
    on = EbbtideForecaster((), ModelSettings(seed=0)).fit(history)
    note = _choice(on)
    assert "-> average of prophet and seasonal naive (168h) (the average unless one beats it" in note, note
    both = on.predict(index).yhat.to_numpy()
    on._mode, on._recent = "prophet", None  # the same fit's Prophet half (the recent level acts on Prophet alone)
    prophet = on.predict(index).yhat.to_numpy()
    week_before = history.values.reindex(index - timedelta(days=7)).to_numpy()
    np.testing.assert_allclose(both, 0.5 * (prophet + week_before), rtol=1e-9)

    off = EbbtideForecaster((), ModelSettings(seed=0, no_event_average=False)).fit(history)
    note_off = _choice(off)
    assert _lowest(note_off) != "blend", note_off
    expected = {"prophet": "-> prophet", "naive": "-> seasonal naive (168h)"}[_lowest(note_off)]
    assert note_off.endswith(expected), note_off


@pytest.mark.slow
def test_a_model_that_beats_the_average_every_day_is_used_alone():
    # A steady level under 15% hourly noise: the naive copies a week of noise, Prophet smooths
    # it, and Prophet beats the average on each of the 7 days: Prophet alone.
    history = _ordinary_trace(seed=1, level_walk=0.0, noise=0.15)
    on = EbbtideForecaster((), ModelSettings(seed=0)).fit(history)
    note = _choice(on)
    assert note.endswith("-> prophet (it beat the average on each of the 7 days)"), note
    assert not any(n.startswith("interval of the") for n in on.notes), on.notes


@pytest.mark.slow
def test_with_the_daily_naive_the_lowest_holdout_wape_decides():
    # 9 days: a quarter held out leaves 6.75 days before the holdout, under a week
    history = _ordinary_trace(seed=2, level_walk=0.05, noise=0.05)
    history = history.before(history.start + timedelta(days=9))
    note = _choice(EbbtideForecaster((), ModelSettings(seed=0)).fit(history))
    assert "seasonal naive (24h)" in note and "(the average unless" not in note, note
    expected = {"prophet": "-> prophet", "naive": "-> seasonal naive (24h)",
                "blend": "-> average of prophet and seasonal naive (24h)"}[_lowest(note)]
    assert note.endswith(expected), note


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_one_week_before_the_holdout_is_enough_for_the_weekly_naive(seed):
    # 12 days: 9 before the holdout. The weekly naive copies last week's Saturday onto this
    # one; the daily naive (the rule before, `weekly_naive_min_training` 14 days) copied Friday.
    full = _ordinary_trace(seed=seed, level_walk=0.05, noise=0.05)
    history = full.before(full.start + timedelta(days=12))
    week = full.values[(full.index > history.end) & (full.index <= history.end + timedelta(days=7))]
    wape, naive_wape, notes = {}, {}, {}
    for days in (7, 14):  # 7: the default
        f = EbbtideForecaster((), ModelSettings(seed=0, weekly_naive_min_training=timedelta(days=days))).fit(history)
        notes[days] = note = _choice(f)
        naive_wape[days] = float(note.split("naive ")[1].split(",")[0])
        yhat = f.predict(week.index).yhat.to_numpy()
        wape[days] = float(np.abs(yhat - week.to_numpy()).sum() / week.sum())
    # under two weeks of training the lowest holdout WAPE decides (`no_event_average_min_training`)
    assert "seasonal naive (168h)" in notes[7] and "(the average unless" not in notes[7], notes[7]
    expected = {"prophet": "-> prophet", "naive": "-> seasonal naive (168h)",
                "blend": "-> average of prophet and seasonal naive (168h)"}[_lowest(notes[7])]
    assert notes[7].endswith(expected), notes[7]
    assert "seasonal naive (24h)" in notes[14] or notes[14].endswith("-> prophet"), notes[14]
    from_one_week = EbbtideForecaster((), ModelSettings(seed=0, no_event_average_min_training=timedelta(0)))
    assert "seasonal naive (168h) (the average unless one beats it" in _choice(from_one_week.fit(history))
    assert naive_wape[7] < 0.6 * naive_wape[14]  # the holdout sees the weekly cycle copied
    assert wape[7] < wape[14]                    # and so does the week ahead


def test_a_week_back_copy_needs_a_week_of_training():
    with pytest.raises(ValueError, match="weekly_naive_min_training must be at least 7 days"):
        ModelSettings(weekly_naive_min_training=timedelta(days=6))
    with pytest.raises(ValueError, match="no_event_average_min_training must be >= 0"):
        ModelSettings(no_event_average_min_training=timedelta(days=-1))


@pytest.mark.slow
def test_the_average_band_also_spans_prophets():
    # The wandering trace, where the average is forecast: its band is the wider of its own and
    # Prophet's, point by point (`mode_band_spans_prophet`); yhat does not move.
    from dataclasses import replace

    history = _ordinary_trace(seed=2, level_walk=0.05, noise=0.05)
    index = pd.date_range(history.end + timedelta(hours=1), periods=7 * 24, freq="h")
    f = EbbtideForecaster((), ModelSettings(seed=0)).fit(history)
    assert any(n.startswith("interval of the blend forecast") and n.endswith("(`mode_band_spans_prophet`)")
               for n in f.notes), f.notes
    on = f.predict(index).frame
    f.settings = replace(f.settings, mode_band_spans_prophet=False)
    own = f.predict(index).frame
    f._mode, f._recent = "prophet", None  # the same fit's Prophet (the recent level acts on Prophet alone)
    prophet = f.predict(index).frame
    np.testing.assert_allclose(on.yhat, own.yhat, rtol=1e-12)
    np.testing.assert_allclose(on.yhat_upper, np.maximum(own.yhat_upper, prophet.yhat_upper), rtol=1e-9)
    np.testing.assert_allclose(on.yhat_lower, np.minimum(own.yhat_lower, prophet.yhat_lower), rtol=1e-9)
    assert (on.yhat_upper > own.yhat_upper * 1.001).any()  # Prophet's band is wider somewhere
