"""The replay end to end, the no-leakage rule, and `ebbtide replay` on the command line.

Cases:
- a short synthetic sale with a fast fake forecaster and the real planner: every strategy stays
  within [min, max], ready <= replicas, the timeline's means add up to the summary's
  replica-hours, the war state costs at least the HPA, the post-event window starts at the
  event's end, the `during` window spans the event itself and its figures are the timeline's
  rows in it (replica-hours, demand above ready capacity), the forecast is used (trusted ticks), the explain breakdown adds up to the
  window's replica-hours, and the result is JSON-serialisable;
- no leakage: a spy model records what each fit saw; every history ends before now - metric lag
  (complete intervals only), and every forecast handed to the planner starts at the interval
  holding the newest observation (now - metric lag);
- the real EbbtideForecaster over the last two days of a synthetic trace (slow);
- HPA-owned workload (`hpa:` set; 15 s trace, 1000 rps then a 3000 rps burst the flat fake
  forecast does not foresee; hand-computed pods): every plan moves minReplicas, the next tick
  reads that floor, hpa_max and the HPA's own pods (as the live controller reads them) and the
  HPA applies a new floor at once; Ebbtide's pods are never below the HPA baseline's with a floor
  above the HPA's count, and identical to them with a floor below it; the burst is followed at
  HPA speed (the syncs right after the burst is seen, before Ebbtide's next tick);
- the synthetic sale with `hpa:`: explain splits the floor, the HPA's pods above it are >= 0
  and add up to the window's replica-hours; under-provisioning no worse than the baseline's;
  `format_explain` (bench/replay.py --explain) prints the total, each part's share, the HPA's
  pods above the floor when an HPA owns the workload, "no ticks" for an empty window;
- the recent demand handed to the planner (burst allowance) holds the complete history points
  before the observation, the last burst_lookback of them, equal to the trace;
- without `hpa:`, Ebbtide's pods are exactly the plan's target from tick to tick (no HPA on top);
- the replay's own planner skips the inputs digest (its plans carry none) and decides exactly as a
  replay whose planner digests every tick (timeline and figures equal);
- CLI: a bad CSV, an unknown workload and a bad policy exit 2 with a clear `error:` line;
  --timeline-out writes the documented columns (bitrate caps included when the policy plans
  bitrate) and --json prints the summary; without --json, one table per section (whole replay,
  during and after the event) holds the same figures and their ratios, after a summary line that
  prints the trace's path as written (brackets are not markup) and is never wrapped;
- progress without a terminal: one plain stderr line per tenth of the way, never more often, and
  with --json stdout holds nothing but the JSON document.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecaster.csvio import write_series_csv
from forecaster.series import Forecast, Series
from forecaster.synthetic import SaleSpec, generate
from policies.loading import load_policy_text
from scaler.cli import main
from scaler.cli.replay import _plain_progress
from scaler.planning import plan
from scaler.replay import replay
from scaler.replay.explain import format_explain
from scaler.replay.runner import _default_planner
from scaler.reporting.sources import RecordingPlanner

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)

POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 10m}
workloads:
  - name: live
    target: {kind: Deployment, namespace: default, name: live}
    demand: {query: 'viewers', per_replica: 2000}
    pod_startup: 90s
    scaling: {min_replicas: 2, max_replicas: 300, quantile: 0.9, headroom: 0.15}
    forecast: {lookback: 3d, step: 5m, horizon: 6h, refit_interval: 6h, min_history: 1d, trust_bound: 5}
"""

BITRATE = """
bitrate:
  ladder: [{name: 1080p, kbps: 6000}, {name: 720p, kbps: 3000}, {name: 360p, kbps: 700}]
  tiers:
    - {name: core, hd_floor: 720p, share: 0.4}
    - {name: edge, hd_floor: 360p, share: 0.6}
  rules:
    - {name: always, caps: {edge: 360p}}
"""


