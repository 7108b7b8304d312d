"""Durations, times, YAML with line numbers and the event calendar (policies/units.py,
policies/yamlio.py, policies/events.py).

Cases:
- parse_duration: units and compounds, numbers as seconds, timedelta passthrough; refuses
  garbage, trailing junk, negatives, booleans, empty text;
- format_duration: hand-computed examples; property: parse(format(td)) == td (whole seconds);
- parse_time: Z and offsets to UTC; refuses times without a zone and non-ISO text;
- Event: times parsed to UTC, `ebb` hint parsed, order start <= peak <= end enforced, unknown
  fields refused, a yearly event longer than 60 days refused;
- occurrences/expand_events: a yearly event is repeated per year around the window (29 Feb
  repeated on 28 Feb in other years), one-off events pass through, results sorted by start;
- load_events_file: `events:` mapping and bare list; errors name file and line (bad order,
  missing field, unknown field, zone-less time, duplicate event name, duplicate YAML key,
  unknown top-level key, invalid YAML, missing file).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.errors import InputFileError
from policies.events import Event, expand_events, load_events_file
from policies.units import format_duration, parse_duration, parse_time

UTC = timezone.utc


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("168h", 604800), ("7d", 604800), ("2w", 1209600),
     ("250ms", 0.25), ("1.5h", 5400), (" 10M ", 600), (42, 42), (0, 0), (2.5, 2.5)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_parse_duration_passthrough_and_refusals():
    assert parse_duration(timedelta(hours=2)) == timedelta(hours=2)
    for bad in ("", "abc", "10", "10x", "5m junk", "m5", "-5m", -1, True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_format_duration_examples():
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(timedelta(days=7)) == "7d"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(days=1, seconds=61)) == "1d1m1s"


@given(st.integers(min_value=0, max_value=10**8))
def test_format_parse_round_trip(seconds):
    td = timedelta(seconds=seconds)
    assert parse_duration(format_duration(td)) == td


def test_parse_time():
    assert parse_time("2026-11-11T12:00:00Z") == datetime(2026, 11, 11, 12, tzinfo=UTC)
    assert parse_time("2026-11-11T20:00:00+08:00") == datetime(2026, 11, 11, 12, tzinfo=UTC)
    assert parse_time(datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="no zone"):
        parse_time("2026-11-11T12:00:00")
    with pytest.raises(ValueError, match="no zone"):
        parse_time(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_time("11/11/2026")


def ev(**kw) -> Event:
    base = dict(name="s", kind="sale", start="2026-11-10T00:00:00+08:00",
                peak="2026-11-11T20:00:00+08:00", end="2026-11-12T02:00:00+08:00")
    base.update(kw)
    return Event(**base)


def test_event_model():
    e = ev(ebb="36h")
    assert e.peak == datetime(2026, 11, 11, 12, tzinfo=UTC)
    assert e.ebb == timedelta(hours=36)
    with pytest.raises(ValidationError, match="start <= peak <= end"):
        ev(peak="2026-11-13T00:00:00Z")
    with pytest.raises(ValidationError, match="Extra inputs"):
        ev(colour="red")
    with pytest.raises(ValidationError, match="no zone"):
        ev(start="2026-11-10T00:00:00")
    with pytest.raises(ValidationError, match="positive duration"):
        ev(ebb="0s")
    with pytest.raises(ValidationError, match="at most 60 days"):
        ev(recurrence="yearly", start="2026-08-01T00:00:00Z")


def test_yearly_occurrences_and_expand():
    yearly = ev(name="singles-day", recurrence="yearly")
    once = ev(name="joint", kind="joint_live", start="2027-03-01T00:00:00Z",
              peak="2027-03-01T12:00:00Z", end="2027-03-01T14:00:00Z")
    got = expand_events([once, yearly], datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))
    assert [e.name for e in got] == ["joint", "singles-day@2027"]
    assert got[1].peak == datetime(2027, 11, 11, 12, tzinfo=UTC)
    wide = expand_events([yearly], datetime(2025, 11, 1, tzinfo=UTC), datetime(2027, 11, 30, tzinfo=UTC))
    assert [e.peak.year for e in wide] == [2025, 2026, 2027]
    assert wide[1].name == "singles-day"
    leap = ev(name="leap", recurrence="yearly", start="2028-02-28T00:00:00Z",
              peak="2028-02-29T12:00:00Z", end="2028-03-01T00:00:00Z")
    occ = leap.occurrences(datetime(2029, 1, 1, tzinfo=UTC), datetime(2029, 12, 31, tzinfo=UTC))
    # 29 February repeats on 28 February in a year without one (it used to have no occurrence).
    assert [o.peak for o in occ if o.peak.year == 2029] == [datetime(2029, 2, 28, 12, tzinfo=UTC)]


GOOD = """\
events:
  - name: singles-day
    kind: sale
    start: 2026-11-10T00:00:00+08:00
    peak: 2026-11-11T20:00:00+08:00
    end: 2026-11-12T02:00:00+08:00
    recurrence: yearly
    ebb: 36h
  - name: joint
    kind: joint_live
    start: 2026-12-01T10:00:00Z
    peak: 2026-12-01T12:00:00Z
    end: 2026-12-01T14:00:00Z
"""


def test_load_events_file_both_shapes(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text(GOOD)
    events = load_events_file(p)
    assert [e.name for e in events] == ["singles-day", "joint"]
    assert events[0].ebb == timedelta(hours=36) and events[0].recurrence == "yearly"
    bare = tmp_path / "bare.yaml"
    bare.write_text("\n".join(line[2:] for line in GOOD.splitlines()[1:]) + "\n")
    assert load_events_file(bare) == events


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (("    peak: 2026-11-11T20:00:00+08:00", "    peak: 2026-11-13T20:00:00+08:00"),
         ":2 events[0]: times must satisfy start <= peak <= end"),
        (("    end: 2026-12-01T14:00:00Z\n", ""), ":9 events[1].end: required field is missing"),
        (("    ebb: 36h", "    ebb: 36h\n    colour: red"), ":9 events[0].colour: unknown field"),
        (("start: 2026-12-01T10:00:00Z", "start: 2026-12-01T10:00:00"), ":11 events[1].start: time has no zone"),
        (("name: joint", "name: singles-day"), ":9 events[1].name: duplicate event name 'singles-day'"),
        (("    ebb: 36h", "    ebb: 36h\n    kind: sale"), ":9: invalid YAML: duplicate key 'kind' (first at line 3)"),
        (("events:", "event:"), ":1 event: unknown top-level key"),
        (("  - name: joint", "  - name: [joint"), "invalid YAML"),
        (("name: joint", "name: joint@home"), ":9 events[1].name: event name 'joint@home' must not contain '@'"),
        (("name: joint", "name: a_delim_b"), ":9 events[1].name: event name 'a_delim_b' must not contain '_delim_'"),
    ],
)
def test_load_events_file_errors(tmp_path, edit, fragment):
    p = tmp_path / "e.yaml"
    old, new = edit
    assert old in GOOD
    p.write_text(GOOD.replace(old, new))
    with pytest.raises(InputFileError) as exc:
        load_events_file(p)
    assert str(exc.value).startswith(str(p)), str(exc.value)
    assert fragment in str(exc.value), str(exc.value)


def test_load_events_file_missing(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        load_events_file(tmp_path / "none.yaml")
