"""`ebbtide replay` reports progress without a terminal (logs, CI jobs).

Cases:
- the progress callback prints one line per tenth of the way (and the end), never more often,
  with the share done and the seconds elapsed;
- `ebbtide replay --json` with stderr not a terminal: stdout is exactly the JSON summary and
  stderr holds plain progress lines ending at 100%.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd

from forecaster.csvio import write_series_csv
from forecaster.series import Series
from scaler.cli import main
from scaler.cli.replay import _plain_progress

POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 10m}
workloads:
  - name: live
    target: {kind: Deployment, namespace: default, name: live}
    demand: {query: 'viewers', per_replica: 2000}
    pod_startup: 90s
    scaling: {min_replicas: 2, max_replicas: 300}
    forecast: {lookback: 3d, step: 5m, horizon: 6h, refit_interval: 6h, min_history: 1d, trust_bound: 5}
"""


def test_progress_lines_once_per_tenth(capsys):
    report = _plain_progress(t0=0.0)
    for k in range(101):  # called every simulated hour in a real replay: here 101 times
        report(k / 100)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert all(line.startswith("replay: ") and line.endswith("s elapsed") for line in lines)


def test_cli_json_stdout_stays_clean_and_progress_goes_to_stderr(tmp_path, capsys):
    idx = pd.date_range(datetime(2026, 3, 2, tzinfo=timezone.utc), periods=12, freq="h")
    trace = tmp_path / "trace.csv"
    write_series_csv(Series(pd.Series([3000.0 + 500 * (i % 4) for i in range(12)], index=idx),
                            timedelta(hours=1), "t"), trace)
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    assert main(["replay", "--csv", str(trace), "--policy", str(policy), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # nothing but the JSON document on stdout
    assert set(report["strategies"]) == {"ebbtide", "hpa", "static"}
    progress = [line for line in captured.err.splitlines() if line.startswith("replay: ")]
    assert progress and progress[-1].startswith("replay: 100% done")
