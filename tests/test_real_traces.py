"""Regression guards on the real public traces in ../shared/data (skipped when that folder is
absent: the traces are never copied into this repository).

Cases:
- every trace reads as a regular series at the interval its file name says;
- NASA STS-70, cut one day after the launch: Ebbtide's 7-day WAPE is below every baseline's and
  its yhat_upper covers at least 90% of the hours (the event-aware model must win on an ebb);
- Apple event, cut one day after: Ebbtide's WAPE is at most 0.75x the best baseline's;
- `ebbtide backtest` on a real file writes a 7-day hourly forecast with the documented columns.

The thresholds are looser than the figures bench/forecast.py measures (docs/forecasting.md), so
they catch a regression, not noise.
"""

from __future__ import annotations

import csv
from datetime import timedelta

import pandas as pd
import pytest

from forecaster.comparison import compare_at_cutoff
from forecaster.csvio import read_series_csv
from policies.events import Event
from scaler.cli import main

pytestmark = pytest.mark.data

SEVEN_DAYS = timedelta(days=7)


def test_every_trace_reads_on_its_interval(shared_data):
    files = sorted(shared_data.glob("*.csv"))
    assert files, f"no CSV in {shared_data}"
    for path in files:
        series = read_series_csv(path)
        expected = 300 if "_5min" in path.name else 3600
        assert series.step_s == expected, path.name
        assert len(series) > 24 * 7, path.name


def _compare(path, event: Event, cutoff: str):
    series = read_series_csv(path)
    comparison = compare_at_cutoff(series, [event], pd.Timestamp(cutoff), SEVEN_DAYS)
    ebb = comparison.ebbtide.metrics
    baselines = {run.model: run.metrics for run in comparison.runs[1:]}
    assert len(baselines) >= 3, comparison.failures
    return ebb, baselines


@pytest.mark.slow
def test_nasa_launch_ebb_beats_every_baseline(shared_data):
    launch = Event(name="sts70-launch", kind="joint_live", start="1995-07-13T08:00:00Z",
                   peak="1995-07-13T13:41:00Z", end="1995-07-13T16:00:00Z")
    ebb, baselines = _compare(shared_data / "nasa_jul95_hourly.csv", launch, "1995-07-14T14:00:00Z")
    for name, m in baselines.items():
        assert ebb.wape < m.wape, f"ebbtide WAPE {ebb.wape:.3f} not below {name}'s {m.wape:.3f}"
    assert ebb.coverage >= 0.90


@pytest.mark.slow
def test_apple_event_ebb_well_below_best_baseline(shared_data):
    apple = Event(name="apple-event", kind="joint_live", start="2015-03-09T15:00:00Z",
                  peak="2015-03-09T17:00:00Z", end="2015-03-09T19:00:00Z")
    ebb, baselines = _compare(shared_data / "nab_twitter_aapl_hourly.csv", apple, "2015-03-10T18:00:00Z")
    best = min(m.wape for m in baselines.values())
    assert ebb.wape <= 0.75 * best, f"ebbtide WAPE {ebb.wape:.3f} vs best baseline {best:.3f}"


@pytest.mark.slow
def test_backtest_cli_on_a_real_trace_writes_the_forecast(shared_data, tmp_path, capsys):
    events = tmp_path / "events.yaml"
    events.write_text(
        "events:\n"
        "  - {name: sts70-launch, kind: joint_live, start: 1995-07-13T08:00:00Z,"
        " peak: 1995-07-13T13:41:00Z, end: 1995-07-13T16:00:00Z}\n"
    )
    out = tmp_path / "forecast.csv"
    rc = main(["backtest", "--csv", str(shared_data / "nasa_jul95_hourly.csv"), "--cutoff",
               "1995-07-15T00:00:00Z", "--horizon", "7d", "--events", str(events),
               "--forecast-out", str(out), "--json"])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["ts", "yhat", "yhat_lower", "yhat_upper"]
    assert len(rows) == 24 * 7
    assert rows[0]["ts"] == "1995-07-15T00:00:00Z" and rows[-1]["ts"] == "1995-07-21T23:00:00Z"
    for row in rows:
        lo, mid, hi = float(row["yhat_lower"]), float(row["yhat"]), float(row["yhat_upper"])
        assert 0 <= lo <= mid <= hi
    assert '"ebbtide"' in capsys.readouterr().out
