"""`ebbtide backtest` (scaler/cli/backtest.py), called through scaler.cli.main.

Cases (bad input: exit 2, one `error:` message naming file and line, or the flag):
- missing `value` column; an unparsable value line; an irregular interval; a missing file;
- --cutoff before the data, long after it, or without a zone; --horizon unparsable or shorter
  than the file's interval; too little history before the cutoff;
- an events file with an error names the events file and its line;
- --country with a code the holidays package does not know, or --calendar-tz with an unknown
  zone: exit 2 naming the flag and the value, before any fitting; a lower-case code is taken
  as the upper-case one and both reach Ebbtide's ModelSettings (country_holidays, calendar_tz);
- end to end (slow): a New York hourly trace with US holidays at 30% of a normal day, Veterans
  Day in the history and Thanksgiving in the horizon: with --country US --calendar-tz
  America/New_York the notes name the pooled holiday effect learnt on Veterans Day and applied
  to Thanksgiving, and the forecast of Thanksgiving's local day is well below the day before;
- end to end (slow): a small synthetic hourly CSV with a sale: --json lists Ebbtide first and
  every baseline with metrics and fit seconds, --forecast-out writes ts,yhat,yhat_lower,
  yhat_upper on the file's grid for the horizon; a cutoff at the end of the data says there are
  no actuals and gives null metrics; the table output names every model;
- the table prints paths, event names, errors and notes as written: [brackets] are not markup.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from forecaster.csvio import write_series_csv
from forecaster.synthetic import SaleSpec, generate
from scaler.cli import main
from support.traces import hourly_csv


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["backtest", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(capsys, argv, *fragments):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


def test_missing_column(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("ts,count\n2026-03-01T00:00:00Z,1\n2026-03-01T01:00:00Z,2\n")
    assert_error(capsys, ["--csv", str(f), "--cutoff", "2026-03-01T01:00:00Z", "--horizon", "1h"],
                 f"{f}:1: missing column(s) value")


def test_unparsable_line(tmp_path, capsys):
    f = hourly_csv(tmp_path / "t.csv")
    lines = f.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",lots"
    f.write_text("\n".join(lines) + "\n")
    assert_error(capsys, ["--csv", str(f), "--cutoff", "2026-03-02T12:00:00Z", "--horizon", "6h"],
                 f"{f}:6: value 'lots' is not a number")


def test_irregular_interval(tmp_path, capsys):
    f = hourly_csv(tmp_path / "t.csv")
    lines = f.read_text().splitlines()
    lines[10] = lines[10].replace(":00:00Z", ":20:00Z")
    f.write_text("\n".join(lines) + "\n")
    assert_error(capsys, ["--csv", str(f), "--cutoff", "2026-03-02T12:00:00Z", "--horizon", "6h"],
                 f"{f}:11: irregular interval", "4800s")


def test_missing_file(tmp_path, capsys):
    assert_error(capsys, ["--csv", str(tmp_path / "nope.csv"), "--cutoff", "2026-03-02T12:00:00Z",
                          "--horizon", "6h"], "nope.csv: file not found")


@pytest.mark.parametrize(
    "cutoff, fragment",
    [
        ("2026-02-01T00:00:00Z", "--cutoff 2026-02-01T00:00:00+00:00 is outside the data in"),
        ("2026-03-09T00:00:00Z", "is outside the data in"),
        ("2026-03-02T12:00:00", "--cutoff: time has no zone"),
        ("yesterday", "--cutoff: not an ISO 8601 time"),
    ],
)
def test_bad_cutoff(tmp_path, capsys, cutoff, fragment):
    f = hourly_csv(tmp_path / "t.csv")
    assert_error(capsys, ["--csv", str(f), "--cutoff", cutoff, "--horizon", "6h"], fragment)


@pytest.mark.parametrize(
    "horizon, fragment",
    [("six hours", "--horizon: not a duration: 'six hours'"),
     ("0s", "--horizon: must be positive"),
     ("30m", "--horizon 30m is shorter than the interval of")],
)
def test_bad_horizon(tmp_path, capsys, horizon, fragment):
    f = hourly_csv(tmp_path / "t.csv")
    assert_error(capsys, ["--csv", str(f), "--cutoff", "2026-03-02T12:00:00Z", "--horizon", horizon],
                 fragment)


def test_too_little_history(tmp_path, capsys):
    f = hourly_csv(tmp_path / "t.csv")
    assert_error(capsys, ["--csv", str(f), "--cutoff", "2026-03-01T05:00:00Z", "--horizon", "6h"],
                 f"{f}: only 5h of data before the cutoff 2026-03-01T05:00:00+00:00, need at least 1d")


def test_bad_events_file(tmp_path, capsys):
    f = hourly_csv(tmp_path / "t.csv")
    ev = tmp_path / "events.yaml"
    ev.write_text("events:\n  - name: sale\n    kind: sale\n    start: 2026-03-02T00:00:00Z\n"
                  "    peak: 2026-03-01T00:00:00Z\n    end: 2026-03-03T00:00:00Z\n")
    assert_error(capsys, ["--csv", str(f), "--cutoff", "2026-03-02T12:00:00Z", "--horizon", "6h",
                          "--events", str(ev)], f"{ev}:2", "start <= peak <= end")


@pytest.mark.parametrize(
    "flag, value, fragment",
    [("--country", "XX", "--country 'XX': no public-holiday calendar for this code"),
     ("--country", "", "--country '': no public-holiday calendar for this code"),
     ("--calendar-tz", "Mars/Olympus", "--calendar-tz 'Mars/Olympus': unknown IANA time zone"),
     ("--calendar-tz", "", "--calendar-tz '': unknown IANA time zone")],
)
def test_bad_country_or_zone_fails_before_fitting(tmp_path, capsys, monkeypatch, flag, value, fragment):
    import scaler.cli.backtest as bt

    def no_fit(*a, **k):
        raise AssertionError("fitted although a flag is wrong")

    monkeypatch.setattr(bt, "compare_models", no_fit)
    f = hourly_csv(tmp_path / "t.csv")
    assert_error(capsys, ["--csv", str(f), "--cutoff", "2026-03-02T12:00:00Z", "--horizon", "6h",
                          flag, value], fragment)


def test_country_and_zone_reach_the_model_settings(tmp_path, capsys, monkeypatch):
    import scaler.cli.backtest as bt
    from policies.errors import EbbtideError

    seen = []

    def record(series, events, origin, horizon, settings=None):
        seen.append(settings)
        raise EbbtideError("stop after recording the settings")

    monkeypatch.setattr(bt, "compare_models", record)
    f = hourly_csv(tmp_path / "t.csv")
    base = ["--csv", str(f), "--cutoff", "2026-03-02T12:00:00Z", "--horizon", "6h"]
    assert_error(capsys, base + ["--country", "jp", "--calendar-tz", "Asia/Tokyo"], "stop after")
    assert_error(capsys, base, "stop after")
    assert (seen[0].country_holidays, seen[0].calendar_tz) == ("JP", "Asia/Tokyo")
    assert (seen[1].country_holidays, seen[1].calendar_tz) == (None, "UTC")


def us_holiday_csv(path):
    """Hourly New York traffic 2025-10-20 .. 11-30: a daily cycle, weekends at 60%, US public
    holidays (local dates) at 30%, 5% lognormal noise (seeded)."""
    import holidays
    import numpy as np

    idx = pd.date_range("2025-10-20T04:00:00Z", "2025-11-30T05:00:00Z", freq="1h", inclusive="left")
    local = idx.tz_convert("America/New_York")
    hour = np.asarray(local.hour, dtype=float)
    day = 0.35 + 0.65 * np.clip(np.sin(np.pi * (hour - 6) / 16), 0, None)
    week = np.where(np.asarray(local.day_of_week) >= 5, 0.6, 1.0)
    off = pd.Index(local.date).isin(list(holidays.country_holidays("US", years=2025)))
    y = 200 * day * week * np.where(off, 0.3, 1.0) * np.exp(np.random.default_rng(3).normal(0, 0.05, len(idx)))
    path.write_text("ts,value\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},{v:.2f}\n" for t, v in zip(idx, y)))
    return path


@pytest.mark.slow
def test_end_to_end_country_holidays(tmp_path, capsys):
    f = us_holiday_csv(tmp_path / "us.csv")
    out = tmp_path / "fc.csv"
    code, stdout, err = run_cli(capsys, "--csv", str(f), "--cutoff", "2025-11-24T05:00:00Z", "--horizon", "4d",
                                "--country", "US", "--calendar-tz", "America/New_York",
                                "--forecast-out", str(out), "--json")
    assert code == 0, err
    notes = " | ".join(json.loads(stdout)["models"]["ebbtide"]["notes"])
    assert "pooled holiday effect (US) learnt on 2025-11-11 Veterans Day" in notes
    assert "applied to 2025-11-27 Thanksgiving" in notes
    fc = pd.read_csv(out)
    local = pd.to_datetime(fc["ts"], utc=True).dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
    assert len(fc) == 96 and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert fc["yhat"][local == "2025-11-27"].mean() < 0.6 * fc["yhat"][local == "2025-11-26"].mean()


@pytest.fixture(scope="module")
def sale_trace(tmp_path_factory):
    """12 days of hourly synthetic traffic with a sale on day 8, as a CSV and an events file."""
    d = tmp_path_factory.mktemp("bt")
    start = datetime(2026, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    tr = generate(start, 12, timedelta(hours=1), seed=21,
                  sale=SaleSpec(name="mid-year", day=8, ramp=timedelta(days=1)))
    csv = d / "traffic.csv"
    write_series_csv(tr.series, csv)
    ev = tr.events[0]
    events = d / "events.yaml"
    events.write_text(f"- name: {ev.name}\n  kind: sale\n  start: {ev.start.isoformat()}\n"
                      f"  peak: {ev.peak.isoformat()}\n  end: {ev.end.isoformat()}\n")
    return tr, csv, events


@pytest.mark.slow
def test_end_to_end_json_and_forecast_out(sale_trace, tmp_path, capsys):
    tr, csv, events = sale_trace
    cutoff = pd.Timestamp(tr.events[0].end).ceil("1h") + pd.Timedelta(hours=12)
    out = tmp_path / "fc.csv"
    code, stdout, err = run_cli(capsys, "--csv", str(csv), "--cutoff", cutoff.isoformat(),
                                "--horizon", "36h", "--events", str(events),
                                "--forecast-out", str(out), "--json")
    assert code == 0, err
    report = json.loads(stdout)
    names = list(report["models"])
    assert names[0] == "ebbtide"
    assert {"seasonal_naive_day", "seasonal_naive_week", "holt_winters", "prophet"} <= set(names)
    assert report["cutoff"] == cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert report["interval"] == "1h" and report["horizon"] == "1d12h"
    assert report["forecast_points"] == 36 and report["actual_points"] == 36
    assert report["events"] == ["mid-year"] and report["note"] is None
    for name, m in report["models"].items():
        assert m["error"] is None, (name, m["error"])
        assert m["fit_s"] >= 0
        x = m["metrics"]
        assert x["n_points"] == 36
        assert 0 <= x["coverage"] <= 1 and x["wape"] >= 0
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["ts", "yhat", "yhat_lower", "yhat_upper"]
    assert len(fc) == 36
    ts = pd.to_datetime(fc["ts"], utc=True)
    assert ts.iloc[0] == cutoff and (ts.diff().dropna() == pd.Timedelta(hours=1)).all()
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert (fc["yhat_lower"] >= 0).all()


@pytest.mark.slow
def test_end_to_end_without_actuals_and_table(sale_trace, capsys):
    tr, csv, _ = sale_trace
    cutoff = tr.series.end + pd.Timedelta(hours=1)
    code, stdout, err = run_cli(capsys, "--csv", str(csv), "--cutoff", cutoff.isoformat(),
                                "--horizon", "12h", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["actual_points"] == 0
    assert "no actuals" in report["note"]
    assert all(m["metrics"] is None for m in report["models"].values())

    code, stdout, err = run_cli(capsys, "--csv", str(csv), "--cutoff", cutoff.isoformat(), "--horizon", "12h")
    assert code == 0, err
    for name in ("ebbtide", "holt_winters", "prophet", "no actuals"):
        assert name in stdout


def test_the_table_prints_brackets_as_written(capsys):
    from scaler.cli.backtest import print_table

    metrics = {"wape": 0.1, "smape": 0.1, "under_forecast": 0.0, "over_forecast": 0.1, "coverage": 0.95}
    report = {"file": "traces[b]/t[1].csv", "train_points": 48, "interval": "1h", "cutoff": "2026-03-03T00:00:00Z",
              "horizon": "12h", "forecast_points": 12, "events": ["sale[b]"], "note": "cut [b]efore the end",
              "models": {"ebbtide": {"error": None, "metrics": metrics, "fit_s": 1.0, "notes": ["window [S, E + 7 d) [b]"]},
                         "prophet": {"error": "fit failed [b]", "metrics": None, "fit_s": None, "notes": []}}}
    print_table(report)
    out = capsys.readouterr().out
    for text in ("traces[b]/t[1].csv", "events: sale[b]", "failed: fit failed [b]", "note: cut [b]efore the end",
                 "ebbtide: window [S, E + 7 d) [b]"):
        assert text in out, text


def test_the_table_names_missing_points_and_keeps_huge_errors_readable(capsys):
    from scaler.cli.backtest import print_table

    metrics = {"wape": 7.3e294, "smape": 0.5, "under_forecast": 0.0, "over_forecast": 1234.5, "coverage": 1.0}
    report = {"file": "t.csv", "train_points": 284, "train_missing": 24, "interval": "1h",
              "cutoff": "2026-03-03T00:00:00Z", "horizon": "12h", "forecast_points": 12, "events": [], "note": None,
              "models": {"seasonal_naive_week": {"error": None, "metrics": metrics, "fit_s": 0.0, "notes": []}}}
    print_table(report)
    out = capsys.readouterr().out
    assert "284 points of 1h (24 of them missing) before" in " ".join(out.split())
    assert "7e+296%" in out and "123450.0%" not in out and "1e+05%" in out  # 1234.5 -> 123450% -> 1e+05%
    report.pop("train_missing")
    print_table(report)
    assert "missing" not in capsys.readouterr().out


def test_the_report_counts_missing_training_points(tmp_path, capsys):
    rows = ["ts,value"] + [f"2026-03-01T{h:02d}:00:00Z,{'' if h in (3, 4) else 100 + h}" for h in range(24)]
    rows += [f"2026-03-02T{h:02d}:00:00Z,{100 + h}" for h in range(24)]
    f = tmp_path / "t.csv"
    f.write_text("\n".join(rows) + "\n")
    code, out, err = run_cli(capsys, "--csv", str(f), "--cutoff", "2026-03-02T12:00:00Z",
                             "--horizon", "6h", "--json")
    assert code == 0, err
    assert json.loads(out)["train_missing"] == 2


def test_forecast_out_keeps_large_counts_whole(tmp_path, capsys):
    """OUT.csv was written with 6 significant digits: a forecast of 12,345,678 requests an hour
    read 1.23457e+07. It keeps 10 now, without an exponent below 1e10."""
    idx = pd.date_range("2026-03-01T00:00:00Z", periods=72, freq="h")
    f = tmp_path / "big.csv"
    f.write_text("ts,value\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},{(100 + i % 24) * 123457}\n"
                                         for i, t in enumerate(idx)))
    out = tmp_path / "fc.csv"
    code, _, err = run_cli(capsys, "--csv", str(f), "--cutoff", "2026-03-03T00:00:00Z", "--horizon", "6h",
                           "--forecast-out", str(out))
    assert code == 0, err
    text = out.read_text()
    assert "e+" not in text and len(pd.read_csv(out)) == 6
    rows = [row.split(",") for row in text.splitlines()[1:]]
    assert all(len(r[i].split(".")[0]) >= 7 for r in rows for i in (1, 3))  # yhat, yhat_upper: whole


def _stderr_with_events(tmp_path, capsys, entries: str) -> tuple[object, str]:
    """(events file, stderr) of a 6-hour backtest of `hourly_csv` (from 2026-03-01T00:00Z, cut
    2026-03-03) with the events `entries` (YAML list items); exit code 0 asserted."""
    f = hourly_csv(tmp_path / "t.csv")
    ev = tmp_path / "ev.yaml"
    ev.write_text("events:\n" + entries)
    code, _, err = run_cli(capsys, "--csv", str(f), "--cutoff", "2026-03-03T00:00:00Z", "--horizon", "6h",
                           "--events", str(ev), "--json")
    assert code == 0, err
    return ev, err


def test_an_event_whose_ebb_reaches_into_the_data_is_not_warned_about(tmp_path, capsys):
    """The model keeps an event that ended before the first row while its ebb (`ebb_span`, 7 days)
    reaches into the history; the command said it "has no effect (a wrong year?)"."""
    _, err = _stderr_with_events(tmp_path, capsys,
                                 "  - {name: before, kind: joint_live, start: 2026-02-28T16:00:00Z, "
                                 "peak: 2026-02-28T17:00:00Z, end: 2026-02-28T20:00:00Z}\n"
                                 "  - {name: long-before, kind: sale, start: 2026-02-20T10:00:00Z, "
                                 "peak: 2026-02-20T12:00:00Z, end: 2026-02-20T16:00:00Z}\n")
    assert "event before " not in err and err.count("warning:") == 1, err
    assert "event long-before (2026-02-20T10:00:00+00:00 .. 2026-02-20T16:00:00+00:00) falls outside" in err


def test_an_event_outside_the_data_and_horizon_is_warned_about(tmp_path, capsys):
    ev, err = _stderr_with_events(tmp_path, capsys,
                                  "  - {name: typo, kind: sale, start: 2036-03-02T10:00:00Z, "
                                  "peak: 2036-03-02T12:00:00Z, end: 2036-03-02T16:00:00Z}\n"
                                  "  - {name: in, kind: sale, start: 2026-03-02T10:00:00Z, "
                                  "peak: 2026-03-02T12:00:00Z, end: 2026-03-02T16:00:00Z}\n"
                                  "  - {name: yearly, kind: holiday, start: 2020-03-03T00:00:00Z, "
                                  "peak: 2020-03-03T12:00:00Z, end: 2020-03-04T00:00:00Z, recurrence: yearly}\n")
    assert err.count("warning:") == 1, err
    assert (f"warning: {ev}: event typo (2036-03-02T10:00:00+00:00 .. 2036-03-02T16:00:00+00:00) falls outside the "
            f"history and the forecast") in err and err.rstrip().endswith("it has no effect (a wrong year?)")
