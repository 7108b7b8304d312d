"""bench/slow_ebb.py: its traces are what its docstring says, and its summary counts by hand.

Cases (fast; no Prophet fit):
- the +08:00 probe reads back through the CSV reader as hourly UTC, 35 days
- the sale: the peak hour is about `mult` x the same hour a week before; the excess at the end
  + 1 day is what the exponential with tau 30 h leaves (Poisson noise: within 15%)
- the outage probe holds 36 hours of zeros; the tiny probe's values are around 0.004
- summary: median, <= 0.5, > 1, worst and coverage counted on hand-made rows
- the wrong declarations (`--declare`): their times by hand; an unknown one is refused
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import load_bench

bench = load_bench("slow_ebb")


def _probe(name: str):
    return next(p for p in bench.PROBES if p.name == name)


def test_offset_probe_reads_back_as_utc():
    s = bench.trace(_probe("hourly-poisson-+08:00"))
    assert str(s.values.index.tz) == "UTC"
    assert s.step == pd.Timedelta(hours=1).to_pytimedelta()
    assert len(s.values) == 35 * 24
    assert s.values.index[0] == bench.START


def test_sale_peak_and_ebb_by_hand():
    p = _probe("hourly-poisson-+08:00")
    v = bench.trace(p).values
    week = pd.Timedelta(days=7)
    assert v[bench.PEAK] / v[bench.PEAK - week] == pytest.approx(p.mult, rel=0.15)
    later = bench.END + pd.Timedelta(days=1)
    # Sunday -> Monday: the week before's Monday is the base without the weekend factor.
    expected = 1 + (p.mult - 1) * np.exp(-(later - bench.PEAK) / pd.Timedelta(hours=p.tau_h))
    assert v[later] / v[later - week] == pytest.approx(expected, rel=0.15)


def test_outage_and_tiny_scale():
    zeros = bench.trace(_probe("hourly-poisson-outage")).values
    assert int((zeros == 0).sum()) == 36
    tiny = bench.trace(_probe("hourly-lognormal-tiny")).values
    assert 0.0005 < float(tiny.median()) < 0.01


def test_summary_counts_by_hand():
    rows = [{"ratio_to_best": r, "coverage": c} for r, c in ((0.2, 1.0), (0.5, 0.95), (0.9, 0.8), (1.7, 1.0))]
    text = bench.summary(rows)
    assert "4 cuts: median ratio to the best baseline 0.70" in text
    assert "2 <= 0.5, 1 > 1" in text
    assert "worst 1.70" in text
    assert "coverage of yhat_upper >= 0.9 on 3/4" in text


def test_declarations_by_hand():
    h = pd.Timedelta(hours=1)
    (exact,) = bench.DECLARATIONS["exact"]()
    assert (exact.start, exact.peak, exact.end) == (bench.PEAK - 6 * h, bench.PEAK, bench.END)
    (early,) = bench.DECLARATIONS["shift-8h"]()
    assert early.end == bench.PEAK - 6 * h  # over before the real ramp starts
    (late_end,) = bench.DECLARATIONS["end+12h"]()
    assert late_end.end == bench.END + 12 * h and late_end.peak == bench.PEAK
    (day,) = bench.DECLARATIONS["day-window"]()
    assert (day.start, day.end) == (bench.PEAK.normalize(), bench.PEAK.normalize() + 24 * h)
    assert bench.DECLARATIONS["none"]() == []
    with pytest.raises(SystemExit):
        bench.main(["--declare", "exact,tomorrow"])
