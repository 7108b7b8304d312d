"""Exponential or power law, when a day of tail cannot tell (`ModelSettings.ebb_family_hedge`,
forecaster.model).

Why: over the first day after an event an exponential ebb (tau 16 h) and a power law
(1 + t/8 h)^-1 differ by less than the noise, and over the week by 2-10x. On tests/test_model.py's
series (an exponential ebb) cut a day after the end, the power law scored 0.085 against the
exponential's 0.092 and, chosen alone, forecast the week at 1.5-1.8x the actual demand. When
the other family's best kernel is within noise of the best one, the forecast is the mean of the
two in z and the band spans both.

Cases (slow, seeded Prophet fits; the setting off is measured in the same test):
- tests/test_model.py's series, seeds 1 and 3, cut a day after the end: off, a power law is the
  forecast and the week's WAPE is over 0.4; on, the hedge is noted, the WAPE is at most 0.6x
  the off one, yhat lies between the two fits' forecasts, and the band covers the week
- a power-law ebb (tests/test_longtail.py's trace) cut a day after the end: the power law is
  chosen, the 16 h exponential is within noise of it, the hedge is noted and the week's WAPE is
  below 0.75x the setting-off WAPE (measured 0.047 vs 0.102). Cut three days after the end the
  same trace shows the hedge's cost: 0.106 against 0.041 (8 h exponential within noise of
  4 h^-1); docs/forecasting.md says so.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import test_model as tm

from forecaster.model import EbbtideForecaster, ModelSettings

pytestmark = pytest.mark.slow


def _hedged(f) -> bool:
    return any("`ebb_family_hedge`" in n for n in f.notes)


@pytest.mark.parametrize("seed", [1, 3])
def test_a_day_of_exponential_tail_is_not_forecast_as_a_power_law_alone(seed):
    hist, fut, actual = tm.day_after_end(seed)
    off_m = EbbtideForecaster([tm.SALE], ModelSettings(ebb_family_hedge=False)).fit(hist)
    off = off_m.predict(fut)
    assert off_m.chosen_ebb[tm.SALE.name].alpha > 0  # the trap: a power law alone
    on_m = EbbtideForecaster([tm.SALE], ModelSettings()).fit(hist)
    on = on_m.predict(fut)
    assert _hedged(on) and not _hedged(off)
    w_off, w_on = tm.wape(actual, off.yhat.to_numpy()), tm.wape(actual, on.yhat.to_numpy())
    assert w_off > 0.4
    assert w_on <= 0.6 * w_off
    exp_alone = EbbtideForecaster([tm.SALE], ModelSettings(ebb_power_alphas=())).fit(hist).predict(fut)
    lo = np.minimum(off.yhat.to_numpy(), exp_alone.yhat.to_numpy())
    hi = np.maximum(off.yhat.to_numpy(), exp_alone.yhat.to_numpy())
    y = on.yhat.to_numpy()
    assert np.all(y >= 0.97 * lo) and np.all(y <= 1.03 * hi)
    assert np.mean(actual <= on.yhat_upper.to_numpy()) >= 0.9


def test_a_power_law_ebb_is_hedged_too_and_the_week_is_closer():
    from test_longtail import power_sale_trace

    trace = power_sale_trace()
    cut = pd.Timestamp(trace.events[0].end).ceil("h") + pd.Timedelta(days=1)
    hist = trace.series.before(cut)
    fut = hist.future_index(timedelta(days=7))
    actual = trace.series.values.reindex(fut).to_numpy()
    on_m = EbbtideForecaster(trace.events, ModelSettings()).fit(hist)
    on = on_m.predict(fut)
    off = EbbtideForecaster(trace.events, ModelSettings(ebb_family_hedge=False)).fit(hist).predict(fut)
    assert on_m.chosen_ebb["singles-day"].alpha > 0 and _hedged(on) and not _hedged(off)
    # measured 0.047 vs 0.102: the power law chosen alone over-forecast the week by 10%
    assert tm.wape(actual, on.yhat.to_numpy()) < 0.75 * tm.wape(actual, off.yhat.to_numpy())
    assert np.mean(actual <= on.yhat_upper.to_numpy()) >= 0.9
