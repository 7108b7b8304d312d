"""The forecast benchmark's own-trace mode (bench/forecast.py --csv), without fitting anything.

Cases:
- default cuts: the end of each sale/joint_live event (the first whole hour after it, + 1 h), 1 and
  2 days later, all in the "ebb" group; holiday events are modelled but not cut after;
- explicit --cut times: in the "ebb" group only within 3 days after such an event's end;
- errors for people: a cut without a zone, no cut and no event to cut after.
"""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import load_bench
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


def test_default_cuts_follow_each_ebb_event(bench, events, tmp_path):
    case = bench.custom_case(tmp_path / "mine.csv", events, [], tz="Europe/London", country="GB")
    assert case.file == str((tmp_path / "mine.csv").resolve())
    assert (case.calendar_tz, case.country, len(case.events)) == ("Europe/London", "GB", 2)
    assert [(label, ts.isoformat(), clear) for label, ts, clear in case.cuts] == [
        ("launch at end", "2026-01-05T20:00:00+00:00", True),  # 18:30 -> 19:00, + 1 h
        ("launch +1d after end", "2026-01-06T18:30:00+00:00", True),
        ("launch +2d after end", "2026-01-07T18:30:00+00:00", True),
    ]
    groups = [bench.group_of(bench.Row("mine.csv", label, ts.isoformat(), clear, 168.0))
              for label, ts, clear in case.cuts]
    assert groups == ["ebb", "ebb", "ebb"]


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