class LastDayPeak:
    """Fake forecaster (fast): the last day's peak as yhat_upper, its mean as yhat."""

    name = "last_day_peak"

    def __init__(self, seen: list | None = None):
        self.seen = seen

    def fit(self, history: Series) -> "LastDayPeak":
        if self.seen is not None:
            self.seen.append(("fit", history.end, history.step))
        day = history.values.iloc[-int(timedelta(days=1) / history.step):]
        self.hi, self.mid = float(day.max()), float(day.mean())
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        n = len(index)
        frame = pd.DataFrame({"yhat": np.full(n, self.mid), "yhat_lower": np.zeros(n),
                              "yhat_upper": np.full(n, self.hi)}, index=index)
        return Forecast(frame, self.name, upper_quantile=0.9)


def _sale_trace(days=4, step=timedelta(minutes=5)):
    sale = SaleSpec(day=2, peak_multiplier=5.0, ramp=timedelta(hours=12))
    return generate(T0, days, step, seed=7, sale=sale, base_level=20_000.0)


def test_end_to_end_with_fake_forecaster():
    tr = _sale_trace()
    policy = load_policy_text(POLICY)
    r = replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak)
    tl = r.timeline
    for name in ("ebbtide", "hpa", "static"):
        assert tl[f"replicas_{name}"].between(2, 300).all()
        assert (tl[f"ready_{name}"] <= tl[f"replicas_{name}"] + 1e-9).all()
        hours = tl[f"replicas_{name}"].sum() * tr.series.step_s / 3600
        assert hours == pytest.approx(r.strategies[name].replica_hours, rel=1e-3)
        assert 0 <= r.strategies[name].under_provisioned_share <= 1
    assert r.strategies["static"].replica_hours >= r.strategies["hpa"].replica_hours
    assert r.trusted_ticks > 0 and r.forecast.refits > 0
    [w] = r.windows
    assert w.start == tr.events[0].end and w.end == r.end
    # the event itself: [start, end), its figures those of the timeline's rows in it
    [d] = r.during
    ev = tr.events[0]
    assert (d.event, d.start, d.end) == (ev.name, ev.start, ev.end)
    ts = pd.to_datetime(tl["ts"], utc=True)
    inside = tl[(ts >= ev.start) & (ts < ev.end)]
    for name in ("ebbtide", "hpa", "static"):
        hours = inside[f"replicas_{name}"].sum() * tr.series.step_s / 3600
        assert hours == pytest.approx(d.strategies[name].replica_hours, rel=1e-3)
        short = np.maximum(inside["demand"] - inside[f"ready_{name}"] * policy.workloads[0].demand.per_replica, 0)
        assert short.sum() / inside["demand"].sum() == pytest.approx(
            d.strategies[name].under_provisioned_share, abs=0.02)
    assert d.strategies["static"].replica_hours >= d.strategies["hpa"].replica_hours
    # the explain breakdown adds up to the replica-hours Ebbtide wrote over the window
    ex = w.explain
    assert sum(ex["parts_replica_hours"].values()) == pytest.approx(ex["replica_hours"], abs=1.0)
    assert ex["replica_hours"] == pytest.approx(w.strategies["ebbtide"].replica_hours, rel=0.02)
    assert 0 <= ex["trusted_tick_share"] <= 1
    assert "hpa_above_floor_replica_hours" not in ex
    # bench/replay.py --explain prints it: the total, then each part with its share of it
    lines = format_explain("sale", ex).splitlines()
    assert lines[0].startswith(f"sale: {ex['replica_hours']:.0f} replica-h; trusted "
                               f"{100 * ex['trusted_tick_share']:.0f}% of ticks")
    assert lines[1] == "  parts: " + ", ".join(f"{k} {v:.0f} ({100 * v / ex['replica_hours']:.0f}%)"
                                               for k, v in ex["parts_replica_hours"].items())
    assert not any("HPA-owned" in line for line in lines)
    json.dumps(r.to_dict())


