"""The replay's and the planner's exact shortcuts: each gives what the plain computation gives.

Cases:
- `war_floors` (the war-state floor of every step at once, compared in integer microseconds)
  equals `war_floor` at every step, for random windows whose bounds have sub-second parts and
  zones other than UTC (hypothesis);
- `_step_held` equals the step-held lookup values[i] (NaN outside the trace) for random indices;
- `ReplayForecaster.at`: between refits the same TrustedForecast object comes back until the
  slice moves, and its frame always equals the slice computed from scratch with pandas (points
  whose interval is not over at the observation, up to now + horizon); past the frame's end it
  is untrusted and says the refit is overdue, as the controller's caches do;
- `prune_recommendations` keeps the (time, replicas) tuples it is given (identity), turns other
  rows (lists) into tuples, and keeps exactly the rows in (now - window, now];
- `planning._plain` on a run of stabilisation windows (the oldest rows leave, new ones join,
  the rows of one tick reused at the next; rows with a list inside; datetimes equal as instants
  but in other zones, which print differently) equals a plain walk with no memory (hypothesis);
- `plan()` twice on the same Forecast object and once on an equal copy of it gives equal Plans
  (inputs digest included), and the arrays cached for the forecast are read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from array import array
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.series import Forecast, Series
from policies.loading import load_policy_text
from scaler import planning
from scaler.plans import Observation, PlanningState, TrustedForecast, WorkloadState
from scaler.replay.forecasting import ReplayForecaster
from scaler.replay.runner import _step_held
from scaler.replay.warstate import WarWindow, war_floor, war_floors
from scaler.safety import prune_recommendations

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
T0_S = int(T0.timestamp())

POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 1m}
workloads:
  - name: live
    target: {kind: Deployment, namespace: default, name: live}
    demand: {query: 'viewers', per_replica: 100}
    pod_startup: 90s
    scaling: {min_replicas: 1, max_replicas: 500, quantile: 0.9, headroom: 0.2, stabilization: 30m}
    forecast: {lookback: 2d, step: 5m, horizon: 2h, refit_interval: 1h, min_history: 6h, trust_bound: 5}
"""


# --------------------------------------------------------------------------- war floors, demand
_zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])


@st.composite
def _windows(draw):
    out = []
    for i in range(draw(st.integers(0, 4))):
        a_us = draw(st.integers(-600_000_000, 4 * 3600 * 1_000_000))  # around the steps, sub-second parts
        length_us = draw(st.integers(0, 3 * 3600 * 1_000_000))
        tz = draw(_zones)
        start = (T0 + timedelta(microseconds=a_us)).astimezone(tz)
        out.append(WarWindow(f"e{i}", start, start + timedelta(microseconds=length_us),
                             draw(st.integers(1, 50)), 1.0))
    return out


@settings(max_examples=60, deadline=None)
@given(_windows(), st.integers(1, 5))
def test_war_floors_equal_war_floor_at_every_step(windows, base_min):
    steps_s = T0_S + np.arange(0, 4 * 3600, 15, dtype=np.int64)
    floors = war_floors(windows, steps_s, base_min)
    expected = [war_floor(windows, datetime.fromtimestamp(int(t), tz=timezone.utc), base_min) for t in steps_s]
    assert floors.tolist() == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), min_size=1, max_size=20),
       st.lists(st.integers(-5, 25), max_size=30))
def test_step_held_is_the_lookup_with_nan_outside(values, idx):
    v = np.asarray(values, dtype=float)
    got = _step_held(v, np.asarray(idx, dtype=np.int64))
    expected = [float(v[i]) if 0 <= i < len(v) else math.nan for i in idx]
    assert np.array_equal(got, np.asarray(expected, dtype=float), equal_nan=True)


# --------------------------------------------------------------------------- forecast slices
class _Ramp:
    """Fake forecaster: yhat = the last value + 1 per point ahead, upper = yhat x 1.5."""

    name = "ramp"

    def fit(self, history: Series) -> "_Ramp":
        self.last = float(history.values.dropna().iloc[-1])
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        yhat = self.last + np.arange(1, len(index) + 1, dtype=float)
        return Forecast(pd.DataFrame({"yhat": yhat, "yhat_lower": yhat * 0.5, "yhat_upper": yhat * 1.5},
                                     index=index), self.name, upper_quantile=0.9)


def _history(days: float = 2.0, step=timedelta(minutes=5)) -> Series:
    n = int(timedelta(days=days) / step)
    idx = pd.date_range(T0, periods=n, freq=pd.Timedelta(step))
    vals = 1000.0 + 300.0 * np.sin(np.arange(n) * 2 * np.pi / 288.0)
    return Series(pd.Series(vals, index=idx), step, "sine")


