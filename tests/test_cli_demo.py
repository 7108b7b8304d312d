"""`ebbtide demo` (scaler/cli/demo.py), called through scaler.cli.main.

Cases:
- (slow) an hourly demo into a temp folder exits 0 and writes forecast.csv (Ebbtide's
  ts,yhat,yhat_lower,yhat_upper for 7 days, plus actual and each baseline), a PNG plot, and a
  traffic.csv + events.yaml that `ebbtide backtest` reads back; the terminal shows both tables;
- a bad --step is an error for people (exit 2).
"""

from __future__ import annotations

import pandas as pd
import pytest

from forecaster.csvio import read_series_csv
from policies.events import load_events_file
from scaler.cli import main


@pytest.mark.slow
def test_demo_writes_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--step", "1h"]) == 0
    stdout = capsys.readouterr().out
    assert "day by day" in stdout and "All models" in stdout and "holt_winters" in stdout
    fc = pd.read_csv(out / "forecast.csv")
    assert list(fc.columns[:5]) == ["ts", "yhat", "yhat_lower", "yhat_upper", "actual"]
    assert {"seasonal_naive_day_yhat", "holt_winters_upper", "prophet_yhat"} <= set(fc.columns)
    assert len(fc) == 7 * 24 and fc["actual"].notna().all()
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert (out / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trace = read_series_csv(out / "traffic.csv")
    events = load_events_file(out / "events.yaml")
    assert [e.name for e in events] == ["brand-day-joint-live", "singles-day"]
    assert pd.Timestamp(events[-1].end) < pd.Timestamp(fc["ts"].iloc[0]) <= trace.end


def test_demo_bad_step(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--step", "7m"]) == 2
    assert "--step: '7m' must divide a day" in capsys.readouterr().err
