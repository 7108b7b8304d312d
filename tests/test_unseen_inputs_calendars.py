"""Multi-event calendars nobody had tried: an unseen-input sweep of `EbbtideForecaster` after the
multi-event work (`ebb_until_next_event`, `unseen_borrows_effect`, `long_tau_own_ebb`).

The sweep (seeded `forecaster.synthetic.generate`, Asia/Shanghai, hourly unless "5m"; each case
fitted and predicted over 7 days twice, and once more as a warm refit 6 h later with the
previous `params` after a JSON round trip; 6 of them also through `ebbtide backtest --json
--forecast-out`) checked: no exception, finite values, 0 <= yhat_lower <= yhat <= yhat_upper,
yhat_upper <= 50x the history's maximum, equal outputs on a second run. 46 cases, none broke:
two sales at the same time (cut a day after, and a sale + joint live cut at the peak);
overlapping windows; a joint live event inside a sale's window (cut after both, and inside the
outer one); Singles Day waves pre-sale / main / returns day (cut at the main end, at the returns
peak, and 5m in the pre-sale's ebb with main and returns unseen); an unseen joint live event
whose only donor was a dip (hourly and 5m), and an unseen sale whose donor was a 2-day dip; an
unseen event of a kind with no donor; donors of both kinds with an unseen event of each; a
yearly event written for next year with its previous occurrence in the history, a yearly event
cut in its own ebb, a yearly pair at 5m cut after the main peak, and both occurrences of a
yearly sale in 400 days of daily data (with and without an unseen joint live event); an event
whose ramp starts before the history, and two events entirely before it; a cut mid-event and in
the second's ramp; a 1-hour joint live event (hourly, and 5m cut at its end); an unseen event
starting exactly at the cutoff (with and without a ramp); declared events where nothing happened
(cut after them, and inside one); holiday events next to and on the same day as sales; the
`ebb` hint on the first event only, on the later only, on an unseen one only, and on all;
histories of 2 days (hourly) and 1.5 days (5m) with two events, 7 days with an unseen one; five
weekly sales; two back-to-back sales at 5m; a "season" sale covering the whole history;
two events ending exactly at the cutoff; zero-length events (start = peak = end, one seen with
no traffic change, one in the horizon); a data gap over a whole event and its ebb; a holiday-only
calendar with an unseen sale; and, as controls, one event cut at its end and 1 h after.

Found, not fixed (not a multi-event behaviour; the single-event controls do it too): cut at or
within an hour of an event's end, one ebb point scores every kernel equally and the tie goes to
the shortest tau (2 h), where with no ebb point the prior's centre (16 h) is the forecast.

Cases kept here (the sweep's riskiest shapes, as guards):
- fast: `clean_ebb_windows` for two events at the same time (neither cuts the other's ebb: it
  equals `ebb_windows`) and for a zero-length event followed by another (cut at its start);
- slow, seeded Prophet: the invariants above (finite, ordered, >= 0, upper <= 50x the history's
  max, deterministic) on two sales at the same time, an unseen joint live event whose donor was
  a dip, an unseen sale starting exactly at the cutoff, and a 2-day history with two events.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forecaster import events as evf
from forecaster.series import Series
from forecaster.synthetic import SaleSpec, generate
from policies.events import Event

UTC = timezone.utc
H = timedelta(hours=1)
ZONE = "Asia/Shanghai"
START = datetime(2026, 10, 1, tzinfo=ZoneInfo(ZONE))


def _local(day: int, hour: float) -> datetime:
    return (START + timedelta(days=day, hours=hour)).astimezone(UTC)


def _ev(name: str, kind: str, start: datetime, peak: datetime, end: datetime) -> Event:
    return Event(name=name, kind=kind, start=start, peak=peak, end=end)


def test_same_time_events_do_not_cut_each_others_ebb():
    grid = pd.date_range("2026-10-01", periods=24 * 10, freq="h", tz="UTC")
    a = _ev("a", "sale", _local(2, 0), _local(3, 20), _local(4, 0))
    b = _ev("b", "joint_live", _local(2, 0), _local(3, 20), _local(4, 0))
    span = timedelta(days=3)
    clean = evf.clean_ebb_windows(grid, [a, b], [a, b], span, H)
    assert clean.sum() == 72
    assert (clean == evf.ebb_windows(grid, [a, b], span, H)).all()


def test_zero_length_event_ebb_stops_at_the_next_start():
    grid = pd.date_range("2026-10-01", periods=24 * 10, freq="h", tz="UTC")
    z = _ev("z", "sale", _local(2, 20), _local(2, 20), _local(2, 20))
    nxt = _ev("next", "sale", _local(3, 20), _local(4, 0), _local(4, 4))
    clean = evf.clean_ebb_windows(grid, [z], [z, nxt], timedelta(days=3), timedelta(0))
    on = grid[clean]
    assert on[0] == pd.Timestamp(z.end) and on[-1] == pd.Timestamp(nxt.start) - pd.Timedelta(hours=1)


def _sweep_case(name: str):
    """(history, calendar, forecast index) of one sweep case, hourly, seed 7."""
    if name == "same_time_two_sales":
        tr = generate(START, 32, H, 7, (SaleSpec("a", day=22), SaleSpec("b", day=22, peak_multiplier=3.0)), zone=ZONE)
        cal, cut, days = list(tr.events), tr.events[0].end + timedelta(days=1), None
    elif name == "unseen_after_dip_donor":
        tr = generate(START, 32, H, 7, None, zone=ZONE)
        values = tr.series.values.copy()
        dip = (values.index >= _local(18, 19)) & (values.index < _local(18, 23))
        values[dip] = np.round(values[dip] * 0.4)
        tr = replace(tr, series=Series(values, H, name="dip"))
        cal = [_ev("jl-dip", "joint_live", _local(18, 19), _local(18, 20), _local(18, 23)),
               _ev("jl-next", "joint_live", _local(26, 19), _local(26, 20), _local(26, 23))]
        cut, days = _local(24, 0), None
    elif name == "unseen_starts_at_cut":
        tr = generate(START, 32, H, 7, SaleSpec("a", day=15), zone=ZONE)
        cal = [*tr.events, _ev("b", "sale", _local(24, 0), _local(25, 20), _local(26, 0))]
        cut, days = _local(24, 0), None
    else:  # "two_events_in_2_days"
        tr = generate(START, 31, H, 7, (SaleSpec("a", day=28, ramp=12 * H), SaleSpec("b", day=29, ramp=6 * H)),
                      zone=ZONE)
        cal, cut, days = list(tr.events), tr.events[1].end + 2 * H, 2
    cut = pd.Timestamp(cut).tz_convert("UTC").ceil("h")
    hist = tr.series.values[tr.series.values.index < cut]
    if days:
        hist = hist[hist.index >= cut - pd.Timedelta(days=days)]
    return Series(hist, H, name=name), cal, pd.date_range(cut, periods=7 * 24, freq="h")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["same_time_two_sales", "unseen_after_dip_donor", "unseen_starts_at_cut",
                                  "two_events_in_2_days"])
def test_multi_event_forecast_invariants(name):
    from forecaster.model import EbbtideForecaster, ModelSettings

    history, cal, idx = _sweep_case(name)
    frames = [EbbtideForecaster(cal, ModelSettings()).fit(history).predict(idx).frame for _ in range(2)]
    fr = frames[0]
    y, lo, up = (fr[c].to_numpy() for c in ("yhat", "yhat_lower", "yhat_upper"))
    assert np.isfinite(fr.to_numpy()).all()
    assert (0 <= lo).all() and (lo <= y).all() and (y <= up).all()
    assert up.max() <= 50 * float(history.values.max())
    pd.testing.assert_frame_equal(frames[0], frames[1])
