"""`ebbtide report` (scaler/cli/report.py), called through scaler.cli.main.

Cases:
- --timeline (a replay timeline CSV) + --replay-json: exit 0, report.html and costs.csv
  written, the CSV's per-strategy sums equal the HTML's totals, the headline (the policy's
  singles-day ebb, in local days) is printed, the JSON's notes are shown, and the
  reproduce command in the HTML names the inputs;
- --start/--end cut the timeline: only the days inside are costed;
- errors for people (exit 2): --replay-json without --timeline, an unknown --event, --prometheus
  without a range, a bad --zone, --prometheus-url without --prometheus, a negative
  --transcoded-streams, an unknown --workload (the policy's listed), a bad --step;
- event_range: the last occurrence of a yearly event before `now`, to its end + 14 days;
- finance sweep: a chart that cannot be drawn is `error: ...`, exit 2, with DIR's earlier report
  untouched (F2); --replay-json's tick-by-tick figures fill the quality table (F4); one hour of
  an hourly timeline is a report (F13);
- (prometheus, real server) --prometheus over backfilled kube-state-metrics and demand: what ran
  is costed from kube_deployment_spec_replicas (hand-computed compute cost), the baselines are
  replayed from the same demand, the quality-guard minutes from Ebbtide's metric are noted.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policies.events import Event
from scaler.cli import main
from scaler.cli.report import event_range
from support.prometheus import MetricSeries

REFERENCE = Path(__file__).resolve().parents[1] / "policies" / "examples" / "reference.yaml"
T0 = datetime(2026, 11, 12, tzinfo=timezone.utc)


def csv_sums(path: Path) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            sums[r["strategy"]] += Decimal(r["total_cost"])
    return dict(sums)


def html_totals(path: Path) -> dict[str, Decimal]:
    import re

    html = path.read_text(encoding="utf-8")
    return {s: Decimal(v) for s, v in
            re.findall(r'data-strategy="(\w+)" data-component="total" data-value="([-\d.]+)"', html)}


@pytest.fixture()
def timeline(tmp_path) -> Path:
    n = 3 * 24
    ts = pd.date_range(T0, periods=n, freq="1h")
    frame = pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "demand": 20000.0,
                          "replicas_ebbtide": 9.0, "replicas_hpa": 10.0, "replicas_static": 40.0,
                          "ready_ebbtide": 9.0, "ready_hpa": 10.0, "ready_static": 40.0,
                          "cap_core_kbps": 3000.0, "cap_silent_kbps": 1200.0, "cap_edge_kbps": 700.0,
                          "forecast_trusted": 1.0})
    path = tmp_path / "timeline.csv"
    frame.to_csv(path, index=False)
    (tmp_path / "replay.json").write_text(json.dumps({"workload": "edge", "notes": ["a replay note"]}))
    return path


def test_report_from_a_replay_timeline(timeline, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["report", "--timeline", str(timeline), "--replay-json", str(tmp_path / "replay.json"),
               "--policy", str(REFERENCE), "--out", str(out), "--zone", "Asia/Shanghai"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert (out / "report.html").is_file() and (out / "costs.csv").is_file()
    sums = csv_sums(out / "costs.csv")
    assert set(sums) == {"ebbtide", "hpa", "static"}
    assert html_totals(out / "report.html") == sums
    assert sums["static"] > sums["hpa"] > sums["ebbtide"]
    # the reference policy's singles-day ends 2026-11-12 00:00+08:00: its ebb is in the range
    # days in Asia/Shanghai; the ebb runs 14 days, 3 of them in the timeline
    assert printed.startswith("The singles-day ebb (Nov 12 to Nov 15, 2026, the part in the report) cost ")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "a replay note" in html
    assert f"--timeline {timeline}" in html and "--zone Asia/Shanghai" in html


def test_start_and_end_cut_the_timeline(timeline, tmp_path, capsys):
    out = tmp_path / "cut"
    assert main(["report", "--timeline", str(timeline), "--policy", str(REFERENCE), "--out", str(out),
                 "--start", "2026-11-13T00:00:00Z", "--end", "2026-11-14T00:00:00Z"]) == 0
    with open(out / "costs.csv", newline="", encoding="utf-8") as f:
        assert {r["date"] for r in csv.DictReader(f)} == {"2026-11-13"}


@pytest.mark.parametrize("argv, message", [
    (["--replay-json", "x.json", "--csv", "t.csv"], "--replay-json needs --timeline FILE"),
    (["--timeline", "t.csv", "--event", "no-such-sale"], "--event 'no-such-sale': no such event"),
    (["--prometheus"], "--prometheus needs a range"),
    (["--timeline", "t.csv", "--zone", "Mars/Olympus"], "--zone: unknown IANA time zone 'Mars/Olympus'"),
    (["--timeline", "t.csv", "--prometheus-url", "http://p:9090"], "--prometheus-url needs --prometheus"),
    (["--timeline", "t.csv", "--transcoded-streams", "-1"],
     "--transcoded-streams must be a finite number >= 0, got -1"),
    (["--timeline", "t.csv", "--workload", "nope"], "unknown workload 'nope'; the policy has: ingest, transcode, edge, api"),
    (["--prometheus", "--start", "2026-11-12T00:00:00Z", "--end", "2026-11-13T00:00:00Z", "--step", "soon"],
     "--step: not a duration: 'soon'"),
])
def test_errors_for_people(argv, message, tmp_path, capsys):
    assert main(["report", "--policy", str(REFERENCE), "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def _tampered(timeline: Path, edit) -> Path:
    frame = pd.read_csv(timeline, dtype=str)
    frame = edit(frame)
    path = timeline.with_name("tampered.csv")
    frame.to_csv(path, index=False)
    return path


def _json(tmp_path: Path, obj) -> str:
    path = tmp_path / "other.json"
    path.write_text(json.dumps(obj))
    return str(path)


def _set(frame, col, i, value):
    frame.loc[i, col] = value
    return frame


@pytest.mark.parametrize("edit, extra, message", [
    (lambda f: f.drop(columns="demand"), [], "tampered.csv: no `demand` column (columns: ts, replicas_ebbtide"),
    (lambda f: _set(f, "ts", 5, f["ts"][3]), [], "tampered.csv:7: ts '2026-11-12T03:00:00Z' is not after the row "
                                                  "before it ('2026-11-12T04:00:00Z')"),
    (lambda f: f.drop(index=[6, 7, 8]).reset_index(drop=True), [],
     "tampered.csv:8: ts '2026-11-12T09:00:00Z' is 0 days 04:00:00 after the row before it, where the rows before "
     "are 0 days 01:00:00 apart: a row is missing or extra"),
    (lambda f: _set(f, "cap_core_kbps", 4, "-100"), [], "tampered.csv:6: cap_core_kbps '-100' is not a finite number"),
    (lambda f: _set(f, "demand", 4, "inf"), [], "tampered.csv:6: demand 'inf' is not a finite number >= 0"),
    (None, ["--replay-json", {"workload": "edge", "notes": 5}], "`notes` must be a list of texts"),
    (None, ["--replay-json", {"workload": "api"}, "--workload", "edge"],
     "a replay of workload 'api', not --workload 'edge': give the JSON of the run that wrote --timeline"),
    (None, ["--replay-json", {"workload": "edge", "start": "2026-11-01T00:00:00Z"}],
     "its replay starts at 2026-11-01T00:00:00+00:00, the timeline"),
    (None, ["--transcoded-streams", "nan"], "--transcoded-streams must be a finite number >= 0, got nan"),
    (None, ["--out", " "], "--out: empty"),
])
def test_timeline_and_replay_json_errors_name_the_file_and_line(timeline, tmp_path, capsys, edit, extra, message):
    """From the report robustness sweep: each of these was a traceback, a silent wrong figure
    (another run's JSON priced the pods as another workload), or a message naming no line."""
    path = _tampered(timeline, edit) if edit is not None else timeline
    argv = [str(_json(tmp_path, a)) if isinstance(a, dict) else a for a in extra]
    out = [] if "--out" in argv else ["--out", str(tmp_path / "o")]
    assert main(["report", "--policy", str(REFERENCE), *out, "--timeline", str(path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_event_range_is_the_last_occurrence_to_end_plus_14_days():
    sale = Event(name="singles-day", kind="sale", start=datetime(2025, 11, 10, 12, tzinfo=timezone.utc),
                 peak=datetime(2025, 11, 10, 16, tzinfo=timezone.utc),
                 end=datetime(2025, 11, 11, 16, tzinfo=timezone.utc), recurrence="yearly")
    start, end = event_range([sale], "singles-day", datetime(2026, 12, 1, tzinfo=timezone.utc), timedelta(days=14))
    assert start == datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
    assert end == datetime(2026, 11, 25, 16, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- Prometheus
POLICY = """\
apiVersion: ebbtide/v1
workloads:
  - name: edge
    target: {kind: Deployment, namespace: live, name: edge}
    demand: {query: sum(edge_concurrent_viewers), per_replica: 2500}
    pod_startup: 45s
    resources: {cpu_cores: 4, memory_gib: 8}
    scaling: {min_replicas: 2, max_replicas: 100}
cost: {currency: USD, cpu_core_hour: 0.03, memory_gib_hour: 0.005, egress_billing: per_gb}
"""


@pytest.mark.prometheus
@pytest.mark.xdist_group("prometheus-report")
def test_report_from_prometheus_history(prometheus_factory, tmp_path, capsys):
    step = 300
    start_s = int(T0.timestamp()) - 2 * 86400
    n = 2 * 86400 // step  # two days of history at 5 minutes
    ts = [float(start_s + i * step) for i in range(n)]
    hour = (np.arange(n) * step / 3600.0) % 24
    viewers = 20000 + 15000 * np.sin(2 * np.pi * hour / 24)
    replicas = np.where(np.arange(n) < n // 2, 12.0, 6.0)  # 12 pods on day 1, 6 on day 2
    guard = np.where((np.arange(n) >= 10) & (np.arange(n) < 13), 1.0, 0.0)  # 15 minutes
    series = [
        MetricSeries("edge_concurrent_viewers", {"pod": "a"}, ts, list(viewers)),
        MetricSeries("kube_deployment_spec_replicas", {"namespace": "live", "deployment": "edge"}, ts,
                     list(replicas)),
        MetricSeries("kube_deployment_status_replicas_ready", {"namespace": "live", "deployment": "edge"}, ts,
                     list(replicas)),
        MetricSeries("ebbtide_quality_guard_active", {"workload": "edge"}, ts, list(guard)),
    ]
    server = prometheus_factory(series, name="report")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    out = tmp_path / "out"
    start = datetime.fromtimestamp(start_s, tz=timezone.utc)
    end = start + timedelta(days=2)
    rc = main(["report", "--prometheus", "--prometheus-url", server.url, "--policy", str(policy), "--out", str(out),
               "--start", start.isoformat(), "--end", end.isoformat()])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    with open(out / "costs.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["strategy"] == "actual"]
    # day 1: 12 pods x 24 h, day 2: 6 pods x 24 h; x (4 cores x 0.03 + 8 GiB x 0.005) = 0.16/pod-h
    q = lambda x: Decimal(x).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)  # noqa: E731
    assert [(r["date"], Decimal(r["cpu_cost"]), Decimal(r["ram_cost"])) for r in rows] == [
        ("2026-11-10", q(Decimal("12") * 24 * 4 * Decimal("0.03")), q(Decimal("12") * 24 * 8 * Decimal("0.005"))),
        ("2026-11-11", q(Decimal("6") * 24 * 4 * Decimal("0.03")), q(Decimal("6") * 24 * 8 * Decimal("0.005"))),
    ]
    sums = csv_sums(out / "costs.csv")
    assert set(sums) == {"actual", "hpa", "static"} and html_totals(out / "report.html") == sums
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "quality guard was active for 15 minutes in 1 stretch" in html
    assert "history in Prometheus" in html


# --------------------------------------------------------------------------- finance report sweep
def test_a_chart_that_cannot_be_drawn_is_an_error_for_people_and_leaves_the_old_report(timeline, tmp_path, capsys,
                                                                                        monkeypatch):
    """F2: a matplotlib error ended in a traceback (exit 1) with the new CSVs next to the old
    report.html. Now: `error: ...`, exit 2, and DIR still holds the earlier report as it was."""
    import scaler.reporting.charts as charts

    out = tmp_path / "out"
    argv = ["report", "--timeline", str(timeline), "--policy", str(REFERENCE), "--out", str(out)]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(report):
        raise ValueError("Unknown symbol: \\notacommand, found '\\'")

    monkeypatch.setattr(charts, "caps_chart", broken)
    capsys.readouterr()
    assert main([*argv, "--start", "2026-11-13T00:00:00Z", "--end", "2026-11-14T00:00:00Z"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: report: cannot draw the report's charts: ValueError: Unknown symbol")
    assert "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_replay_json_figures_fill_the_quality_table(timeline, tmp_path, capsys):
    """F4: with --replay-json, the quality table shows the replay's own tick-by-tick figures
    (here 152 minutes for plain autoscaling), not 0 from the hourly averages."""
    replay = {"workload": "edge", "start": "2026-11-12T00:00:00Z", "end": "2026-11-15T00:00:00Z", "notes": [],
              "strategies": {s: {"peak_replicas": p, "under_provisioned_share": share,
                                 "under_provisioned_minutes": minutes}
                             for s, p, share, minutes in (("ebbtide", 11, 0.000123, 31.5), ("hpa", 12, 0.000674, 152.0),
                                                          ("static", 40, 0.0, 0.0))}}
    (tmp_path / "replay.json").write_text(json.dumps(replay))
    out = tmp_path / "out"
    assert main(["report", "--timeline", str(timeline), "--replay-json", str(tmp_path / "replay.json"),
                 "--policy", str(REFERENCE), "--out", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<td class="l">Plain autoscaling (HPA)</td><td>720</td><td>12</td><td>0.067%</td><td>152</td>' in html
    assert "most servers at once" in html


def test_one_interval_of_an_hourly_timeline_is_a_report(timeline, tmp_path, capsys):
    """F13: one hour cut from an hourly timeline was refused ('a report needs at least two
    intervals'), though the whole timeline gives the interval."""
    out = tmp_path / "one"
    assert main(["report", "--timeline", str(timeline), "--policy", str(REFERENCE), "--out", str(out),
                 "--start", "2026-11-13T13:00:00Z", "--end", "2026-11-13T14:00:00Z"]) == 0
    assert capsys.readouterr().out.startswith("The singles-day ebb (Nov 13, 2026, the part in the report) cost ")
    with open(out / "costs.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["strategy"] == "static" and r["controller_kind"] != "CDN"]
    assert [Decimal(r["cpu_core_hours"]) for r in rows] == [40 * Decimal(str(_first_workload_cores()))]  # 40 pods, 1 h


def _first_workload_cores() -> float:
    from policies.loading import load_policy

    return load_policy(REFERENCE).workloads[0].resources.cpu_cores


def test_tier_shares_short_of_one_are_said(timeline, tmp_path, capsys):
    """Shares 0.3/0.2/0.1 split demand into viewers for 60% of it: the other 40% were costed for no
    strategy without a word (the finance audit)."""
    import yaml

    policy = yaml.safe_load(REFERENCE.read_text())
    for tier, share in zip(policy["bitrate"]["tiers"], (0.3, 0.2, 0.1)):
        tier["share"] = share
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(policy))
    out = tmp_path / "out"
    assert main(["report", "--timeline", str(timeline), "--policy", str(short), "--out", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "shares add up to 0.60: 40% of the viewers are in no tier" in html
    capsys.readouterr()
