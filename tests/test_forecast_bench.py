"""The forecast benchmark's own-trace mode (bench/forecast.py --csv), without fitting anything.

Cases:
- default cuts: the end of each sale/joint_live event (the first whole hour after it, + 1 h), 1 and
  2 days later, all in the "ebb" group; holiday events are modelled but not cut after;
- explicit --cut times: in the "ebb" group only within 3 days after such an event's end;
- errors for people: a cut without a zone, no cut and no event to cut after;
- --no-calendar / --undeclare NAME: the same cuts (chosen from the events file), Ebbtide given
  no events / all but NAME;
- the seasonal oracle: the median of the same slot 2 and 1 weeks before and 1 and 2 weeks after,
  by hand on a 5-week hourly trace (its WAPE and coverage), with gaps and the trace's end skipped,
  and None when no other week exists.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from conftest import load_bench
from forecaster.series import Series
from policies.errors import EbbtideError


EVENTS = """events:
  - {name: launch, kind: joint_live, start: 2026-01-05T00:00:00Z, peak: 2026-01-05T12:00:00Z, end: 2026-01-05T18:30:00Z}
  - {name: new-year, kind: holiday, start: 2026-01-01T00:00:00Z, peak: 2026-01-01T12:00:00Z, end: 2026-01-02T00:00:00Z}
