"""bench/lift.py's own arithmetic, without fitting anything.

Cases:
- measured lift: a flat hourly week (100) whose event holds 450 at its highest hour -> 4.5; the
  baseline is the median of the same slot 1-3 weeks earlier (one of them 130 -> median still 100;
  a missing week is skipped); an event no higher than its baseline -> None; no point inside -> None;
- the event window: demand above yhat_upper over [start, end) only, as a share of the window's
  demand, and the upper bound at the window's highest point over the actual there (hand-computed);
- a lift that cannot be declared (<= 1) is refused by the calendar's own validation.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from conftest import load_bench
from forecaster.series import Forecast, Series
from policies.events import Event

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


@pytest.fixture(scope="module")
def bench():
    return load_bench("lift")


def _series(values: np.ndarray) -> Series:
    idx = pd.date_range(T0, periods=len(values), freq="h")
    return Series(pd.Series(values, index=idx, dtype=float), H, name="t")


def _event(start: datetime, hours: int, lift: float | None = None) -> Event:
    return Event(name="e", kind="sale", start=start, peak=start + hours // 2 * H, end=start + hours * H, lift=lift)


def test_measured_lift(bench):
    v = np.full(4 * 168, 100.0)
    start = T0 + 3 * 168 * H + 10 * H  # day 21, 10:00
    v[3 * 168 + 10: 3 * 168 + 16] = [150, 300, 450, 400, 200, 120]
    v[2 * 168 + 12] = 130.0  # one earlier week busier at that slot: the median ignores it
    s = _series(v)
    assert bench.measured_lift(s, _event(start, 6)) == pytest.approx(4.5)
    v2 = v.copy()
    v2[1 * 168 + 12] = np.nan  # a missing week: median of the two left (100, 130) = 115
    assert bench.measured_lift(_series(v2), _event(start, 6)) == pytest.approx(450 / 115)
    flat = _series(np.full(4 * 168, 100.0))
    assert bench.measured_lift(flat, _event(start, 6)) is None
    assert bench.measured_lift(s, _event(T0 + 5 * 168 * H, 6)) is None  # after the trace


def test_event_window(bench):
    v = np.full(48, 100.0)
    v[20:24] = [200, 400, 300, 150]  # the event [20:00, 24:00)
    s = _series(v)
    idx = s.index[12:36]
    upper = np.full(len(idx), 250.0)
    upper[idx.get_loc(T0 + 21 * H)] = 360.0
    frame = pd.DataFrame({"yhat": upper * 0.8, "yhat_lower": upper * 0.5, "yhat_upper": upper}, index=idx)
    got = bench.event_window(s, Forecast(frame, "t", upper_quantile=0.9), _event(T0 + 20 * H, 4))
    # above the upper bound inside the window: 400 - 360 at 21:00, 300 - 250 at 22:00
    assert got["under"] == pytest.approx((40 + 50) / (200 + 400 + 300 + 150))
    assert got["peak_cover"] == pytest.approx(360 / 400)


def test_lift_must_be_declarable(bench):
    e = _event(T0, 6)
    with pytest.raises(ValidationError, match="lift"):
        bench._with_lift((e,), "e", 0.8)
    assert bench._with_lift((e,), "e", 3.0)[0].lift == 3.0