def test_forecast_slices_are_reused_until_they_move_and_equal_a_fresh_slice():
    policy = load_policy_text(POLICY)
    wl = policy.workloads[0]
    fc = ReplayForecaster(_history(), wl, _Ramp)
    lag = timedelta(seconds=150)
    horizon = pd.Timedelta(wl.forecast.horizon)
    step = pd.Timedelta(minutes=5)
    seen_ids: dict[int, tuple[int, int, int]] = {}
    alive = []  # every object handed out, so that no id is reused
    previous = None
    now = T0 + timedelta(hours=12)
    for _ in range(int(timedelta(hours=4) / timedelta(seconds=15))):  # 15 s steps: every phase of the grid
        tf = fc.at(now, now - lag)
        frame = fc._frame
        now_ts = pd.Timestamp(now)
        lo = frame.index.searchsorted(min(now_ts, pd.Timestamp(now - lag)) - step, side="right")
        hi = frame.index.searchsorted(now_ts + horizon, side="left")
        assert tf.forecast is not None and (tf.trusted, tf.reasons) == (fc._verdict.trusted, fc._verdict.reasons)
        pd.testing.assert_frame_equal(tf.forecast.frame, frame.iloc[lo:hi])
        # One object per (refit, slice): never handed out again for another slice.
        key = (id(frame), lo, hi)
        alive.append((tf, frame))
        assert seen_ids.setdefault(id(tf), key) == key
        if previous is not None and previous[1] == key:
            assert tf is previous[0]
        previous = (tf, key)
        now += timedelta(seconds=15)
    assert len(seen_ids) > 10  # the slice did move (every 5 minutes, at two phases)


def test_forecast_past_its_frame_says_the_refit_is_overdue():
    policy = load_policy_text(POLICY)
    fc = ReplayForecaster(_history(), policy.workloads[0], _Ramp)
    now = T0 + timedelta(hours=12)
    assert fc.at(now, now).forecast is not None
    fc._last_fit = now + timedelta(days=10)  # no refit due: the frame of `now` stays
    late = now + timedelta(hours=5)  # beyond horizon + refit interval of the frame
    tf = fc.at(late, late)
    assert tf.forecast is None and not tf.trusted
    assert tf.reasons == (f"forecast from {fc._last_fit.isoformat()} has no point at or after now (refit overdue)",)


# --------------------------------------------------------------------------- planner digest
def test_prune_keeps_the_given_rows_and_exactly_the_window():
    now = T0 + timedelta(minutes=30)
    rows = [(T0 + timedelta(minutes=m), m) for m in range(0, 31, 5)]
    mixed = rows[:3] + [list(r) for r in rows[3:5]] + rows[5:]
    kept = prune_recommendations(mixed, now, timedelta(minutes=12))
    assert kept == tuple(r for r in rows if now - timedelta(minutes=12) < r[0] <= now)
    assert [type(r) for r in kept] == [tuple] * len(kept)
    assert kept[-1] is rows[-1] and kept[-2] is rows[-2]  # tuples given are kept as they are
    assert kept[0] == tuple(mixed[4]) and kept[0] is not mixed[4]  # a list became a tuple


def _plain_reference(x):
    """planning._plain as it was written first: a walk with no memory."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return [_plain_reference(getattr(x, f.name)) for f in dataclasses.fields(x)]
    if type(x) is tuple and len(x) > 32 and type(x[0]) is float:
        try:
            return "float64:" + hashlib.sha256(array("d", x).tobytes()).hexdigest()
        except TypeError:
            pass
    if isinstance(x, (tuple, list)):
        return [_plain_reference(v) for v in x]
    if isinstance(x, datetime):
        return x.isoformat()
    return x


_row_kinds = st.sampled_from(["utc", "shanghai", "list", "nested"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.lists(_row_kinds, max_size=6)), min_size=1, max_size=25))
def test_plain_of_moving_windows_equals_a_walk_with_no_memory(moves):
    window: list = []
    minute = 0
    for leave, joins in moves:
        window = window[min(leave, len(window)):]
        for kind in joins:
            minute += 1
            t = T0 + timedelta(minutes=minute)
            if kind == "shanghai":  # the same instant as in UTC, printed differently
                t = t.astimezone(timezone(timedelta(hours=8)))
            row = {"utc": (t, minute), "shanghai": (t, minute), "list": (t, [minute]),
                   "nested": (t, (minute, "x"))}[kind]
            window.append(row)
        x = tuple(window)
        assert planning._plain(x) == _plain_reference(x)
        if window and window[-1][1] == [minute]:
            window[-1][1].append(-1)  # a mutable row changes in place: must not be remembered
    assert planning._plain(tuple(window)) == _plain_reference(tuple(window))


def test_plan_on_the_same_and_on_an_equal_forecast_is_equal():
    policy = load_policy_text(POLICY)
    wl = policy.workloads[0]
    now = T0 + timedelta(hours=3)
    idx = pd.date_range(now - timedelta(minutes=5), periods=30, freq="5min")
    yhat = np.linspace(900.0, 1400.0, 30)
    frame = pd.DataFrame({"yhat": yhat, "yhat_lower": yhat * 0.8, "yhat_upper": yhat * 1.2}, index=idx)
    f1 = Forecast(frame, "m", upper_quantile=0.9)
    f2 = Forecast(frame.copy(), "m", upper_quantile=0.9)
    obs = Observation(demand_now=1000.0, demand_at=now - timedelta(seconds=150))
    state = PlanningState(WorkloadState(replicas=12, ready_replicas=12))
    p1 = planning.plan(TrustedForecast(f1, True), obs, wl, policy, state, now)
    p1b = planning.plan(TrustedForecast(f1, True), obs, wl, policy, state, now)
    p2 = planning.plan(TrustedForecast(f2, True), obs, wl, policy, state, now)
    assert p1 == p1b == p2
    assert p1.inputs_digest == p2.inputs_digest
    arrays, view, _, _ = planning._prepared(f1)
    with pytest.raises(ValueError):
        arrays[1][0, 0] = 0.0  # read-only: no step can change them for the next tick
    assert view.upper is not None and not view.upper.flags.writeable
