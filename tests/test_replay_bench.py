"""The replay benchmark's bookkeeping (bench/replay.py), without replaying anything.

Cases:
- the demand floor: replica-hours of ceil(demand / per_replica) over a range, each point
  covering [ts, ts + step) clipped to the range, missing values 0 pods, min_replicas held when
  given, binary noise (330 / 110 = 3.0000000000000004) buying no pod (hand-computed);
- the 5-minute traces are in the default set, with the same events as their hourly files;
- the table: a row from an older --json run (no floor fields) prints "-" in the feasibility
  column; a row whose floor is above 0.5x war state is called infeasible in plain words, one
  below it is not, and one whose floor is above it only with min_replicas held says so; a row
  with `during` (the event itself) prints its under-provisioning and replica-hours per strategy;
  a trace named with [brackets] is printed as written (not read as markup);
- a trace of your own (--csv, --events): the first event (or the named one) is measured, the
  others stay in its calendar, an unknown name is an error naming the file's events; a bad CSV
  exits 2 with `error:` naming file and line, no traceback;
- --policy: another policy's workload is replayed (its first when --workload is not given, `edge`
  of the reference), scaled by the same rule with its own scaling fields (the minimal policy's
  defaults); an unknown workload or a policy that does not load exits 2 naming the file; end to
  end on six days of a trace of your own (reactive: no fit), the JSON names the policy and its
  workload, per_replica follows the rule, the window ends with the trace;
- the measured occurrence: a yearly event written in another year is measured at the last
  occurrence ending inside the trace (NAME@YEAR); an event that does not end inside the trace
  with data after it is an error naming both ranges; --after 0, an unknown --country or
  --calendar-tz exit 2 before any replay;
- --synthetic: a seeded synthetic trace is written as a CSV that reads back equal to the
  generated series, with its calendar; the measured event is its last sale/joint live event
  (the second of a two-event seed), the other stays in the calendar; an unknown seed exits 2.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import load_bench
from forecaster.series import Series
from policies.errors import EbbtideError


@pytest.fixture(scope="module")
def bench():
    return load_bench("replay")


def hourly(values: list[float]) -> Series:
    index = pd.date_range("2026-01-01T00:00:00Z", periods=len(values), freq="h")
    return Series(pd.Series(values, index=index, dtype=float), pd.Timedelta(hours=1).to_pytimedelta(), "t")


def test_demand_floor_integrates_whole_pods_over_the_clipped_range(bench):
    s = hourly([250.0, 0.0, float("nan"), 1001.0])
    # 00:30-03:30: half of 3 pods, 0 pods, a missing hour (0), half of 11 pods.
    assert bench.demand_floor(s, 100.0, "2026-01-01T00:30:00Z", "2026-01-01T03:30:00Z") == pytest.approx(7.0)
    # min_replicas 2 holds 2 pods in the empty and missing hours: 1.5 + 2 + 2 + 5.5.
    assert bench.demand_floor(s, 100.0, "2026-01-01T00:30:00Z", "2026-01-01T03:30:00Z", 2) == pytest.approx(11.0)
    # A range outside the trace costs nothing.
    assert bench.demand_floor(s, 100.0, "2026-01-02T00:00:00Z", "2026-01-02T05:00:00Z") == 0.0


def test_per_replica_comes_from_the_median_or_the_busy_hours_median(bench):
    assert bench.typical_demand(hourly([0.0, 10.0, 30.0, float("nan")])) == 10.0  # median of 0, 10, 30
    # A shop's nights and closed days: idle more than half the time, the median of the non-zero hours.
    assert bench.typical_demand(hourly([0.0, 0.0, 0.0, 20.0, 40.0])) == 30.0
    with pytest.raises(EbbtideError, match="no demand above 0"):
        bench.typical_demand(hourly([0.0, 0.0, float("nan")]))


def test_demand_floor_rounds_binary_noise_before_the_ceiling(bench):
    s = hourly([330.0, 330.0])
    assert bench.demand_floor(s, 110.0, "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z") == pytest.approx(6.0)


def test_five_minute_traces_are_in_the_default_set_with_the_hourly_events(bench):
    by_name = {t.name: t for t in bench.TRACES}
    assert by_name["nasa-5min"].file == "nasa_jul95_5min.csv"
    assert by_name["aapl-5min"].file == "nab_twitter_aapl_5min.csv"
    assert by_name["nasa-5min"].event == by_name["nasa"].event
    assert by_name["aapl-5min"].event == by_name["aapl"].event


def row(**extra) -> dict:
    strat = {"replica_hours": 100.0, "under_provisioned_share": 0.01, "under_provisioned_minutes": 5.0,
             "scaling_actions": 3}
    base = {"trace": "t", "after_days": 14, "workload": "edge",
            "strategies": {"ebbtide": dict(strat), "hpa": dict(strat), "static": dict(strat, replica_hours=150.0)},
            "ebbtide_vs_war": 0.67, "ebbtide_vs_hpa": 1.0, "under_vs_hpa": 1.0,
            "simulation": {"wall_s": 1.0, "refits": 1, "fit_s_median": 0.1, "trusted_tick_share": 1.0}}
    base.update(extra)
    return base


def test_table_reads_older_json_and_names_an_infeasible_trace(bench, capsys):
    bench.print_table([row()])
    old = capsys.readouterr().out
    assert "floor vs war" in old and "INFEASIBLE" not in old
    bench.print_table([row(floor_vs_war=0.6, floor_min_replicas_vs_war=0.7)])
    out = capsys.readouterr().out
    assert "0.60x (0.70x)" in out
    assert "t: INFEASIBLE vs war: the demand floor" in out and "0.60x war state" in out
    bench.print_table([row(floor_vs_war=0.3, floor_min_replicas_vs_war=0.4)])
    assert "INFEASIBLE" not in capsys.readouterr().out
    bench.print_table([row(floor_vs_war=0.3, floor_min_replicas_vs_war=0.6)])
    out = capsys.readouterr().out.replace("\n", " ")
    assert "t: INFEASIBLE vs war with the policy's min_replicas" in out and "0.60x war state" in out

    assert "during the event itself" not in out  # an older row has no `during`
    d = {"start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z",
         "strategies": {k: dict(v) for k, v in row()["strategies"].items()}}
    d["strategies"]["ebbtide"]["under_provisioned_share"] = 0.0
    d["strategies"]["hpa"]["under_provisioned_share"] = 0.0123
    bench.print_table([row(during=d)])
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "t: during the event itself (2026-01-05T00:00:00Z .. 2026-01-06T00:00:00Z" in out
    assert "under-provisioned 0.00% Ebbtide, 1.23% HPA, 1.00% war state; replica-h 100 / 100 / 150" in out

    bench.print_table([row(trace="mine[b]")])  # a --csv trace's name: [b] is not markup
    out = capsys.readouterr().out
    assert "│ mine[b]" in out and "mine[b]: targets vs war" in out


EVENTS = """events:
  - {name: launch, kind: joint_live, start: 2026-01-05T00:00:00Z, peak: 2026-01-05T12:00:00Z, end: 2026-01-06T00:00:00Z}
  - {name: new-year, kind: holiday, start: 2026-01-01T00:00:00Z, peak: 2026-01-01T12:00:00Z, end: 2026-01-02T00:00:00Z}