"""


@pytest.fixture(scope="module")
def bench():
    return load_bench("forecast")


@pytest.fixture()
def events(tmp_path):
    path = tmp_path / "events.yaml"
    path.write_text(EVENTS)
    return path


def _csv(path, step: str, periods: int):
    ts = pd.date_range("2025-12-01", periods=periods, freq=step, tz="UTC")
    pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": 100}).to_csv(path, index=False)
    return path


def test_default_cuts_follow_each_ebb_event(bench, events, tmp_path):
    case = bench.custom_case(_csv(tmp_path / "mine.csv", "h", 24 * 60), events, [], tz="Europe/London",
                             country="GB")
    assert case.file == str((tmp_path / "mine.csv").resolve())
    assert (case.calendar_tz, case.country, len(case.events)) == ("Europe/London", "GB", 2)
    assert [(label, ts.isoformat(), clear) for label, ts, clear in case.cuts] == [
        ("launch at end", "2026-01-05T20:00:00+00:00", True),  # 18:30 -> 19:00, + 1 h
        ("launch +1d after end", "2026-01-06T19:00:00+00:00", True),  # on the hour: no row seen in part
        ("launch +2d after end", "2026-01-07T19:00:00+00:00", True),
    ]
    groups = [bench.group_of(bench.Row("mine.csv", label, ts.isoformat(), clear, 168.0))
              for label, ts, clear in case.cuts]
    assert groups == ["ebb", "ebb", "ebb"]


def test_default_cuts_on_daily_data_fall_on_its_days(bench, events, tmp_path):
    """A row of daily data stands for its whole day: "+1d" at 18:30 trained on the 5 h after it,
    and "at end" was the same cut twice (a sweep on daily Wikipedia views)."""
    case = bench.custom_case(_csv(tmp_path / "daily.csv", "D", 90), events, [])
    assert [(label, ts.isoformat()) for label, ts, _ in case.cuts] == [
        ("launch at end", "2026-01-07T00:00:00+00:00"),  # the day after the end's day seen whole
        ("launch +2d after end", "2026-01-08T00:00:00+00:00"),  # "+1d" was the same day: once
    ]


def test_explicit_cuts_are_ebb_cuts_only_just_after_an_event(bench, events, tmp_path):
    case = bench.custom_case(tmp_path / "mine.csv", events,
                             ["2026-01-07T00:00:00Z", "2026-01-08T18:30:00Z", "2026-01-09T00:00:00+01:00"])
    assert [(ts, clear) for _, ts, clear in case.cuts] == [
        (pd.Timestamp("2026-01-07T00:00:00Z"), True),
        (pd.Timestamp("2026-01-08T18:30:00Z"), True),  # exactly 3 days after the end
        (pd.Timestamp("2026-01-08T23:00:00Z"), False),
    ]


def test_bad_cuts_are_errors_for_people(bench, events, tmp_path):
    with pytest.raises(EbbtideError, match="--cut '2026-01-07': .*zone"):
        bench.custom_case(tmp_path / "mine.csv", events, ["2026-01-07"])
    with pytest.raises(EbbtideError, match="give --cut, or --events"):
        bench.custom_case(tmp_path / "mine.csv", None, [])


def test_cut_every_sweeps_the_ordinary_weeks(bench, tmp_path):
    # 60 days of hourly rows from 2026-01-01T05:00Z: the first cut is the first midnight a full
    # lookback (35 d) in (02-05T05:00Z -> 02-06); every 6 d on while a full week is left (the
    # last row is 03-02T04:00Z: cuts up to 02-23T05:00Z, so 02-18 and not 02-24).
    path = tmp_path / "mine.csv"
    idx = pd.date_range("2026-01-01T05:00:00Z", periods=60 * 24, freq="h")
    path.write_text("ts,value\n" + "".join(f"{t.isoformat()},1\n" for t in idx))
    cuts = bench.sweep_cuts(path, "6d")
    assert cuts == [f"2026-02-{d:02d}T00:00:00+00:00" for d in (6, 12, 18)]
    with pytest.raises(EbbtideError, match="--cut-every 'often'"):
        bench.sweep_cuts(path, "often")


def _weeks_trace(levels, hours_per_week=168):
    """Hourly trace of len(levels) weeks, week k constant at levels[k]."""
    idx = pd.date_range("2026-01-05", periods=len(levels) * hours_per_week, freq="h", tz="UTC")
    return Series(pd.Series(np.repeat(np.asarray(levels, dtype=float), hours_per_week), index=idx), timedelta(hours=1))


def test_seasonal_oracle_is_the_median_of_the_neighbouring_weeks(bench):
    s = _weeks_trace([10, 20, 100, 40, 80])  # the forecast week is week 2 (100)
    week2 = s.values.index[2 * 168:3 * 168]
    got = bench.seasonal_oracle(s, week2)
    # median of 10, 20, 40, 80 = 30 at every point: WAPE |100 - 30| / 100, never covering 100
    assert got["wape"] == pytest.approx(0.70)
    assert got["coverage"] == pytest.approx(0.0)
    # the last week: only weeks -2 (100) and -1 (40) exist -> median 70 against 80
    last = s.values.index[4 * 168:]
    got = bench.seasonal_oracle(s, last)
    assert got["wape"] == pytest.approx(10 / 80)
    assert got["coverage"] == pytest.approx(0.0)


def test_seasonal_oracle_skips_gaps_and_needs_another_week(bench):
    s = _weeks_trace([10, 20, 100, 40, 80])
    values = s.values.copy()
    values.iloc[4 * 168:] = np.nan  # week +2 is a gap: median of 10, 20, 40 = 20
    week2 = s.values.index[2 * 168:3 * 168]
    assert bench.seasonal_oracle(Series(values, timedelta(hours=1)), week2)["wape"] == pytest.approx(0.80)
    one_week = _weeks_trace([50])
    assert bench.seasonal_oracle(one_week, one_week.values.index) is None


def test_no_calendar_keeps_the_cuts_and_drops_the_events(bench, events, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "run_case", lambda case, *a, **k: seen.append(case) or [])
    monkeypatch.setattr(bench, "CASES", ())
    csv = _csv(tmp_path / "mine.csv", "h", 24 * 60)
    for flags in ([], ["--no-calendar"], ["--undeclare", "launch"]):
        assert bench.main(["--csv", str(csv), "--events", str(events), "--json", *flags]) == 0
    with_cal, without, no_launch = seen
    assert len(with_cal.events) == 2 and without.events == ()
    assert [e.name for e in no_launch.events] == ["new-year"]
    assert without.cuts == with_cal.cuts == no_launch.cuts and len(without.cuts) == 3


def test_history_trains_every_model_on_that_much_before_each_cut(bench, tmp_path, monkeypatch, capsys):
    # 60 days of hourly rows from 2026-01-01T05:00Z. With --history 10d the sweep starts at the
    # first midnight 10 days in (01-11T05:00Z -> 01-12), and every model sees only the 10 days
    # before each cut; without it, the whole trace before the cut.
    from forecaster.series import Forecast

    path = tmp_path / "mine.csv"
    idx = pd.date_range("2026-01-01T05:00:00Z", periods=60 * 24, freq="h")
    path.write_text("ts,value\n" + "".join(f"{t.isoformat()},{1 + (t.hour % 3)}\n" for t in idx))
    assert bench.sweep_cuts(path, "20d", timedelta(days=10)) == [
        "2026-01-12T00:00:00+00:00", "2026-02-01T00:00:00+00:00", "2026-02-21T00:00:00+00:00"]
    seen = []

    class Flat:
        name = "flat"

        def fit(self, history):
            seen.append((history.start, history.end))
            return self

        def predict(self, index):
            ones = np.ones(len(index))
            return Forecast(pd.DataFrame({"yhat": ones, "yhat_lower": ones, "yhat_upper": ones}, index=index), "flat")

    monkeypatch.setattr(bench, "EbbtideForecaster", lambda *a, **k: Flat())
    monkeypatch.setattr(bench, "baseline_models", lambda step: [Flat()])
    cut = pd.Timestamp("2026-02-01T00:00:00Z")
    args = ["--csv", str(path), "--cut", cut.isoformat(), "--json", "--no-hindsight", "--repeats", "1"]
    assert bench.main([*args, "--history", "10d"]) == 0
    assert seen and set(seen) == {(cut - pd.Timedelta(days=10), cut - pd.Timedelta(hours=1))}
    seen.clear()
    assert bench.main(args) == 0  # the setting does not outlive its run
    assert seen and set(seen) == {(idx[0], cut - pd.Timedelta(hours=1))}
    capsys.readouterr()
    for bad in ("0s", "soon"):
        assert bench.main([*args, "--history", bad]) == 2
        assert capsys.readouterr().err.startswith(f"error: --history {bad!r}: ")
