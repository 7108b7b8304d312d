"""Inputs a new user gives the planner, replay, controller and report paths: regressions found by
feeding `ebbtide replay`, `policy validate`, `report` and a controller tick generated traces and
policy variations (HPA-owned, bitrate tiers, every breach action, min == max, per_replica 0.001
and 1e12, pod_startup 0s/30m, far-zone, overlapping and year-end events, zeros, NaN, 1e9 spikes).

Cases (fast, no Prophet fit):
- `replay --events FILE` and `report --events FILE` reusing an event name of the policy exit 2
  naming the events file, the entry's line and the policy file (replay said "both in the policy
  and in the events file" without a file; report silently dropped the file's event from its
  calendar and then failed inside the replay with that message);
- a policy with `.nan` / `.inf` numbers is refused at load naming file, line and field (a NaN
  quality threshold never breached, an infinite per_replica sized every workload to its floor,
  a NaN price made every cost NaN); `max_replicas` above Kubernetes' int32 is refused likewise;
- the replay's simulated cluster keeps pods as cohorts: on random scale sequences it agrees
  with a pod-by-pod model (ready counts at every time asked), and a billion pods cost no more
  than a few (per_replica 0.001 on 30,000 viewers made 35 million floats per strategy: 2.2 GB
  for a 12-hour replay);
- `report --timeline`: a range holding fewer than two rows, an unparseable `ts`, a pod count
  that is not a number >= 0, a --replay-json naming a workload the policy lacks, and a
  --replay-json that is not an object exit 2 naming the file (and line, column) instead of an
  IndexError/ValueError/KeyError traceback; `report --csv` over a one-interval range likewise.
"""

from __future__ import annotations

import bisect
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.errors import InputFileError
from policies.loading import load_policy_text
from scaler.cli import main
from scaler.replay.cluster import SimulatedCluster

POLICY = textwrap.dedent("""\
    apiVersion: ebbtide/v1
    events:
      - {name: singles-day, kind: sale, start: 2026-11-10T20:00:00+08:00, peak: 2026-11-11T00:00:00+08:00,
         end: 2026-11-12T00:00:00+08:00, recurrence: yearly}
    workloads:
      - name: live
        target: {kind: Deployment, namespace: live, name: edge}
        demand: {query: 'sum(edge_viewers)', per_replica: PER_REPLICA}
        pod_startup: 2m
        scaling: {min_replicas: 2, max_replicas: MAX_REPLICAS}
        quality:
          - {name: rebuffering, query: rebuf, threshold: THRESHOLD}
    cost: {cpu_core_hour: CPU_PRICE}
    """)


def policy_text(per_replica="500", max_replicas="300", threshold="0.01", cpu_price="0.03") -> str:
    return (POLICY.replace("PER_REPLICA", per_replica).replace("MAX_REPLICAS", max_replicas)
            .replace("THRESHOLD", threshold).replace("CPU_PRICE", cpu_price))


def hourly_trace(path, hours: int = 48, start: str = "2026-11-01T00:00:00Z"):
    idx = pd.date_range(start, periods=hours, freq="1h")
    pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": 1000 + 10 * np.arange(hours)}).to_csv(
        path, index=False)
    return path


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# --------------------------------------------------------------------------- --events duplicates
@pytest.mark.parametrize("command", ["replay", "report"])
def test_events_file_reusing_a_policy_event_name_names_its_line_and_the_policy(tmp_path, capsys, command):
    policy = tmp_path / "p.yaml"
    policy.write_text(policy_text())
    events = tmp_path / "more.yaml"
    events.write_text(textwrap.dedent("""\
        events:
          - {name: partner-costream, kind: joint_live, start: 2026-11-01T10:00:00Z, peak: 2026-11-01T12:00:00Z,
             end: 2026-11-01T14:00:00Z}
          - name: singles-day
            kind: sale
            start: 2026-11-10T12:00:00Z
            peak: 2026-11-10T16:00:00Z
            end: 2026-11-11T16:00:00Z
        """))
    trace = hourly_trace(tmp_path / "t.csv")
    extra = ["--out", tmp_path / "rep"] if command == "report" else []
    code, err = run_cli(capsys, command, "--csv", trace, "--policy", policy, "--events", events, *extra)
    assert code == 2
    assert err == (f"error: {events}:4 events[1].name: event name 'singles-day' is already in the policy "
                   f"{policy}; rename one of them\n")


