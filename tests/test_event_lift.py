"""An event's `lift` hint (policies.events.Event.lift): the size of an event the history does not
hold, from the calendar to the forecast (forecaster.model `_lift_entry`) to the plan.

Cases:
- the field: a finite number > 1 and <= 1000 on sale and joint_live events; 1, 1000.5, NaN, inf
  and a lift on a holiday event are refused with the field named (the policy loader's goldens,
  tests/policies/invalid/event-lift.yaml, name file and line); an events file names file, line
  and `events[i].lift`; a yearly event's occurrences carry the same lift;
- (seeded Prophet, hourly synthetic history without events) a joint live event 2-3 days ahead
  with lift 6: the forecast at its peak is 6x the forecast of the same model without the hint
  (the event in the calendar, no effect), also for an event that ends at its peak and with an
  `ebb` hint; before its start the forecast is unchanged; yhat_upper >= yhat and yhat_lower is
  at most the forecast without the hint (the band spans both); the note says where the size
  comes from;
- (seeded, slow) the same with a seen sale in the history (donors for `unseen_borrows_effect`): the
  lift wins over the borrowed size (6x at the peak, not the donors' size), with borrowing on
  and off, and the note says the hint won;
- (seeded) an event whose peak lies in the history but whose points are all missing (a
  Prometheus gap from its start on): 6x at the peak there, and its ebb in the forecast is not
  capped by the ebb ceiling (it rises above every observed value);
- (seeded) an event whose ramp the history holds: the lift is not used for its effect, the
  forecast equals the one without the field exactly (ramp ceiling off: the lift raises that
  cap, tests/test_ramp_ceiling.py), and the note says so;
- the warm-refit structure key (params["ebbtide"]["structure"]) changes with the lift (added,
  changed) and not for an equal calendar, so a warm state of a calendar without the lift is
  not reused;
- (seeded, planner) a policy whose event has a lift: at start - pod_startup - one tick the plan's
  `event` step sizes the replicas for the lifted forecast's highest yhat_upper over [start,
  peak] and names the event; without the lift the plan stays below that.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.model import EbbtideForecaster, ModelSettings
from forecaster.series import Series
from forecaster.synthetic import SaleSpec, generate
from planner_helpers import obs, policy, state, step, trusted, workload
from policies.errors import InputFileError
from policies.events import Event, load_events_file
from scaler.planning import plan

UTC = timezone.utc
H = pd.Timedelta(hours=1)
LIFT = 6.0
PEAK = pd.Timestamp("2026-10-31T12:00:00Z")  # 20:00 in Shanghai, the synthetic evening peak


def _show(peak: pd.Timestamp = PEAK, after_peak: pd.Timedelta = 3 * H, **kw) -> Event:
    return Event(name="partner-show", kind="joint_live", start=peak - 6 * H, peak=peak, end=peak + after_peak, **kw)


# --------------------------------------------------------------------------- the field
def test_lift_is_a_finite_multiple_above_one_on_sales_and_joint_live_events():
    assert _show(lift=6).lift == 6.0 and _show(lift=1000).lift == 1000.0 and _show().lift is None
    for bad in (1, 0.5, 1000.5, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"lift\n.*must be a finite number > 1 and <= 1000"):
            _show(lift=bad)
    with pytest.raises(ValueError, match=r"lift\n.*not allowed on a `holiday` event"):
        Event(name="national-day", kind="holiday", start="2026-10-01T00:00:00+08:00",
              peak="2026-10-01T00:00:00+08:00", end="2026-10-08T00:00:00+08:00", lift=3)


def test_events_file_names_the_line_of_a_bad_lift(tmp_path):
    path = tmp_path / "events.yaml"
    path.write_text("events:\n"
                    "  - name: partner-show\n"
                    "    kind: joint_live\n"
                    "    start: 2026-10-31T06:00:00Z\n"
                    "    peak: 2026-10-31T12:00:00Z\n"
                    "    end: 2026-10-31T15:00:00Z\n"
                    "    lift: 0.8\n")
    with pytest.raises(InputFileError) as info:
        load_events_file(path)
    assert info.value.problems == [f"{path}:7 events[0].lift: must be a finite number > 1 and <= 1000 (the "
                                   f"peak's traffic as a multiple of the same time without the event, e.g. 8), "
                                   f"got 0.8"]


def test_yearly_occurrences_carry_the_lift():
    ev = Event(name="singles-day", kind="sale", start="2026-11-10T20:00:00+08:00", peak="2026-11-11T00:00:00+08:00",
               end="2026-11-12T00:00:00+08:00", recurrence="yearly", lift=8)
    occ = ev.occurrences(datetime(2027, 10, 1, tzinfo=UTC), datetime(2027, 11, 30, tzinfo=UTC))
    assert [o.name for o in occ] == ["singles-day@2027"]
    assert occ[0].lift == 8.0


# --------------------------------------------------------------------------- the forecast
@pytest.fixture(scope="module")
def quiet_trace():
    """Four weeks of hourly synthetic traffic without any event (Asia/Shanghai daily cycle)."""
    return generate(datetime(2026, 10, 1, tzinfo=UTC), 28, timedelta(hours=1), 5, None, noise_sigma=0.05,
                    outages=0)


def _forecast(events, history: Series, index: pd.DatetimeIndex, zone: str, **settings):
    model = EbbtideForecaster(events, ModelSettings(calendar_tz=zone, **settings)).fit(history)
    return model, model.predict(index)


def _assert_lifted(lifted, plain, peak: pd.Timestamp, start: pd.Timestamp):
    """The lifted forecast is LIFT x the plain one at the peak, equal before the start, and its
    band spans both."""
    f, b = lifted.frame, plain.frame
    assert f["yhat"][peak] / b["yhat"][peak] == pytest.approx(LIFT, rel=0.03)
    before = f.index < start
    assert before.sum() >= 24
    np.testing.assert_allclose(f["yhat"][before], b["yhat"][before], rtol=1e-9)
    assert (f["yhat_upper"] >= f["yhat"]).all()
    assert (f["yhat_lower"] <= b["yhat"] * (1 + 1e-9)).all()
    assert f["yhat_lower"][peak] < 0.5 * f["yhat"][peak]  # the band reaches down to the forecast without it


@pytest.mark.parametrize("event", [
    _show(),
    _show(after_peak=pd.Timedelta(0)),  # ends at its peak: the peak multiple sits on the first ebb point
    _show(ebb="12h"),
], ids=["prior-tau", "ends-at-peak", "ebb-hint"])
def test_unseen_event_peaks_at_lift_times_the_forecast_without_it(quiet_trace, event):
    hist = quiet_trace.series
    idx = hist.future_index(timedelta(days=7))
    _, plain = _forecast([event], hist, idx, quiet_trace.zone)
    _, lifted = _forecast([event.model_copy(update={"lift": LIFT})], hist, idx, quiet_trace.zone)
    _assert_lifted(lifted, plain, PEAK, pd.Timestamp(event.start))
    assert (lifted.frame["yhat"] >= plain.frame["yhat"] * (1 - 1e-9)).all()  # a lift never lowers the forecast
    notes = " ".join(lifted.notes)
    assert "event partner-show has no occurrence in the history: its size comes from its `lift` hint (6x at " \
           "the peak, shape coefficient +" in notes
    assert "the interval also spans the forecast without it" in notes
    assert ("cannot be learnt from data (no effect forecast: the planner sizes its ramp as ordinary traffic): "
            "give it a `lift`") in " ".join(plain.notes)


@pytest.fixture(scope="module")
def presale_trace():
    """The same four weeks with a 3x pre-sale wave in the middle (a seen sale: a donor)."""
    return generate(datetime(2026, 10, 1, tzinfo=UTC), 28, timedelta(hours=1), 5,
                    SaleSpec(name="pre-sale", day=14, peak_multiplier=3.0, ramp=timedelta(days=1),
                             ebb_tau=timedelta(hours=12)), noise_sigma=0.05, outages=0)


@pytest.mark.slow
@pytest.mark.parametrize("borrowing", [True, False])
def test_lift_wins_over_the_size_borrowed_from_seen_events(presale_trace, borrowing):
    hist, zone = presale_trace.series, presale_trace.zone
    idx = hist.future_index(timedelta(days=7))
    main = dict(name="singles-day", kind="sale", start=PEAK - 6 * H, peak=PEAK, end=PEAK + 3 * H)
    # without the event's size: the same calendar, nothing borrowed
    _, plain = _forecast([*presale_trace.events, Event(**main)], hist, idx, zone, unseen_borrows_effect=False)
    _, borrowed = _forecast([*presale_trace.events, Event(**main)], hist, idx, zone)
    _, lifted = _forecast([*presale_trace.events, Event(**main, lift=LIFT)], hist, idx, zone,
                          unseen_borrows_effect=borrowing)
    _assert_lifted(lifted, plain, PEAK, pd.Timestamp(main["start"]))
    borrowed_ratio = borrowed.frame["yhat"][PEAK] / plain.frame["yhat"][PEAK]
    assert 1.3 < borrowed_ratio < 0.6 * LIFT  # the donors' size differs: the 6x is the hint's
    notes = " ".join(lifted.notes)
    assert "event singles-day has no occurrence in the history: its size comes from its `lift` hint" in notes
    assert ("the hint wins over the mean fitted effect of 1 seen event(s) of its kind" in notes) == borrowing


def test_lift_sizes_an_event_whose_peak_is_in_a_gap_of_the_history(quiet_trace):
    """Prometheus lost everything from the event's start on: its peak is in the history, no
    point of it is observed; the ebb ceiling must not cap what the hint says."""
    peak = pd.Timestamp("2026-10-28T12:00:00Z")
    values = quiet_trace.series.values.copy()
    values[values.index >= peak - 6 * H] = np.nan
    hist = Series(values, quiet_trace.series.step, "gap")
    assert hist.end > peak
    event = _show(peak=peak, after_peak=16 * H, ebb="12h")
    idx = pd.date_range(peak - 30 * H, hist.end + 3 * 24 * H, freq="1h")  # a day before, the gap, 3 days after
    _, plain = _forecast([event], hist, idx, quiet_trace.zone)
    _, lifted = _forecast([event.model_copy(update={"lift": LIFT})], hist, idx, quiet_trace.zone)
    _assert_lifted(lifted, plain, peak, pd.Timestamp(event.start))
    after = lifted.frame.index > hist.end
    assert lifted.frame["yhat"][after].max() > 2 * np.nanmax(values.to_numpy())
    assert not any("ebb ceiling" in n for n in lifted.notes)


def test_lift_is_ignored_once_the_history_holds_the_ramp():
    tr = generate(datetime(2026, 10, 1, tzinfo=UTC), 32, timedelta(hours=1), 9,
                  SaleSpec(name="singles-day", day=28, peak_multiplier=6.0, ramp=timedelta(days=1)),
                  noise_sigma=0.05, outages=0)
    sale = tr.events[0]
    hist = tr.series.before(pd.Timestamp(sale.start) + 12 * H)  # half of the ramp observed
    idx = hist.future_index(timedelta(days=3))
    # the effect is the fitted one (the ramp ceiling, which a lift raises, is test_ramp_ceiling's)
    _, plain = _forecast([sale], hist, idx, tr.zone, ramp_ceiling=False)
    _, hinted = _forecast([sale.model_copy(update={"lift": 2.0})], hist, idx, tr.zone, ramp_ceiling=False)
    pd.testing.assert_frame_equal(hinted.frame, plain.frame, check_exact=True)
    assert "event singles-day: its `lift` hint (2x) is not used: the history holds its ramp" in " ".join(hinted.notes)
    assert not any("`lift` hint" in n for n in plain.notes)


def test_warm_state_is_keyed_on_the_lift(quiet_trace):
    hist = quiet_trace.series.before(pd.Timestamp("2026-10-20T00:00:00Z"))
    peak = pd.Timestamp("2026-10-21T12:00:00Z")

    def structure(event: Event) -> str:
        model = EbbtideForecaster([event], ModelSettings(calendar_tz=quiet_trace.zone, holdout_origins=1)).fit(hist)
        return model.params["ebbtide"]["structure"]

    without, six = structure(_show(peak=peak)), structure(_show(peak=peak, lift=6))
    assert without != six
    assert structure(_show(peak=peak, lift=8)) != six
    assert structure(_show(peak=peak, lift=6)) == six


# --------------------------------------------------------------------------- the plan
def test_plan_pre_scales_for_the_lifted_forecast_before_the_ramp(quiet_trace):
    hist = quiet_trace.series
    wl = workload(per_replica=1000, max_replicas=5000, pod_startup="60s")
    event = {"name": "partner-show", "kind": "joint_live", "start": (PEAK - 6 * H).isoformat(),
             "peak": PEAK.isoformat(), "end": (PEAK + 3 * H).isoformat()}
    lifted_policy = policy(wl, events=[dict(event, lift=LIFT)])
    plain_policy = policy(wl, events=[event])
    lead = wl.pod_startup + lifted_policy.schedule.tick
    start = pd.Timestamp(event["start"]).to_pydatetime()
    now = start - lead
    idx = hist.future_index(timedelta(days=4))
    plans, fcs = {}, {}
    for label, pol in (("lifted", lifted_policy), ("plain", plain_policy)):
        _, fc = _forecast(pol.events, hist, idx, quiet_trace.zone)
        demand = float(fc.frame["yhat"].asof(pd.Timestamp(now)))  # what the hour before the ramp sees
        current = math.ceil(demand * (1 + wl.scaling.headroom) / wl.demand.per_replica)
        plans[label] = plan(trusted(fc), obs(demand, at=now), wl, pol, state(current), now)
        fcs[label] = fc
    ramp = (fcs["lifted"].frame.index >= pd.Timestamp(start)) & (fcs["lifted"].frame.index <= PEAK)  # [start, peak]
    top = float(fcs["lifted"].frame["yhat_upper"][ramp].max())
    need = math.ceil(top * (1 + wl.scaling.headroom) / wl.demand.per_replica)
    ev = step(plans["lifted"], "event")
    assert ev.after == need and plans["lifted"].target_replicas == need
    assert "pre-scaled" in ev.reason and "partner-show" in ev.reason
    assert plans["plain"].target_replicas < need / 3  # without the hint the ramp is bought reactively