def test_no_leakage_spy_model():
    tr = _sale_trace(days=3)
    policy = load_policy_text(POLICY)
    log: list = []

    def spy_planner(forecast, quality, workload, pol, state, now):
        fc = forecast.forecast
        log.append(("plan", now, None if fc is None else fc.index[0]))
        return plan(forecast, quality, workload, pol, state, now)

    r = replay(tr.series, policy, extra_events=list(tr.events), make_model=lambda: LastDayPeak(log),
               planner=spy_planner)
    lag = timedelta(seconds=150)
    fits = 0
    for i, entry in enumerate(log):
        if entry[0] != "fit":
            continue
        now = next(e[1] for e in log[i:] if e[0] == "plan")
        history_end, step = entry[1], entry[2]
        assert history_end + step <= now - lag, (history_end, now)
        fits += 1
    assert fits >= r.forecast.refits > 0
    step = pd.Timedelta(tr.series.step)
    for _, now, first in (e for e in log if e[0] == "plan"):
        if first is not None:
            # the slice starts at the point holding the newest observation (now - lag): the
            # planner compares the observation with the forecast for its time
            seen = pd.Timestamp(now) - lag
            assert first <= seen < first + step


def test_the_replay_plans_without_the_inputs_digest_and_decides_the_same():
    """The replay's own planner skips hashing the inputs (no audit line is written from it): its
    plans carry no digest, and the timeline and figures equal a replay planning with the digest."""
    tr = _sale_trace(days=3)
    policy = load_policy_text(POLICY)
    digests: list[str] = []

    def digesting(forecast, quality, workload, pol, state, now):
        p = plan(forecast, quality, workload, pol, state, now)
        digests.append(p.inputs_digest)
        return p

    plain = replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak, planner=digesting)
    quick = replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak)
    pd.testing.assert_frame_equal(plain.timeline, quick.timeline)
    assert plain.strategies == quick.strategies
    assert digests and all(len(d) == 16 for d in digests)
    rec = RecordingPlanner(_default_planner())
    replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak, planner=rec)
    assert rec.plans and {p.inputs_digest for p in rec.plans} == {""}


@pytest.mark.slow
def test_recent_demand_for_the_burst_allowance_holds_complete_points_only():
    tr = _sale_trace(days=3)
    policy = load_policy_text(POLICY.replace("headroom: 0.15}", "headroom: 0.15, burst_lookback: 6h}"))
    seen: list = []

    def spy_planner(forecast, quality, workload, pol, state, now):
        seen.append((now, quality.recent_demand))
        return plan(forecast, quality, workload, pol, state, now)

    replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak, planner=spy_planner)
    lag = timedelta(seconds=150)
    values = tr.series.values
    given = [(now, r) for now, r in seen if r is not None]
    assert len(given) >= len(seen) - 1  # only the very first tick has no complete point yet
    for now, r in given:
        assert r.step == timedelta(minutes=5)
        end = r.start + len(r.values) * r.step
        assert end <= now - lag < end + r.step  # every complete point, nothing after the observation's
        assert len(r.values) <= 72  # burst_lookback 6h of 5-minute points
        assert list(r.values) == list(values.loc[r.start:end - r.step])
    # once 6 h of history are complete the window is full
    assert all(len(r.values) == 72 for now, r in given if now - T0 > timedelta(hours=7))


def test_the_lookback_peak_is_filled_as_the_controller_fills_it():
    """Bitrate rules with `traffic_below` compare the traffic with `Observation.lookback_peak`;
    the replay left it empty (the planner sweep). It is the highest point of the forecast history
    the controller reads: the lookback's complete points before the observation."""
    tr = _sale_trace(days=3)
    policy = load_policy_text(POLICY.replace("lookback: 3d", "lookback: 1d"))
    seen: list = []

    def spy_planner(forecast, quality, workload, pol, state, now):
        seen.append((quality.demand_at, quality.lookback_peak))
        return plan(forecast, quality, workload, pol, state, now)

    replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak, planner=spy_planner)
    values, step = tr.series.values, pd.Timedelta(tr.series.step)
    checked = 0
    for at, peak in seen:
        at = pd.Timestamp(at)
        window = values[(values.index >= at - pd.Timedelta(days=1)) & (values.index + step <= at)]
        assert peak == (pytest.approx(float(window.max())) if len(window) else None), at
        checked += len(window) > 0
    assert checked >= len(seen) - 1 and len({p for _, p in seen}) > 3  # the peak moves with the window