# --------------------------------------------------------------------------- policy numbers
@pytest.mark.parametrize("field, kw, line", [
    ("workloads[0].demand.per_replica", {"per_replica": ".inf"}, 8),
    ("workloads[0].quality[0].threshold", {"threshold": ".nan"}, 12),
    ("cost.cpu_core_hour", {"cpu_price": ".nan"}, 13),
])
def test_nan_and_inf_numbers_are_refused_naming_file_line_and_field(field, kw, line):
    with pytest.raises(InputFileError) as info:
        load_policy_text(policy_text(**kw), "p.yaml")
    assert info.value.problems == [f"p.yaml:{line} {field}: Input should be a finite number"]


def test_max_replicas_beyond_kubernetes_int32_is_refused():
    assert load_policy_text(policy_text(max_replicas="2147483647"), "p.yaml").workloads[0].scaling.max_replicas \
        == 2**31 - 1
    with pytest.raises(InputFileError) as info:
        load_policy_text(policy_text(max_replicas="2147483648"), "p.yaml")
    assert info.value.problems == ["p.yaml:10 workloads[0].scaling.max_replicas: Input should be less than "
                                   "or equal to 2147483647"]


# --------------------------------------------------------------------------- simulated cluster
class PodByPod:
    """The reference model: one ready time per pod, sorted; scale-down drops the latest."""

    def __init__(self, replicas: int, startup_s: float, now_s: float):
        self.startup_s = startup_s
        self.ready_at = [now_s] * replicas

    def scale(self, target: int, now_s: float) -> None:
        if target > len(self.ready_at):
            self.ready_at += [now_s + self.startup_s] * (target - len(self.ready_at))
        else:
            del self.ready_at[target:]

    def ready(self, now_s: float) -> int:
        return bisect.bisect_right(self.ready_at, now_s)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 20), st.sampled_from([0.0, 45.0, 1800.0]),
       st.lists(st.tuples(st.integers(0, 40), st.integers(0, 900)), min_size=1, max_size=40))
def test_cohort_cluster_agrees_with_a_pod_by_pod_model(start, startup_s, ops):
    c, ref = SimulatedCluster(start, startup_s, 0), PodByPod(start, startup_s, 0)
    t = 0
    for target, gap in ops:
        t += gap
        changed = c.scale(target, t)
        assert changed == (target != len(ref.ready_at))
        ref.scale(target, t)
        assert c.replicas == len(ref.ready_at)
        for probe in (t, t + startup_s / 2, t + startup_s - 1, t + startup_s, t + 2 * startup_s):
            assert c.ready(probe) == ref.ready(probe)


def test_a_billion_pods_are_simulated_as_cohorts():
    c = SimulatedCluster(10**9, pod_startup_s=120, now_s=0)
    assert c.scale(2 * 10**9, 60)          # a billion more, ready at 180
    assert c.scale(1_500_000_000, 90)      # half of the starting ones go first
    assert (c.replicas, c.ready(179), c.ready(180)) == (1_500_000_000, 10**9, 1_500_000_000)
    assert c.scale(10, 200)
    assert (c.replicas, c.ready(200)) == (10, 10)
    assert len(c._ready_at_s) == 1           # memory grows with scale-ups alive, not with pods


