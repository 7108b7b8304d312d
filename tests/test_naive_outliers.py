"""The seasonal naive copies the history the fit used: outliers and outages left out
(ModelSettings.naive_skips_outliers).

With no event around, Ebbtide forecasts the average of Prophet and the weekly naive
(tests/test_no_event_average.py). Prophet's fit leaves out the short runs the outlier screen
flags and the collection outages (runs of zeros), but the naive copied the raw history: a
burst of a few hours a week ago came back, at half its size, a week later (AAPL 5-minute cut
2015-04-20: the 1-3 h burst of 04-14 came back on 04-21 21:00-24:00Z at 1276 mentions per 5
minutes on average, 113 observed; WAPE over three days 1.03 -> 0.62 with the rule). Now those points are missing in what the
naive copies, and SeasonalNaive fills a missing point from the season before.

Cases (slow, seeded Prophet; five weeks of generated hourly traffic with no event, a daily
level that wanders, as in tests/test_no_event_average.py, so the average is forecast):
- a 3-hour burst at 20x in the last week: with the rule, at the hours a week after it the
  forecast is half Prophet's plus half the value TWO weeks before; everywhere else half
  Prophet's plus half the value a week before; without it, half the burst is forecast;
- a 10-hour collection outage (zeros where the same hours a day and a week away are not) in
  the last week: the same, where the old naive forecast half of nothing;
- a trace with neither: the forecast is the same with the rule on and off.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series
from support.traces import wandering_week

HOURS = 168  # the forecast week: every copy of the last week


def _fit(history: Series, **settings) -> tuple[EbbtideForecaster, pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """The fit, the next HOURS hours, its forecast there and the same fit's Prophet half."""
    m = EbbtideForecaster((), ModelSettings(seed=0, **settings)).fit(history)
    index = pd.date_range(history.end + timedelta(hours=1), periods=HOURS, freq="h")
    both = m.predict(index).yhat.to_numpy()
    mode, recent = m._mode, m._recent
    m._mode, m._recent = "prophet", None  # the Prophet half (the recent level acts on Prophet alone)
    prophet = m.predict(index).yhat.to_numpy()
    m._mode, m._recent = mode, recent
    return m, index, both, prophet


def _check_skipped(history: Series, times: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Fit with the rule on and off; check both forecast the average, and that the rule's naive
    copies two weeks back at the week-later copies of `times`, one week back elsewhere.
    Returns (on, off) forecasts at those copies and the typical level there."""
    on, index, both, prophet = _fit(history)
    assert any("-> average of prophet and seasonal naive (168h)" in n for n in on.notes), on.notes
    assert any(n.startswith(f"seasonal naive: {len(times)} history points the fit left out") for n in on.notes), \
        on.notes
    copies = np.isin(index, times + timedelta(days=7))
    assert copies.sum() == len(times)
    y = history.values
    week, fortnight = (y.reindex(index - timedelta(days=d)).to_numpy() for d in (7, 14))
    expected = np.where(copies, fortnight, week)
    np.testing.assert_allclose(both, 0.5 * (prophet + expected), rtol=1e-9)

    # Without the rule the raw burst (or outage) day departs from the week before it, and
    # `no_event_average_departure` alone would drop the average: switched off here to show what
    # the naive half copied.
    off, index_off, both_off, prophet_off = _fit(history, naive_skips_outliers=False, no_event_average_departure=0.0)
    assert any("-> average of prophet and seasonal naive (168h)" in n for n in off.notes), off.notes
    np.testing.assert_allclose(both_off, 0.5 * (prophet_off + week), rtol=1e-9)
    return both[copies], both_off[copies], fortnight[copies]


@pytest.mark.slow
def test_a_burst_a_week_ago_is_not_forecast_again():
    start = pd.Timestamp("2024-04-29T14:00:00Z")  # Monday afternoon of the last week
    burst = pd.date_range(start, periods=3, freq="h")

    def edit(v: pd.Series) -> None:
        v[burst] *= 20.0

    history = wandering_week(edit)
    on, off, typical = _check_skipped(history, burst)
    assert np.all(on < 1.5 * typical), (on, typical)
    assert np.all(off > 5.0 * typical), (off, typical)  # half of a 20x burst


@pytest.mark.slow
def test_an_outage_a_week_ago_is_not_forecast_again():
    outage = pd.date_range("2024-04-28T08:00:00Z", periods=10, freq="h")  # Sunday, 10 h of zeros

    def edit(v: pd.Series) -> None:
        v[outage] = 0.0

    history = wandering_week(edit)
    on, off, typical = _check_skipped(history, outage)
    assert np.all(on > 0.7 * typical), (on, typical)
    assert np.all(off < 0.7 * on), (off, on)  # half of nothing on the naive's side


@pytest.mark.slow
def test_without_outliers_the_rule_changes_nothing():
    history = wandering_week()
    m_on, _, on, _ = _fit(history)
    m_off, _, off, _ = _fit(history, naive_skips_outliers=False)
    assert not any(n.startswith("seasonal naive:") for n in m_on.notes)
    np.testing.assert_array_equal(on, off)
    index = pd.date_range(history.end + timedelta(hours=1), periods=HOURS, freq="h")
    np.testing.assert_array_equal(m_on.predict(index).yhat_upper.to_numpy(), m_off.predict(index).yhat_upper.to_numpy())
