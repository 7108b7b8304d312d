"""`ebbtide demo` (scaler/cli/demo.py), called through scaler.cli.main.

Cases:
- (slow) the complete demo into a temp folder exits 0 and writes report.html (charts inline,
  headline, totals equal to costs.csv's sums), costs.csv (three strategies, local days),
  costs_by_event.csv, plans.jsonl (Plan.to_json lines in time order, each a change of replicas
  or caps), and a traffic.csv + events.yaml that `ebbtide backtest` reads back; the terminal
  shows the cost table and the headline;
- a bad --step is an error for people (exit 2).
- the demo's policy (a 5-minute tick) keeps the reference policy's scale-down pace per minute:
  the step limit is a fraction per tick, so it is scaled by the ratio of the ticks.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from forecaster.csvio import read_series_csv
from policies.events import load_events_file
from policies.loading import load_policy
from scaler.cli import main
from scaler.cli.demo import DEMO_WORKLOAD, TICK, demo_policy, reference_policy_path


@pytest.mark.slow
def test_demo_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "What each strategy cost" in stdout and "The singles-day ebb (" in stdout
    assert "Typical error (WAPE) of the forecasts held: whole report" in stdout
    assert "singles-day: the event itself" in stdout
    assert "Video quality under Ebbtide, share of each tier's viewer-hours by its bitrate cap: core 1080p" in stdout

    sums: dict[str, Decimal] = defaultdict(Decimal)
    with open(out / "costs.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        sums[r["strategy"]] += Decimal(r["total_cost"])
    assert set(sums) == {"ebbtide", "hpa", "static"}
    assert {r["controller_kind"] for r in rows} == {"Deployment", "CDN", "Transcoding"}
    html = (out / "report.html").read_text(encoding="utf-8")
    totals = dict(re.findall(r'data-strategy="(\w+)" data-component="total" data-value="([-\d.]+)"', html))
    assert {k: Decimal(v) for k, v in totals.items()} == dict(sums)
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 4
    assert '<table id="video-quality">' in html and "<th>capped at 360p</th>" in html
    assert "ebbtide demo --out" in html
    assert (out / "costs_by_event.csv").is_file()

    plans = [json.loads(line) for line in (out / "plans.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(plans) > 10 and all(p["workload"] == "edge" for p in plans)
    times = [pd.Timestamp(p["now"]) for p in plans]
    assert times == sorted(times)
    keys = [(p["target_replicas"], [(c["tier"], c["rung"]) for c in p["bitrate"] or []]) for p in plans]
    assert all(a != b for a, b in zip(keys, keys[1:]))  # one line per change

    trace = read_series_csv(out / "traffic.csv")
    events = load_events_file(out / "events.yaml")
    assert [e.name for e in events] == ["brand-day-joint-live", "singles-day"]
    assert pd.Timestamp(events[-1].end) < trace.end


def test_demo_bad_step(tmp_path, capsys):
    for step in ("7m", "1d", "2h"):  # the demo forecasts hourly: 1d ran, on a forecast never trusted
        assert main(["demo", "--out", str(tmp_path), "--step", step]) == 2
        assert f"--step: '{step}' must divide an hour" in capsys.readouterr().err


def test_demo_out_empty_or_unwritable_is_refused_before_any_work(tmp_path, capsys):
    assert main(["demo", "--out", ""]) == 2
    assert "--out: empty; give the folder" in capsys.readouterr().err
    if Path("/proc/self").is_dir():  # root may write anywhere else; nobody creates folders in /proc
        assert main(["demo", "--out", "/proc/ebbtide-demo/x"]) == 2
        assert "--out /proc/ebbtide-demo/x: cannot write there" in capsys.readouterr().err


def test_demo_out_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    f = tmp_path / "report.html"
    f.write_text("x")
    for out in (f, f / "sub"):
        assert main(["demo", "--out", str(out)]) == 2
        assert f"--out {out}: {f} is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "x"


def test_demo_policy_keeps_the_reference_pace_per_minute():
    ref = load_policy(reference_policy_path())
    demo = demo_policy(ref.events)
    assert demo.schedule.tick == TICK
    ref_w, demo_w = ref.workload(DEMO_WORKLOAD), demo.workload(DEMO_WORKLOAD)
    minute = pd.Timedelta(minutes=1)
    per_minute = ref_w.scaling.max_scale_down_fraction * (minute / ref.schedule.tick)
    assert demo_w.scaling.max_scale_down_fraction * (minute / TICK) == pytest.approx(per_minute)
    assert 0 < demo_w.scaling.max_scale_down_fraction <= 1