# --------------------------------------------------------------------------- report inputs
@pytest.fixture()
def timeline(tmp_path):
    ts = pd.date_range("2026-11-12T00:00:00Z", periods=4, freq="1h")
    frame = pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "demand": 20000.0,
                          "replicas_ebbtide": 9.0, "replicas_hpa": 10.0, "replicas_static": 40.0,
                          "ready_ebbtide": 9.0, "ready_hpa": 10.0, "ready_static": 40.0, "forecast_trusted": 1.0})
    path = tmp_path / "tl.csv"
    frame.to_csv(path, index=False)
    policy = tmp_path / "p.yaml"
    policy.write_text(policy_text())
    return path, policy


def report(capsys, tmp_path, policy, *args) -> tuple[int, str]:
    return run_cli(capsys, "report", "--policy", policy, "--out", tmp_path / "out", *args)


def test_report_timeline_accepts_the_fixture(tmp_path, capsys, timeline):
    path, policy = timeline
    code, err = report(capsys, tmp_path, policy, "--timeline", path)
    assert (code, err) == (0, "")


def test_report_timeline_range_with_no_rows(tmp_path, capsys, timeline):
    """A range holding no row is an error; one row is one interval of the timeline's spacing, a
    report (the finance sweep's F13: a one-hour report of an hourly timeline)."""
    path, policy = timeline
    code, err = report(capsys, tmp_path, policy, "--timeline", path, "--start", "2030-01-01T00:00:00Z")
    assert code == 2
    assert err == (f"error: --timeline {path}: 0 row(s) between 2030-01-01T00:00:00Z and its end; a report needs "
                   f"at least one interval\n")
    code, err = report(capsys, tmp_path, policy, "--timeline", path, "--start", "2026-11-12T03:00:00Z")
    assert (code, err) == (0, "")


@pytest.mark.parametrize("column, value, expected", [
    ("ts", "2026-11-12 nonsense", "ts '2026-11-12 nonsense' is not an ISO 8601 time"),
    ("replicas_hpa", "abc", "replicas_hpa 'abc' is not a pod count >= 0"),
    ("ready_static", "-3", "ready_static '-3' is not a pod count >= 0"),
    ("ready_static", "", "ready_static '' is not a pod count >= 0"),
    ("demand", "lots", "demand 'lots' is not a finite number >= 0 (empty: unknown)"),
])
def test_report_timeline_bad_cell_names_line_and_column(tmp_path, capsys, timeline, column, value, expected):
    path, policy = timeline
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[2, column] = value  # data row 2 is file line 4
    frame.to_csv(path, index=False)
    code, err = report(capsys, tmp_path, policy, "--timeline", path)
    assert (code, err) == (2, f"error: --timeline {path}:4: {expected}\n")


def test_report_timeline_replay_json_of_another_policy(tmp_path, capsys, timeline):
    path, policy = timeline
    summary = tmp_path / "r.json"
    summary.write_text('{"workload": "edge", "notes": []}')
    code, err = report(capsys, tmp_path, policy, "--timeline", path, "--replay-json", summary)
    assert (code, err) == (2, f"error: --replay-json {summary}: workload 'edge' is not in the policy {policy} "
                              f"(live); give --workload\n")
    summary.write_text("[1, 2]")
    code, err = report(capsys, tmp_path, policy, "--timeline", path, "--replay-json", summary)
    assert (code, err) == (2, f"error: --replay-json {summary}: not the JSON object `ebbtide replay --json` prints\n")


def test_report_csv_over_one_interval(tmp_path, capsys):
    policy = tmp_path / "p.yaml"
    policy.write_text(policy_text())
    trace = hourly_trace(tmp_path / "t.csv")
    code, err = report(capsys, tmp_path, policy, "--csv", trace, "--start", "2026-11-02T23:00:00Z")
    assert code == 2
    assert err == ("error: report: the replay timeline has 1 interval(s); a report needs at least two (the "
                   "interval is the rows' spacing): widen --start/--end\n")
