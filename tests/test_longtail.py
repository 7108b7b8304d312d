"""Long-tailed ebbs (forecaster/model.py with power-law kernels, the settle floor and the tau grid
stretched for coarse series), against the exponential-only model that came before.

Cases (seeded Prophet fits, slow; the kernels alone, without `ebb_family_hedge`, whose mean
of the two families is checked against the old model too, at 0.6x):
- a power-law ebb (1 + t/12h)^-1, hourly, cut one day after the event's end: the new model
  picks a power-law kernel and its 7-day WAPE is at most half the exponential-only model's
  (measured 0.10 vs 0.33), and it does not under-forecast the week's total (>= 0.9 x actual;
  the exponential-only model forecast 0.68 x: a new peace level learnt from the still-falling
  tail took the forecast below the old level)
- the same series cut three days after the end: again at most half (measured 0.04 vs 0.20)
- a daily series with a 10-day exponential ebb cut two days after the end: no candidate tau is
  shorter than the series step (the grid is stretched to 1 d .. 64 d) and the WAPE is below the
  unstretched model's (measured 0.08 vs 0.24: 24 h against 8 h). Cut one day after the end,
  the one ebb point is fitted alike (to ~1e-6 in z) by every kernel: the choice is then the
  tie rule's (the shortest), not evidence, and this comparison was once decided by Stan's
  convergence noise (it flipped between two installs a day apart)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.synthetic import SaleSpec, generate

pytestmark = pytest.mark.slow

OLD = ModelSettings(ebb_power_alphas=(), settle_floor=False, tau_min_steps=0)
"""The model before the long-tail work: exponential kernels on 2 h .. 128 h, no settle floor."""


def _wape(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.abs(y - yhat).sum() / y.sum())


def _run(trace, cut: pd.Timestamp, settings: ModelSettings):
    hist = trace.series.before(cut)
    idx = hist.future_index(timedelta(days=7))
    y = trace.series.values.reindex(idx).to_numpy()
    model = EbbtideForecaster(trace.events, settings).fit(hist)
    return model, y, model.predict(idx).yhat.to_numpy()


def power_sale_trace():
    """Hourly, 11 weeks, a 10x sale ebbing as (1 + t/12 h)^-1 back to the old level (seed 42)."""
    spec = SaleSpec(peak_multiplier=10.0, peace_ratio=1.0, ebb_shape="power", ebb_alpha=1.0,
                    ebb_tau=timedelta(hours=12))
    return generate(datetime(2026, 10, 1, tzinfo=timezone.utc), 42, timedelta(hours=1), 11, spec, outages=0)


@pytest.fixture(scope="module")
def power_trace():
    return power_sale_trace()


@pytest.mark.parametrize("days_after", [1, 3])
def test_power_law_ebb_followed_better_than_exponential_only(power_trace, days_after):
    cut = pd.Timestamp(power_trace.events[0].end).ceil("h") + pd.Timedelta(days=days_after)
    old, y, yhat_old = _run(power_trace, cut, OLD)
    new, _, yhat_new = _run(power_trace, cut, ModelSettings(ebb_family_hedge=False))
    assert new.chosen_ebb["singles-day"].alpha > 0
    assert _wape(y, yhat_new) <= 0.5 * _wape(y, yhat_old)
    assert yhat_new.sum() >= 0.9 * y.sum()
    # With the exponential/power-law hedge (the default): +1 d 0.05 (better), +3 d 0.11 against
    # 0.04 (an 8 h exponential within noise of 4 h^-1; tests/test_family_hedge.py), still
    # below the exponential-only model's 0.20.
    _, _, yhat_default = _run(power_trace, cut, ModelSettings())
    assert _wape(y, yhat_default) <= 0.6 * _wape(y, yhat_old)


def test_daily_series_gets_a_tau_grid_in_days():
    spec = SaleSpec(day=49, peak_multiplier=8.0, peace_ratio=1.0, ebb_tau=timedelta(days=10))
    trace = generate(datetime(2026, 8, 1, tzinfo=timezone.utc), 70, timedelta(days=1), 4, spec, outages=0)
    cut = pd.Timestamp(trace.events[0].end).ceil("D") + pd.Timedelta(days=2)
    old, y, yhat_old = _run(trace, cut, OLD)
    new, _, yhat_new = _run(trace, cut, ModelSettings())
    assert new.chosen_tau["singles-day"] >= timedelta(days=1)
    scored = [n for n in new.notes if "mean |z error|" in n]
    assert scored and "24h=" in scored[0] and "1536h=" in scored[0]  # 1 d .. 64 d
    assert _wape(y, yhat_new) < _wape(y, yhat_old)