def test_real_model_short_replay():
    tr = generate(T0, 9, timedelta(hours=1), seed=3, sale=SaleSpec(day=7, peak_multiplier=4.0))
    policy = load_policy_text(POLICY.replace("lookback: 3d", "lookback: 28d").replace(
        "min_history: 1d", "min_history: 6d").replace("trust_bound: 5", "trust_bound: 0.35"))
    r = replay(tr.series, policy, extra_events=list(tr.events), start=T0 + timedelta(days=7))
    assert r.forecast.refits >= 8 and not r.forecast.failures
    assert r.timeline["replicas_ebbtide"].between(2, 300).all()
    assert r.strategies["ebbtide"].replica_hours > 0


# --------------------------------------------------------------------------- CLI
def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _small_csv(tmp_path):
    idx = pd.date_range(T0, periods=6, freq="h")
    s = Series(pd.Series([3000.0, 5000, 9000, 4000, 3000, 2500], index=idx), timedelta(hours=1), "t")
    p = tmp_path / "trace.csv"
    write_series_csv(s, p)
    return str(p)


def test_cli_bad_csv_exits_2(tmp_path, capsys):
    csv = _write(tmp_path, "bad.csv", "ts,value\n2026-03-02T00:00:00Z,1\nyesterday,2\n")
    pol = _write(tmp_path, "p.yaml", POLICY)
    assert main(["replay", "--csv", csv, "--policy", pol]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "bad.csv:3" in err and "yesterday" in err


def test_cli_unknown_workload_exits_2(tmp_path, capsys):
    pol = _write(tmp_path, "p.yaml", POLICY)
    assert main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--workload", "nope"]) == 2
    assert "unknown workload 'nope'; the policy has: live" in capsys.readouterr().err


def test_cli_bad_policy_exits_2(tmp_path, capsys):
    pol = _write(tmp_path, "p.yaml", POLICY.replace("max_replicas: 300", "max_replicas: 1"))
    assert main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "p.yaml" in err and "max_replicas" in err


def test_cli_bad_time_exits_2(tmp_path, capsys):
    pol = _write(tmp_path, "p.yaml", POLICY)
    assert main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--start", "2026-03-02"]) == 2
    assert "--start" in capsys.readouterr().err


def test_cli_timeline_and_json(tmp_path, capsys):
    pol = _write(tmp_path, "p.yaml", POLICY + BITRATE)
    out = tmp_path / "timeline.csv"
    assert main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--timeline-out", str(out),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    tl = pd.read_csv(out)
    assert list(tl.columns) == [
        "ts", "demand", "replicas_ebbtide", "replicas_hpa", "replicas_static", "ready_ebbtide",
        "ready_hpa", "ready_static", "cap_core_kbps", "cap_edge_kbps", "forecast_trusted"]
    assert len(tl) == 6 and tl["demand"].tolist() == [3000, 5000, 9000, 4000, 3000, 2500]
    assert set(report["strategies"]) == {"ebbtide", "hpa", "static"}
    eb = report["strategies"]["ebbtide"]
    assert {"replica_hours", "compute_cost", "under_provisioned_share", "under_provisioned_minutes",
            "scaling_actions", "egress_gb"} <= set(eb)
    assert set(eb["egress_gb"]) == {"core", "edge"}
    # The baselines deliver every tier at the ladder top; a cap can only lower egress.
    assert eb["egress_gb"]["edge"] <= report["strategies"]["hpa"]["egress_gb"]["edge"]
    assert report["simulation"]["wall_s"] >= 0


def test_progress_lines_once_per_tenth(capsys):
    report = _plain_progress(t0=0.0)
    for k in range(101):  # called every simulated hour in a real replay: here 101 times
        report(k / 100)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert all(line.startswith("replay: ") and line.endswith("s elapsed") for line in lines)


def test_cli_json_stdout_stays_clean_and_progress_goes_to_stderr(tmp_path, capsys):
    pol = _write(tmp_path, "p.yaml", POLICY)
    assert main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # nothing but the JSON document on stdout
    assert set(report["strategies"]) == {"ebbtide", "hpa", "static"}
    progress = [line for line in captured.err.splitlines() if line.startswith("replay: ")]
    assert progress and progress[-1].startswith("replay: 100% done")


# --------------------------------------------------------------------------- HPA-owned workloads
HPA_POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 5m}
workloads:
  - name: api
    target: {kind: Deployment, namespace: shop, name: api}
    hpa: {name: api}
    demand: {query: 'rps', per_replica: 100}
    pod_startup: 30s
    scaling: {min_replicas: 2, max_replicas: 200, quantile: 0.9, headroom: 0.5}
    forecast: {lookback: 1d, step: 5m, horizon: 1h, refit_interval: 1h, min_history: 12h}
