"""Event calendar -> features (forecaster.events), against hand-computed values.

Cases:
- ramp: 0 before start, linear to 1 at peak, 0 from peak on (instant and 1 h midpoints)
- inside: 1 on [start, end)
- decay: exp(-(t - end)/tau) at known offsets (1/e after one tau, 1/e^2 after two), 0 before end
- shape: ramp, plateau 1 from peak to end, then the decay
- settle: 0 before the end, 1 - exp(-(t - end)/tau) after (hand values)
- optional columns: `tail` and `settle` only when asked for, in a fixed order
- zones: an event written in +08:00 lines up with the UTC grid; a non-UTC grid gives equal values
- yearly recurrence: next year's occurrence shares the event's column (value 1 at next peak)
- a missing tau is an error naming the event
- tau_grid is geometric and inclusive; bad arguments refused
- holidays_frame: holiday-kind events as local-date windows, country holidays (CN), sale events left out
- ebb_windows / in_or_after masks
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster import events as evf
from policies.events import Event

H = timedelta(hours=1)


def grid(start="2026-11-11T00:00:00Z", n=12, freq="1h"):
    return pd.date_range(pd.Timestamp(start), periods=n, freq=freq)


def sale(**kw):
    base = dict(name="s", kind="sale", start="2026-11-11T00:00:00Z", peak="2026-11-11T04:00:00Z",
                end="2026-11-11T06:00:00Z")
    base.update(kw)
    return Event(**base)


def test_ramp_instant_values():
    r = evf.ramp(grid(), sale())
    np.testing.assert_allclose(r[:6], [0.0, 0.25, 0.5, 0.75, 0.0, 0.0])
    assert r[6:].max() == 0.0


def test_ramp_uses_interval_midpoints():
    r = evf.ramp(grid(), sale(), step=H)
    # midpoints 00:30, 01:30, 02:30, 03:30 -> 0.5/4, 1.5/4, 2.5/4, 3.5/4
    np.testing.assert_allclose(r[:5], [0.125, 0.375, 0.625, 0.875, 0.0])


def test_ramp_before_start_is_zero():
    r = evf.ramp(grid("2026-11-10T20:00:00Z", 4), sale())
    assert r.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_inside_indicator():
    assert evf.inside(grid(), sale()).tolist() == [1.0] * 6 + [0.0] * 6


def test_decay_known_offsets():
    d = evf.decay(grid(), sale(), tau=timedelta(hours=2))
    assert d[5] == 0.0  # 05:00, before end
    assert d[6] == pytest.approx(1.0)  # at end
    assert d[8] == pytest.approx(math.exp(-1))  # one tau after the end
    assert d[10] == pytest.approx(math.exp(-2))
    assert d[7] == pytest.approx(math.exp(-0.5))


def test_settle_hand_values():
    st = evf.settle(grid(), sale(), tau=timedelta(hours=2))
    assert st[:6].tolist() == [0.0] * 6  # before the end (06:00)
    assert st[6] == pytest.approx(0.0)
    assert st[8] == pytest.approx(1 - math.exp(-1))  # one tau after the end
    assert st[10] == pytest.approx(1 - math.exp(-2))
    # with a 1 h step the midpoint of the 06:00 bucket is half an hour after the end
    assert evf.settle(grid(), sale(), timedelta(hours=2), step=H)[6] == pytest.approx(1 - math.exp(-0.25))


def test_optional_tail_and_settle_columns():
    g, taus = grid(), {"s": timedelta(hours=2)}
    assert list(evf.event_features(g, [sale()], taus).columns) == ["s:shape", "s:inside"]
    f = evf.event_features(g, [sale()], taus, with_settle=True, with_tail=True)
    assert list(f.columns) == ["s:shape", "s:inside", "s:tail", "s:settle"]
    np.testing.assert_allclose(f["s:tail"], evf.decay(g, sale(), timedelta(hours=2)))
    np.testing.assert_allclose(f["s:tail"] + f["s:settle"], (np.arange(12) >= 6).astype(float))


def test_decay_refuses_non_positive_tau():
    with pytest.raises(ValueError):
        evf.decay(grid(), sale(), tau=timedelta(0))


def test_shape_is_ramp_plateau_decay():
    ev = sale(peak="2026-11-11T02:00:00Z")
    s = evf.shape(grid(), ev, tau=timedelta(hours=3))
    expected = [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, math.exp(-1 / 3), math.exp(-2 / 3), math.exp(-1)]
    np.testing.assert_allclose(s[:10], expected)


def test_event_in_other_zone_lines_up_with_utc_grid():
    local = sale(start="2026-11-11T08:00:00+08:00", peak="2026-11-11T12:00:00+08:00",
                 end="2026-11-11T14:00:00+08:00")
    np.testing.assert_allclose(evf.ramp(grid(), local), evf.ramp(grid(), sale()))
    np.testing.assert_allclose(evf.decay(grid(), local, timedelta(hours=2)),
                               evf.decay(grid(), sale(), timedelta(hours=2)))


def test_grid_in_other_zone_gives_same_values():
    g = grid()
    np.testing.assert_allclose(evf.shape(g.tz_convert("Asia/Shanghai"), sale(), timedelta(hours=2)),
                               evf.shape(g, sale(), timedelta(hours=2)))


def test_naive_grid_refused():
    with pytest.raises(ValueError):
        evf.ramp(pd.date_range("2026-01-01", periods=3, freq="1h"), sale())


def test_yearly_recurrence_shares_one_column():
    ev = sale(name="singles-day", recurrence="yearly")
    g = grid("2027-11-11T00:00:00Z", 8)
    occ = evf.regressor_events([ev], g[0].to_pydatetime(), g[-1].to_pydatetime())
    assert any(o.name == "singles-day@2027" for o in occ)
    f = evf.event_features(g, occ, {"singles-day": timedelta(hours=2)})
    assert list(f.columns) == ["singles-day:shape", "singles-day:inside"]
    assert f["singles-day:shape"].iloc[4] == pytest.approx(1.0)  # 2027-11-11T04:00Z, the peak
    assert f["singles-day:shape"].iloc[2] == pytest.approx(0.5)


def test_missing_tau_names_the_event():
    with pytest.raises(KeyError, match="flash"):
        evf.event_features(grid(), [sale(name="flash")], {})


def test_holiday_events_are_not_regressors():
    hol = sale(name="h", kind="holiday")
    assert evf.event_features(grid(), [hol], {}).shape == (12, 0)
    assert evf.regressor_events([hol], datetime(2026, 11, 1, tzinfo=timezone.utc),
                                datetime(2026, 12, 1, tzinfo=timezone.utc)) == []


def test_tau_grid_geometric():
    g = evf.tau_grid(timedelta(hours=2), timedelta(hours=128), 7)
    assert g == tuple(timedelta(hours=2 ** k) for k in range(1, 8))
    assert evf.tau_grid(H, H, 1) == (H,)
    with pytest.raises(ValueError):
        evf.tau_grid(timedelta(hours=4), H, 3)


def test_holidays_frame_local_dates_and_window():
    hol = Event(name="golden-week", kind="holiday", start="2026-10-01T00:00:00+08:00",
                peak="2026-10-01T12:00:00+08:00", end="2026-10-08T00:00:00+08:00")
    since = datetime(2026, 9, 1, tzinfo=timezone.utc)
    until = datetime(2026, 10, 31, tzinfo=timezone.utc)
    f = evf.holidays_frame([hol, sale()], since, until, tz="Asia/Shanghai")
    assert f.to_dict("records") == [{"holiday": "golden-week", "ds": pd.Timestamp("2026-10-01"),
                                     "lower_window": 0, "upper_window": 6}]
    # In UTC the same event starts on 30 September (16:00Z).
    f_utc = evf.holidays_frame([hol], since, until, tz="UTC")
    assert f_utc["ds"].iloc[0] == pd.Timestamp("2026-09-30")


def test_holidays_frame_country():
    f = evf.holidays_frame([], datetime(2026, 9, 1, tzinfo=timezone.utc),
                           datetime(2026, 10, 31, tzinfo=timezone.utc), country="CN")
    assert pd.Timestamp("2026-10-01") in set(f["ds"])
    assert f["holiday"].str.startswith("CN:").all()
    with pytest.raises(ValueError, match="country"):
        evf.holidays_frame([], datetime(2026, 9, 1, tzinfo=timezone.utc),
                           datetime(2026, 10, 31, tzinfo=timezone.utc), country="XX")


def test_masks():
    g = grid()
    m = evf.ebb_windows(g, [sale()], timedelta(hours=3))
    assert np.flatnonzero(m).tolist() == [6, 7, 8]
    m2 = evf.in_or_after(g, [sale()], timedelta(hours=1))
    assert np.flatnonzero(m2).tolist() == list(range(7))
