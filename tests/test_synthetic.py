"""Synthetic live-stream traffic (forecaster/synthetic.py).

Cases:
- same seed -> identical trace; another seed -> a different one;
- the grid: length, step, UTC index starting at `start`, whole non-negative viewers;
- steps of 1 min, 5 min and 1 h describe the same traffic (hourly means agree within noise);
- the daily cycle peaks in the local evening (20:00-22:00 Asia/Shanghai) and bottoms at night;
- weekends are busier than weekdays (on the noise-free `expected`);
- the sale: Event times match the spec (peak at the local hour on the local day, start = peak -
  ramp, end = peak + event_after_peak); traffic at the peak is ~peak_multiplier x the same hour
  a week earlier; the ebb decays with the spec's time constant (measured on `expected`) towards
  the peace level (peace_ratio x before, a bit above the pre-sale level);
- the multiplier is continuous at the ramp start, the peak and the event end;
- outages appear as zeros or dips at the reported times;
- no sale -> no events, multiplier 1 everywhere; bad arguments are refused.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forecaster.synthetic import SaleSpec, generate

START = datetime(2026, 10, 14, tzinfo=ZoneInfo("Asia/Shanghai"))  # local midnight, a Wednesday
M5 = timedelta(minutes=5)


def test_seeded_and_deterministic():
    a = generate(START, 10, M5, seed=3, sale=SaleSpec(day=5))
    b = generate(START, 10, M5, seed=3, sale=SaleSpec(day=5))
    c = generate(START, 10, M5, seed=4, sale=SaleSpec(day=5))
    pd.testing.assert_series_equal(a.series.values, b.series.values)
    assert a.outages == b.outages
    assert not a.series.values.equals(c.series.values)


def test_grid_and_values():
    tr = generate(START, 3, M5, seed=1, sale=None)
    s = tr.series
    assert len(s) == 3 * 288 and s.step == M5
    assert s.start == pd.Timestamp("2026-10-13T16:00:00Z")
    assert str(s.index.tz) == "UTC"
    v = s.values.to_numpy()
    assert (v >= 0).all() and np.array_equal(v, np.round(v))
    assert tr.events == ()


def test_steps_describe_the_same_traffic():
    hourly = {}
    for step in (timedelta(minutes=1), M5, timedelta(hours=1)):
        tr = generate(START, 4, step, seed=9, sale=SaleSpec(day=2), outages=0)
        hourly[step] = tr.expected.resample("1h").mean()
        assert len(tr.series) == int(timedelta(days=4) / step)
    ref = hourly[timedelta(hours=1)]
    for step in (timedelta(minutes=1), M5):
        np.testing.assert_allclose(hourly[step].to_numpy(), ref.to_numpy(), rtol=1e-9)


def test_daily_cycle_peaks_in_local_evening():
    tr = generate(START, 14, timedelta(hours=1), seed=2, sale=None, outages=0)
    local_hour = tr.expected.index.tz_convert("Asia/Shanghai").hour
    by_hour = tr.expected.groupby(local_hour).mean()
    assert 20 <= by_hour.idxmax() <= 22
    assert 2 <= by_hour.idxmin() <= 6
    assert by_hour.max() > 3 * by_hour.min()
    noisy = tr.series.values.groupby(local_hour).mean()
    assert 20 <= noisy.idxmax() <= 22


def test_weekends_busier():
    tr = generate(START, 14, timedelta(hours=1), seed=2, sale=None, outages=0)
    dow = tr.expected.index.tz_convert("Asia/Shanghai").day_of_week
    daily = tr.expected.groupby(dow).mean()
    assert daily[[5, 6]].min() > daily[[0, 1, 2, 3]].max() * 1.08


def test_sale_event_shape_peak_and_ebb():
    spec = SaleSpec(day=14, peak_hour_local=21.0, ramp=timedelta(days=2), peak_multiplier=5.0,
                    event_after_peak=timedelta(hours=3), ebb_tau=timedelta(hours=30), peace_ratio=1.2)
    tr = generate(START, 28, M5, seed=5, sale=spec, outages=0)
    (ev,) = tr.events
    assert ev.kind == "sale" and ev.name == spec.name
    assert ev.peak == datetime(2026, 10, 28, 21, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(timezone.utc)
    assert ev.start == ev.peak - timedelta(days=2)
    assert ev.end == ev.peak + timedelta(hours=3)

    e = tr.expected
    peak = pd.Timestamp(ev.peak)
    week = pd.Timedelta(days=7)
    assert e[peak] / e[peak - week] == pytest.approx(5.0, rel=0.02)
    noisy_ratio = tr.series.values[peak - pd.Timedelta(minutes=30): peak + pd.Timedelta(minutes=30)].mean() \
        / tr.series.values[peak - week - pd.Timedelta(minutes=30): peak - week + pd.Timedelta(minutes=30)].mean()
    assert 3.5 < noisy_ratio < 6.5

    # The ebb: ratio to the same time a week earlier is peace + A exp(-t/tau); the excess over
    # the peace level shrinks by e every tau.
    end = pd.Timestamp(ev.end)
    tau = pd.Timedelta(hours=30)
    ratio = lambda t: e[t] / e[t - 2 * week]  # noqa: E731  (two weeks back: before the ramp)
    x0 = ratio(end + pd.Timedelta(hours=6)) - 1.2
    x1 = ratio(end + pd.Timedelta(hours=6) + tau) - 1.2
    assert x1 / x0 == pytest.approx(math.exp(-1), rel=0.01)
    # Long after: the peace level, a bit above before the sale.
    late = end + pd.Timedelta(days=10)
    assert ratio(late) == pytest.approx(1.2, rel=0.01)
    assert tr.peace_level == pytest.approx(1.2 * tr.baseline_level)


def test_multiplier_is_continuous():
    spec = SaleSpec(peak_multiplier=4.0, peace_ratio=1.1)
    peak_s = 1_000_000.0
    for t in (peak_s - spec.ramp.total_seconds(), peak_s, peak_s + spec.event_after_peak.total_seconds()):
        left, right = spec.multiplier(np.array([t - 1e-3, t + 1e-3]), peak_s)
        assert left == pytest.approx(right, rel=1e-5)
    assert spec.multiplier(np.array([peak_s]), peak_s)[0] == pytest.approx(4.0)
    assert spec.multiplier(np.array([peak_s - 10 * 86400.0]), peak_s)[0] == 1.0


def test_outages_are_visible():
    tr = generate(START, 7, timedelta(minutes=1), seed=11, sale=None, outages=3)
    assert len(tr.outages) == 3
    v = tr.series.values
    for o in tr.outages:
        assert o.end - o.start >= pd.Timedelta(minutes=3)
        seen = v[(v.index >= o.start) & (v.index < o.end)]
        normal = tr.expected[seen.index]
        if o.factor == 0:
            assert (seen == 0).all()
        else:
            assert 0.2 <= o.factor <= 0.5
            np.testing.assert_allclose(seen / normal, o.factor, rtol=0.35)


def test_bad_arguments():
    with pytest.raises(ValueError, match="zone"):
        generate(datetime(2026, 1, 1), 2, M5, seed=0)
    with pytest.raises(ValueError, match="whole number of minutes"):
        generate(START, 2, timedelta(seconds=90), seed=0)
    with pytest.raises(ValueError, match="peak_multiplier"):
        generate(START, 2, M5, seed=0, sale=SaleSpec(day=1, peak_multiplier=0.5))
