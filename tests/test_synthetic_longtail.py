"""Long-tailed ebbs in the synthetic generator (forecaster/synthetic.py `SaleSpec.ebb_shape`).

Cases:
- the power-law ebb's multiplier at hand-computed points: peace + (m_end - peace) x
  (1 + dt/t0)^-alpha (alpha 1: half the end-of-event excess left at t0, a quarter at 3 t0;
  alpha 2: a quarter at t0), with m_end from the in-event fall (peace + (peak - peace) e^-4/3)
- the default is the exponential: SaleSpec() and SaleSpec(ebb_shape="exponential") give
  identical traces (same seed), and its ebb is exp(-dt/tau)
- a power-law trace with the same seed equals the exponential one up to the event's end and
  stays higher afterwards (a long tail) once the power law is above the exponential
- bad shapes/exponents are refused
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.synthetic import SaleSpec, generate

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def _spec(**kw) -> SaleSpec:
    return SaleSpec(peak_multiplier=6.0, peace_ratio=1.2, event_after_peak=timedelta(hours=4),
                    event_tau=timedelta(hours=3), ebb_tau=timedelta(hours=12), **kw)


def test_power_multiplier_hand_values():
    m_end = 1.2 + (6.0 - 1.2) * math.exp(-4 / 3)
    after_s = 4 * 3600.0
    dt_h = np.array([12.0, 36.0])
    t = after_s + dt_h * 3600
    p1 = _spec(ebb_shape="power", ebb_alpha=1.0).multiplier(t, 0.0)
    np.testing.assert_allclose(p1, [1.2 + (m_end - 1.2) / 2, 1.2 + (m_end - 1.2) / 4])
    p2 = _spec(ebb_shape="power", ebb_alpha=2.0).multiplier(t[:1], 0.0)
    np.testing.assert_allclose(p2, [1.2 + (m_end - 1.2) / 4])
    ex = _spec().multiplier(t[:1], 0.0)
    np.testing.assert_allclose(ex, [1.2 + (m_end - 1.2) * math.exp(-1)])


def test_default_is_exponential_and_identical():
    a = generate(START, 35, H, 5, _spec())
    b = generate(START, 35, H, 5, _spec(ebb_shape="exponential", ebb_alpha=3.0))
    assert a.series.values.equals(b.series.values)
    assert a.expected.equals(b.expected)


def test_power_trace_matches_before_end_and_has_a_long_tail():
    ex = generate(START, 42, H, 7, _spec(day=20))
    pw = generate(START, 42, H, 7, _spec(day=20, ebb_shape="power", ebb_alpha=1.0))
    end = pd.Timestamp(ex.events[0].end)
    before = ex.expected.index + pd.Timedelta(H) <= end  # hourly means wholly before the end
    assert np.array_equal(ex.expected[before].to_numpy(), pw.expected[before].to_numpy())
    assert np.array_equal(ex.series.values[before].to_numpy(), pw.series.values[before].to_numpy())
    # (1 + t/12h)^-1 > exp(-t/12h) for t > 0: from 2 days after the end the power tail holds
    # well above the exponential one (at 2 d: 0.2 vs 0.018 of the end excess)
    late = (ex.expected.index >= end + pd.Timedelta(days=2)) & (ex.expected.index < end + pd.Timedelta(days=9))
    assert (pw.expected[late] > ex.expected[late] * 1.05).all()


@pytest.mark.parametrize("kw", [{"ebb_shape": "hyperbolic"}, {"ebb_shape": "power", "ebb_alpha": 0.0}])
def test_bad_shapes_refused(kw):
    with pytest.raises(ValueError, match="ebb_shape"):
        generate(START, 35, H, 1, _spec(**kw))