"""


def test_custom_trace_measures_the_first_or_named_event_and_models_the_rest(bench, tmp_path):
    events = tmp_path / "events.yaml"
    events.write_text(EVENTS)
    csv = tmp_path / "mine.csv"
    t = bench.custom_trace(csv, events, country="US")
    assert (t.name, t.file, t.country) == ("mine", str(csv.resolve()), "US")
    assert t.event["name"] == "launch" and [e["name"] for e in t.calendar] == ["new-year"]
    named = bench.custom_trace(csv, events, "new-year")
    assert named.event["name"] == "new-year" and [e["name"] for e in named.calendar] == ["launch"]
    with pytest.raises(EbbtideError, match="no event named 'nope'"):
        bench.custom_trace(csv, events, "nope")


def test_custom_trace_with_a_bad_csv_exits_2_naming_file_and_line(bench, tmp_path, capsys):
    events = tmp_path / "events.yaml"
    events.write_text(EVENTS)
    csv = tmp_path / "bad.csv"
    csv.write_text("ts,value\n2026-01-01T00:00:00Z,5\n2026-01-01T01:00:00Z,-1\n")
    assert bench.main(["--csv", str(csv), "--events", str(events)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.csv:3" in err


def test_the_measured_occurrence_of_a_yearly_event_is_the_last_that_ends_inside_the_trace(bench):
    """A yearly event written once, in another year, was measured at the year it was written in:
    the replay range fell outside the trace and the error asked for --start/--end, which the
    bench does not have. Now the occurrence measured is the last one that ends inside the trace
    with data after it; an event that does not is an error naming both ranges."""
    from policies.events import Event

    series = hourly([10.0] * (24 * 20))  # 2026-01-01 .. 2026-01-20T23:00Z
    yearly = Event.model_validate({"name": "launch", "kind": "joint_live", "start": "2024-01-05T00:00:00Z",
                                   "peak": "2024-01-05T12:00:00Z", "end": "2024-01-06T00:00:00Z",
                                   "recurrence": "yearly"})
    got = bench.measured_occurrence(yearly, series, "UTC", "t.csv")
    assert (got.name, got.start.isoformat()) == ("launch@2026", "2026-01-05T00:00:00+00:00")
    once = Event.model_validate({**yearly.model_dump(), "recurrence": None})
    with pytest.raises(EbbtideError, match=r"t.csv: the event launch \(2024-01-05T00:00:00\+00:00 .. "
                                           r"2024-01-06T00:00:00\+00:00\) does not end inside the trace"):
        bench.measured_occurrence(once, series, "UTC", "t.csv")
    at_the_end = Event.model_validate({**once.model_dump(), "start": "2026-01-20T00:00:00Z",
                                       "peak": "2026-01-20T12:00:00Z", "end": "2026-01-20T23:00:00Z"})
    with pytest.raises(EbbtideError, match="with data after it"):  # ends at the last row: nothing after it
        bench.measured_occurrence(at_the_end, series, "UTC", "t.csv")


@pytest.mark.parametrize("flags, message", [
    (["--after", "0"], "error: --after 0: the days measured after the event must be more than 0"),
    (["--country", "XX"], "error: --country 'XX': no public-holiday calendar for this code"),
    (["--calendar-tz", "Mars/Base"], "error: --calendar-tz 'Mars/Base': unknown IANA time zone"),
])
def test_bad_calendar_and_after_flags_exit_2_before_any_replay(bench, tmp_path, capsys, flags, message):
    """An unknown --country made every fit fail and the run report as usual (reactive throughout,
    exit 0); an unknown --calendar-tz and --after 0 ended in tracebacks."""
    events = tmp_path / "events.yaml"
    events.write_text(EVENTS)
    csv = tmp_path / "t.csv"
    csv.write_text("ts,value\n2026-01-01T00:00:00Z,5\n2026-01-01T01:00:00Z,5\n")
    assert bench.main(["--csv", str(csv), "--events", str(events), *flags]) == 2
    assert capsys.readouterr().err.startswith(message)


@pytest.mark.parametrize("given", ["--csv", "--events"])
def test_csv_and_events_go_together(bench, tmp_path, capsys, given):
    path = tmp_path / "one.file"
    path.write_text(EVENTS)
    assert bench.main([given, str(path)]) == 2
    assert capsys.readouterr().err.startswith("error: --csv and --events go together")


def test_a_bad_duration_flag_exits_2_naming_it(bench, tmp_path, capsys):
    events = tmp_path / "events.yaml"
    events.write_text(EVENTS)
    csv = tmp_path / "t.csv"
    csv.write_text("ts,value\n2026-01-01T00:00:00Z,5\n")
    assert bench.main(["--csv", str(csv), "--events", str(events), "--jump-confirm", "soon"]) == 2
    assert capsys.readouterr().err.startswith("error: --jump-confirm 'soon'")


def test_another_policy_replays_its_own_workload_scaled_by_the_same_rule(bench, tmp_path, capsys):
    from policies.loading import load_policy

    minimal = bench.REPO / "policies" / "examples" / "minimal.yaml"
    assert bench._workload_of(bench.POLICY, None) == "edge"
    assert bench._workload_of(minimal, None) == "web"
    assert bench._workload_of(bench.POLICY, "api") == "api"
    policy = bench.scaled_policy(load_policy(minimal), hourly([100.0, 300.0, 200.0]), "US", "web")
    [w] = policy.workloads
    assert (w.name, w.demand.per_replica, w.scaling.max_replicas) == ("web", 20.0, 500)  # median 200 / 10
    assert (w.scaling.headroom, w.scaling.burst_quantile, w.forecast.country_holidays) == (0.15, None, "US")
    assert policy.events == []
    events = tmp_path / "events.yaml"
    events.write_text(EVENTS)
    csv = tmp_path / "t.csv"
    csv.write_text("ts,value\n2026-01-01T00:00:00Z,5\n")
    assert bench.main(["--csv", str(csv), "--events", str(events), "--policy", str(minimal),
                       "--workload", "edge"]) == 2
    assert capsys.readouterr().err == f"error: {minimal}: unknown workload 'edge'; the policy has: web\n"
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: ebbtide/v1\n")
    assert bench.main(["--csv", str(csv), "--events", str(events), "--policy", str(broken)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {broken}:1 workloads: required field is missing")


def test_a_trace_of_your_own_replays_with_another_policy_end_to_end(bench, tmp_path, capsys):
    """Six days of hourly demand (too little history for a fit: reactive sizing throughout, no
    Prophet), the minimal policy: the JSON names the policy and its workload, per_replica follows
    the one rule, and the three strategies are measured over the days after the event."""
    import json

    index = pd.date_range("2026-01-01T00:00:00Z", periods=6 * 24, freq="h")
    csv = tmp_path / "t.csv"
    pd.DataFrame({"ts": index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "value": [1000.0 + 500 * ((h % 24) >= 12) + 3000 * (96 <= h < 108) for h in range(len(index))]}
                 ).to_csv(csv, index=False)
    events = tmp_path / "events.yaml"
    events.write_text(EVENTS)
    minimal = bench.REPO / "policies" / "examples" / "minimal.yaml"
    assert bench.main(["--csv", str(csv), "--events", str(events), "--policy", str(minimal), "--json",
                       "--frontier-u", "0.8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["policy"], report["workload"]) == (str(minimal), "web")
    [t] = report["traces"]
    # hours: 60 at 1000, 72 at 1500, 12 at 4000 (the launch): the median is 1500, per_replica 1500 / 10
    assert (t["event"], t["workload"], t["per_replica"]) == ("launch", "web", 150.0)
    assert t["window"] == ["2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z"]  # to the trace's end
    assert set(t["strategies"]) == {"ebbtide", "hpa", "static"}
    assert all(s["replica_hours"] > 0 for s in t["strategies"].values())
    # the bench's rule sizes the workload to the trace: no limit decides the figures
    assert not [n for n in t["notes"] if n.startswith(("demand is above", "a floor of", "no event"))], t["notes"]


def test_the_viral_spike_jumps_far_beyond_its_history(tmp_path):
    from conftest import load_bench

    viral = load_bench("viral_spike")
    assert viral.main([str(tmp_path)]) == 0
    rows = pd.read_csv(tmp_path / "viral.csv")
    assert len(rows) == 35 * 24 and list(rows.columns) == ["ts", "value"]
    at = rows.index[rows["ts"] == viral.SPIKE.strftime("%Y-%m-%dT%H:%M:%SZ")][0]
    assert rows["value"][at] > 500 * rows["value"][:at].max()  # far over 100x everything before it
    assert "name: viral" in (tmp_path / "viral.yaml").read_text()


def test_synthetic_traces_round_trip_and_measure_the_last_event(bench, tmp_path, capsys, monkeypatch):
    from forecaster.csvio import read_series_csv

    fb = load_bench("forecast")
    (case, series), = fb.synthetic_cases((21,))  # Black Friday -> Cyber Monday
    trace, = bench.synthetic_traces([21], tmp_path)
    back = read_series_csv(Path(trace.file))
    assert back.step == series.step
    pd.testing.assert_series_equal(back.values, series.values, check_names=False, check_freq=False)
    first, second = sorted(case.events, key=lambda e: e.peak)
    assert trace.event["name"] == second.name
    assert [e["name"] for e in trace.calendar] == [first.name]
    assert trace.calendar_tz == case.calendar_tz and trace.country is None
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert bench.main(["--synthetic", "99"]) == 2
    assert "no seed 99" in capsys.readouterr().err
    assert not list(scratch.iterdir())  # the traces' folder does not outlive the run
