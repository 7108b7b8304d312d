"""Event times a person got wrong: `forecaster.events.align_to_observed` and
`ModelSettings.event_align_within` (forecaster.model). (An event nobody declared:
tests/test_undeclared_events.py.)

Why: a calendar entry's times are written by a person (a peak in local time written as UTC,
the announced start of a show whose crowd peaks hours later). When the traffic kept rising after
the declared end, the ebb kernel was fitted to the rest of the rise as its first hours: declared
8 h early, bench/slow_ebb.py's hourly traces cut a day after the sale were forecast at 2.8-2.9x
the best baseline's error (bench/README.md, "Event times a person got wrong").

Cases (pure ones by hand on a generated hourly series with a flat daily profile of 10):
- the traffic peaks 6 h after the declared end, at 8x: the entry moves 8 h later (its ramp and
  hold kept), its peak at that hour, noted; an entry with no hold ends a step after the peak
- the declared window holds the highest ratio: nothing moves
- a later peak under `min_ratio` (a normal evening bump): nothing moves
- the window after the end not yet fully observed: nothing moves
- another event starts inside that window: nothing moves
- a dip event (a holiday declared as a sale, traffic below typical): nothing moves
- seeded model fit: tests/test_model.py's sale declared 8 h early, cut a day after its end;
  with the setting on the week's WAPE is at most 0.75x the WAPE with it off (0s, and no
  undeclared-event inference), and within 0.03 of the WAPE with the sale declared at its real
  times; with it off but the inference on, the real sale is modelled as an undeclared event
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecaster.events import align_to_observed
from policies.events import Event

H = timedelta(hours=1)
START = pd.Timestamp("2026-10-01T00:00:00Z")
PEAK = START + pd.Timedelta(days=14, hours=12)


def _series(days=20, bump_at=PEAK, bump=8.0, width_h=3):
    idx = pd.date_range(START, periods=days * 24, freq="1h")
    v = np.full(idx.size, 10.0)
    t = np.asarray((idx - bump_at) / pd.Timedelta(hours=1), dtype=float)
    v = v * (1 + (bump - 1) * np.exp(-np.abs(t) / width_h))
    return pd.Series(v, index=idx)


def _event(shift_h: float, name="sale") -> Event:
    p = PEAK - pd.Timedelta(hours=shift_h)
    return Event(name=name, kind="sale", start=(p - pd.Timedelta(hours=6)).isoformat(), peak=p.isoformat(),
                 end=(p + pd.Timedelta(hours=2)).isoformat())


def _align(occ, values, within=timedelta(hours=12), min_ratio=2.0):
    return align_to_observed(occ, values, H, within, min_ratio, timedelta(days=7))


def test_a_peak_after_the_declared_end_moves_the_event():
    e = _event(8)  # declared peak 8 h early: end at PEAK - 6 h
    (moved,), notes = _align([e], _series())
    eight = timedelta(hours=8)  # the whole entry moves by 8 h: its declared ramp and hold kept
    assert (moved.start, moved.peak, moved.end) == (e.start + eight, e.peak + eight, e.end + eight)
    assert moved.peak == PEAK.to_pydatetime() and moved.name == e.name
    assert len(notes) == 1 and "8.0x" in notes[0] and "8h later" in notes[0] and "event_align_within" in notes[0]


def test_an_entry_with_no_hold_keeps_the_peak_inside():
    p = PEAK - pd.Timedelta(hours=5)
    e = Event(name="sale", kind="sale", start=(p - pd.Timedelta(hours=6)).isoformat(), peak=p.isoformat(),
              end=p.isoformat())  # end = peak
    (moved,), _ = _align([e], _series())
    assert moved.peak == PEAK.to_pydatetime() and moved.end == (PEAK + H).to_pydatetime()


def test_nothing_moves_when_the_window_holds_the_peak():
    for shift in (0, -1, 1):  # peak inside [start, end) of the declaration
        e = _event(shift)
        assert _align([e], _series()) == ([e], [])


def test_a_later_bump_under_min_ratio_is_not_an_event_peak():
    e = _event(8)
    s = _series(bump=1.8)  # 1.8x at the later hour: an evening, not a sale
    assert _align([e], s) == ([e], [])
    assert _align([e], _series(bump=1.8), min_ratio=1.5)[0][0] != e  # the same bump passes a lower bar


def test_the_window_after_the_end_must_be_observed():
    e = _event(8)
    s = _series()
    cut = s[s.index < e.end + timedelta(hours=10)]  # 10 of the 12 h after the declared end
    assert _align([e], cut) == ([e], [])
    assert _align([e], s[s.index < e.end + timedelta(hours=12)])[0][0] != e


def test_another_event_starting_in_the_window_explains_the_rise():
    e = _event(8)
    nxt = Event(name="next", kind="sale", start=(PEAK - pd.Timedelta(hours=2)).isoformat(),
                peak=PEAK.isoformat(), end=(PEAK + pd.Timedelta(hours=1)).isoformat())
    out, notes = _align([e, nxt], _series())
    assert out == [e, nxt] and notes == []


def test_a_dip_event_is_left_alone():
    e = _event(0)
    s = _series(bump=0.3)  # the "sale" is a dip to 0.3x; the hours after it are back at 1x
    assert _align([e], s) == ([e], [])


@pytest.mark.slow
def test_a_sale_declared_8h_early_is_fitted_from_its_observed_peak():
    import test_model as tm

    from forecaster.model import EbbtideForecaster, ModelSettings

    early = tm.SALE.model_copy(update={k: getattr(tm.SALE, k) - 8 * H for k in ("start", "peak", "end")})
    hist, fut, actual = tm.day_after_end(2)
    on = EbbtideForecaster([early], ModelSettings()).fit(hist).predict(fut)
    off = EbbtideForecaster([early], ModelSettings(event_align_within=timedelta(0), undeclared_events=False)
                            ).fit(hist).predict(fut)
    assert any("event_align_within" in n for n in on.notes)
    assert not any("event_align_within" in n for n in off.notes)
    exact = EbbtideForecaster([tm.SALE], ModelSettings()).fit(hist).predict(fut)
    w_on, w_off = tm.wape(actual, on.yhat.to_numpy()), tm.wape(actual, off.yhat.to_numpy())
    assert w_on <= 0.75 * w_off  # measured 0.28 vs 0.41 (seeds 1, 3, 5: 0.26-0.28 vs 0.41-0.42)
    # Not moved, the real sale lies in the early entry's ebb, risen from its trough: it is then
    # modelled as an undeclared event (tests/test_undeclared_events.py), a second line of defence.
    unmoved = EbbtideForecaster([early], ModelSettings(event_align_within=timedelta(0))).fit(hist).predict(fut)
    assert any("modelled as an event undeclared-" in n for n in unmoved.notes)
    assert tm.wape(actual, unmoved.yhat.to_numpy()) <= 0.75 * w_off  # measured 0.25
    assert abs(w_on - tm.wape(actual, exact.yhat.to_numpy())) <= 0.03  # as if declared right
    assert np.mean(actual <= on.yhat_upper.to_numpy()) >= 0.9
