"""Held sales in the synthetic generator (forecaster/synthetic.py, `SaleSpec.held`).

Cases:
- the multiplier of a held sale, hand-checked: 1 before the ramp's start, the plateau
  (`peak_multiplier`) from the ramp's start through the event's end, then peace + excess x
  exp(-t / ebb_tau) from the plateau's level (not from a fallen one);
- through `generate`: the noise-free traffic over the window is the plateau x the same hours a
  week earlier, and the Event spans the window;
- off by default: `SaleSpec()` keeps the ramp-peak-fall shape, and the demo's trace (seed 7,
  5-minute steps) sums to the number measured on main before the option existed.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from forecaster.synthetic import SaleSpec, generate

H = 3600.0
HELD = SaleSpec(held=True, peak_multiplier=4.0, ramp=timedelta(hours=4), event_after_peak=timedelta(hours=24),
                ebb_tau=timedelta(hours=24), peace_ratio=1.0)
"""11.11 over 28 h: 4x from 4 h before the calendar's peak to 24 h after it, then tau 24 h."""


def test_held_multiplier_hand_checked():
    t_h = np.array([-5.0, -4.0, -2.0, 0.0, 12.0, 24.0, 48.0, 72.0])
    m = HELD.multiplier(t_h * H, 0.0)
    expected = [1.0, 4.0, 4.0, 4.0, 4.0, 4.0, 1 + 3 * math.exp(-1), 1 + 3 * math.exp(-2)]
    np.testing.assert_allclose(m, expected, rtol=1e-12)


def test_default_is_the_peaked_shape():
    spec = SaleSpec(peak_multiplier=4.0, ramp=timedelta(hours=4), event_after_peak=timedelta(hours=24),
                    ebb_tau=timedelta(hours=24), peace_ratio=1.0)
    assert SaleSpec().held is False
    m = spec.multiplier(np.array([-2.0, 0.0, 24.0]) * H, 0.0)
    # ramp: 1 + 3 x 0.5^3; the peak; fallen with event_tau 3 h by the end (24 h)
    np.testing.assert_allclose(m, [1 + 3 * 0.125, 4.0, 1 + 3 * math.exp(-8)], rtol=1e-12)


def test_generate_holds_the_plateau_through_the_window():
    start = datetime(2026, 10, 14, tzinfo=ZoneInfo("Asia/Shanghai"))
    sale = SaleSpec(held=True, day=14, peak_multiplier=4.0, ramp=timedelta(hours=4),
                    event_after_peak=timedelta(hours=24), ebb_tau=timedelta(hours=24), peace_ratio=1.0)
    tr = generate(start, 21, timedelta(hours=1), seed=1, sale=sale, outages=0)
    ev = tr.events[0]
    assert ev.end - ev.start == timedelta(hours=28)
    exp = tr.expected
    inside = exp[(exp.index >= ev.start) & (exp.index + timedelta(hours=1) <= ev.end)]
    week_before = exp.reindex(inside.index - timedelta(days=7)).to_numpy()
    np.testing.assert_allclose(inside.to_numpy() / week_before, 4.0, rtol=1e-9)
    after = exp[exp.index >= ev.end + timedelta(hours=24)].iloc[:1]
    ratio = float(after.iloc[0] / exp.reindex(after.index - timedelta(days=7)).iloc[0])
    assert abs(ratio - (1 + 3 * math.exp(-1))) < 0.05  # ebbing from 4x, not from a fallen level


def test_demo_trace_unchanged():
    from scaler.cli.demo import build_scenario

    values = build_scenario(7, timedelta(minutes=5)).trace.series.values
    assert len(values) == 12672
    assert abs(float(values.sum()) - 1_350_276_577.0) <= 50  # measured on main before `held`