"""
HPA_START = T0 + timedelta(days=1)
BURST = HPA_START + timedelta(hours=1, minutes=1)  # 1000 -> 3000 rps; seen at +150 s (01:03:30)
STEP15 = timedelta(seconds=15)


class Flat1000:
    """Fake forecaster: 1000 rps forever (the burst is above the forecast)."""

    name = "flat"

    def fit(self, history: Series) -> "Flat1000":
        return self

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        n = len(index)
        frame = pd.DataFrame({"yhat": np.full(n, 1000.0), "yhat_lower": np.full(n, 900.0),
                              "yhat_upper": np.full(n, 1000.0)}, index=index)
        return Forecast(frame, self.name, upper_quantile=0.9)


def _hpa_replay(policy_text: str = HPA_POLICY):
    """Replay a 15 s trace (1000 rps, 3000 from BURST) over [HPA_START, +2 h) with a spy planner.

    Returns the result, the timeline indexed by time (one row per 15 s step) and the log of
    (now, WorkloadState read, Plan) per tick."""
    idx = pd.date_range(T0, HPA_START + timedelta(hours=2), freq="15s", inclusive="left")
    values = np.where(idx >= BURST, 3000.0, 1000.0)
    trace = Series(pd.Series(values, index=idx), STEP15, "burst")
    log: list = []

    def spy(forecast, obs, workload, pol, state, now):
        p = plan(forecast, obs, workload, pol, state, now)
        log.append((now, state.cluster, p))
        return p

    r = replay(trace, load_policy_text(policy_text), start=HPA_START, make_model=Flat1000, planner=spy)
    tl = r.timeline.set_index(pd.to_datetime(r.timeline["ts"], utc=True))
    return r, tl, log


def test_hpa_owned_floor_is_the_plan_target():
    r, tl, log = _hpa_replay()
    assert len(log) == 24 and all(p.apply_via == "hpa_min_replicas" for _, _, p in log)
    # first read: the HPA as it stands (minReplicas = the policy's 2), the warm start ceil(1000 / 80) = 13
    _, first, _ = log[0]
    assert (first.hpa_min, first.hpa_max, first.replicas, first.ready_replicas) == (2, 200, 13, 13)
    for (_, _, prev), (now, state, p) in zip(log, log[1:]):
        assert state.hpa_min == prev.target_replicas  # the floor is the previous plan's target
        assert state.hpa_max == 200
        before = tl.loc[pd.Timestamp(now) - STEP15]  # what the controller reads: the HPA's pods
        assert (state.replicas, state.ready_replicas) == (before["replicas_ebbtide"], before["ready_ebbtide"])
    for now, _, p in log:
        assert tl.loc[pd.Timestamp(now), "replicas_ebbtide"] >= p.target_replicas  # the HPA applies the floor at once
    # hand-checked: ceil(1000 x 1.5 / 100) = 15 before the burst is seen, ceil(3000 x 1.5 / 100) = 45 after
    targets = {now: p.target_replicas for now, _, p in log}
    assert targets[HPA_START] == targets[BURST - timedelta(minutes=1)] == 15
    assert targets[HPA_START + timedelta(hours=1, minutes=5)] == 45


def test_hpa_owned_never_below_the_hpa_baseline():
    _, tl, _ = _hpa_replay()
    quiet = tl[tl.index < BURST + timedelta(seconds=150)]
    assert (quiet["replicas_hpa"] == 13).all()  # ceil(1000 / (100 x 0.8)) = 13
    assert (quiet["replicas_ebbtide"].iloc[1:] == 15).all()  # floor 15 from the first tick on
    assert (tl["replicas_ebbtide"] >= tl["replicas_hpa"]).all()
    assert (tl["ready_ebbtide"] >= tl["ready_hpa"]).all()
    # a floor under what the HPA holds anyway (headroom 0.2: ceil(1000 x 1.2 / 100) = 12 < 13,
    # ceil(3000 x 1.2 / 100) = 36 < 38) changes nothing: the same pods as the baseline, step by step
    _, low, log = _hpa_replay(HPA_POLICY.replace("headroom: 0.5", "headroom: 0.2"))
    assert {p.target_replicas for _, _, p in log} == {12, 36}
    assert (low["replicas_ebbtide"] == low["replicas_hpa"]).all()
    assert (low["ready_ebbtide"] == low["ready_hpa"]).all()


def test_hpa_owned_follows_a_burst_at_hpa_speed():
    r, tl, _ = _hpa_replay()
    seen = BURST + timedelta(seconds=150)  # 01:03:30; Ebbtide's next tick is at 01:05:00
    at = lambda dt_s, col: tl.loc[pd.Timestamp(seen) + timedelta(seconds=dt_s), col]  # noqa: E731
    # first sync that sees the burst: +max(4 pods, 100%): baseline 13 -> 26, Ebbtide's HPA 15 -> 30
    assert (at(-15, "replicas_hpa"), at(0, "replicas_hpa")) == (13, 26)
    assert (at(-15, "replicas_ebbtide"), at(0, "replicas_ebbtide")) == (15, 30)
    # next sync: both at ceil(3000 / 80) = 38, well before Ebbtide's tick raises the floor to 45
    assert at(15, "replicas_hpa") == at(15, "replicas_ebbtide") == 38
    assert at(75, "replicas_ebbtide") == 38 and at(90, "replicas_ebbtide") == 45  # the tick at 01:05
    # ready capacity covers 3000 rps: Ebbtide's 30 pods at 01:04:00, the baseline's 38 at 01:04:15
    first_ok = {}
    for s in ("ebbtide", "hpa"):
        ok = (tl[f"ready_{s}"] * 100 >= tl["demand"])[tl.index >= BURST]
        first_ok[s] = ok.index[~ok][-1] + STEP15  # covered from then on
    assert first_ok["ebbtide"] == pd.Timestamp(seen) + timedelta(seconds=30)
    assert first_ok["hpa"] == pd.Timestamp(seen) + timedelta(seconds=45)
    assert r.strategies["ebbtide"].under_provisioned_share < r.strategies["hpa"].under_provisioned_share


def test_without_hpa_ebbtide_scales_directly():
    policy = HPA_POLICY.replace("    hpa: {name: api}\n", "")
    _, tl, log = _hpa_replay(policy)
    assert all(p.apply_via == "scale" and state.hpa_min is None for _, state, p in log)
    # no HPA on top: the pods are the plan's target from each tick until the next one
    for (now, _, p), (nxt, _, _) in zip(log, log[1:] + [(HPA_START + timedelta(hours=2), None, None)]):
        held = tl[(tl.index >= pd.Timestamp(now)) & (tl.index < pd.Timestamp(nxt))]
        assert (held["replicas_ebbtide"] == p.target_replicas).all()


def test_hpa_owned_sale_explain_splits_the_floor():
    tr = _sale_trace()
    policy = load_policy_text(POLICY.replace("    demand:", "    hpa: {name: live}\n    demand:"))
    r = replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak)
    [w] = r.windows
    ex = w.explain
    # explain splits the floor Ebbtide wrote; the HPA's pods are at least that floor after each tick
    assert ex["hpa_above_floor_replica_hours"] >= 0
    assert ex["replica_hours"] + ex["hpa_above_floor_replica_hours"] == pytest.approx(
        w.strategies["ebbtide"].replica_hours, abs=0.1)
    assert f"the HPA ran {ex['hpa_above_floor_replica_hours']:.0f} replica-h above it" in format_explain("sale", ex)
    assert format_explain("sale", {}) == "sale: no ticks"
    assert r.strategies["ebbtide"].under_provisioned_share <= r.strategies["hpa"].under_provisioned_share


def test_cli_summary_line_prints_the_path_as_written_on_one_line(tmp_path, capsys):
    folder = tmp_path / "traces[b]"  # [b] is rich markup for bold: it must not be swallowed
    folder.mkdir()
    csv = folder / "t[1].csv"
    csv.write_text(open(_small_csv(tmp_path)).read())
    assert main(["replay", "--csv", str(csv), "--policy", _write(tmp_path, "p.yaml", POLICY)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{csv} workload live: 2026-03-02T00:00:00Z .. ")
    assert first.endswith(" s") and "of ticks, wall " in first  # not wrapped at the 120 columns of a log


def test_cli_tables_show_the_json_figures(tmp_path, capsys):
    """Without --json, one table per section (whole replay, during and after each event), each
    strategy's row holding the --json figures and their ratios to the war state and the HPA."""
    pol = _write(tmp_path, "p.yaml", POLICY)
    events = _write(tmp_path, "e.yaml", "events:\n  - {name: flash, kind: sale, start: 2026-03-02T01:00:00Z, "
                                        "peak: 2026-03-02T02:00:00Z, end: 2026-03-02T03:00:00Z}\n")
    args = ["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--events", events]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    text = capsys.readouterr().out
    titles = [line.strip() for line in text.splitlines()
              if line.strip().startswith(("whole replay", "during ", "after "))]
    sections = [report["strategies"], *(w["strategies"] for w in report["during"]),
                *(w["strategies"] for w in report["windows"])]
    assert [t.split(" (")[0] for t in titles] == ["whole replay", "during flash", "after flash"]
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()
            if line.startswith("│") and line.split("│")[1].strip() in ("ebbtide", "hpa", "war state")]
    assert len(rows) == 3 * len(sections)
    for k, strategies in enumerate(sections):
        war, hpa = strategies["static"]["replica_hours"], strategies["hpa"]["replica_hours"]
        for row, name in zip(rows[3 * k:3 * k + 3], ("ebbtide", "hpa", "static"), strict=True):
            s = strategies[name]
            assert row[1] == f"{s['replica_hours']:.1f}"
            assert row[2] == f"{s['replica_hours'] / war:.2f}x" and row[3] == f"{s['replica_hours'] / hpa:.2f}x"
            assert row[5] == f"{100 * s['under_provisioned_share']:.3f}%" and row[8] == str(s["scaling_actions"])


def test_cli_demand_shape_linear_runs_demand_on_lines(tmp_path, capsys):
    pol = _write(tmp_path, "p.yaml", POLICY)
    step_out, line_out = tmp_path / "step.csv", tmp_path / "line.csv"
    assert main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--timeline-out", str(step_out),
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--timeline-out", str(line_out),
                 "--json", "--demand-shape", "linear"]) == 0
    assert set(json.loads(capsys.readouterr().out)["strategies"]) == {"ebbtide", "hpa", "static"}
    step, line = pd.read_csv(step_out)["demand"], pd.read_csv(line_out)["demand"]
    assert step.tolist() == [3000, 5000, 9000, 4000, 3000, 2500]
    # The demand at each row's start: on the lines, halfway between the two intervals' values
    # (the first half-interval held).
    assert line.tolist() == [3000, 4000, 7000, 6500, 3500, 2750]
    with pytest.raises(SystemExit):
        main(["replay", "--csv", _small_csv(tmp_path), "--policy", pol, "--demand-shape", "smooth"])
