"""The event calendar: sales, joint live events with partner platforms, and holidays.

An event is the unit every other part of Ebbtide reasons about: the forecaster turns it into
holiday windows, a pre-event ramp and a post-event decay (the ebb); the planner pre-scales before
its ramp; the cost report bills per event. Times are ISO 8601 with a zone, kept in UTC (the offsets
they were written with are kept beside them: a yearly event repeats in them, `Event.occurrences`).

Shapes accepted for an events file: a mapping with a top-level `events:` list (the same entries a
policy's `events:` holds), or a bare list of those entries.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from datetime import datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (BaseModel, ConfigDict, Field, FieldSerializationInfo, PrivateAttr, TypeAdapter,
                      ValidationError, ValidatorFunctionWrapHandler, field_serializer, field_validator,
                      model_validator)

from policies.errors import InputFileError
from policies.units import parse_duration, parse_time
from policies.yamlio import format_path, format_validation_errors, line_for, load_yaml_with_lines

EventKind = Literal["sale", "joint_live", "holiday"]
_TIMES = ("start", "peak", "end")

EBB_SPAN = timedelta(days=14)
"""The ebb of an event: [event end, end + 14 days). One definition for the bitrate rules
(`after_event`), the replay's post-event windows and the cost report's ebb windows."""


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a CSV cell as
a formula (OWASP, "CSV Injection"): an event name must not start with one; the report's CSV writer
neutralises any text cell that still does."""


class Event(BaseModel):
    """One event in the calendar. `start` <= `peak` <= `end`, all with a zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique name (ignoring case), used in reports (e.g. "
                      "`singles-day-2026`); without `@` (it marks a yearly event's other occurrences), `:` "
                      "(the model's own names are `NAME:shape`, `CC:holiday`, `event:NAME`) or `_delim_`, "
                      "and not starting with `=`, `+`, `-`, a tab or a carriage return (a spreadsheet "
                      "opening costs_by_event.csv would run it as a formula).")
    kind: EventKind = Field(
        description="`sale` (11.11, 618, Black Friday), `joint_live` (co-streaming or a joint event "
        "with a partner platform), or `holiday`. The kind changes the forecast cut between the peak and "
        "the end: a `sale` holds its level to `end` (a discount holds its buyers), while a `joint_live` "
        "event may be over at any moment, so the forecast is the mean of the show going on and over (a "
        "launch, a keynote, any show whose audience can leave at once is `joint_live`). Measured on real "
        "launches cut at their peak: 1.0x and 0.7x the best baseline as `joint_live`, 1.7x and 1.2x as "
        "`sale` (bench/README.md, \"Cut at a show's peak\"). A `holiday` is a calendar day effect: no ramp, "
        "no ebb, its days named in the model's holiday windows."
    )
    start: datetime = Field(
        description="When the pre-event ramp starts (warm-up, pre-sale), ISO 8601 with zone. "
        "Pre-scaling aims to have pods ready by this time."
    )
    peak: datetime = Field(description="When traffic peaks, ISO 8601 with zone.")
    end: datetime = Field(
        description="When the event itself ends, ISO 8601 with zone; the ebb (post-event decay) "
        "starts here."
    )
    recurrence: Literal["yearly"] | None = Field(
        default=None,
        description="`yearly`: the event repeats on the same local dates and wall-clock times every year "
        "(Singles Day, 618): local in the workload's `forecast.calendar_tz` when it is not UTC, else in the "
        "UTC offset each time is written with (`+08:00`). 29 February repeats on 28 February in other "
        "years. Absent: a one-off event.",
    )
    ebb: timedelta | None = Field(
        default=None,
        description="Optional hint for the ebb's time constant (how long until the excess over "
        "the peace state falls to 1/e), e.g. `36h`. Absent: learned from earlier events in the "
        "history or chosen among candidates by the recent fit.",
    )
    lift: float | None = Field(
        default=None,
        description="Optional size hint for a sale or joint_live event the history does not show yet "
        "(a first joint live show, a yearly sale whose last occurrence is beyond the lookback): traffic "
        "at the event's `peak` as a multiple of what the same time would see without the event, e.g. `8`. "
        "Used only while the history holds no point of the event (before its ramp starts): the forecast "
        "then rises to this multiple at the peak, so capacity is pre-scaled for it; once the ramp is "
        "observed, the effect fitted to the data takes over (until its peak is seen, the forecast is "
        "capped at this multiple of the history's highest value). It wins over the size borrowed from "
        "seen events of the same kind. Pre-scaling holds the capacity of the lifted peak from `start` on, "
        "so declare `start` where the ramp really begins (or bound it with a workload's "
        "`scaling.event_lookahead`). Finite, > 1 and <= 1000; not for `holiday` "
        "events. Absent: learnt, borrowed, or no effect.",
        json_schema_extra={"exclusiveMinimum": 1, "maximum": 1000},
    )
    _written_zones: tuple[tzinfo, tzinfo, tzinfo] | None = PrivateAttr(default=None)
    """The UTC offsets `start`, `peak` and `end` were written with (the fields hold UTC): where
    a yearly event repeats without a calendar zone (`occurrences`). None: UTC."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # `@` names a yearly event's other occurrences (`singles-day@2025`); `_delim_` is the
        # one text the forecaster's model (Prophet) cannot take in a column name; every name the
        # model derives from an event (`NAME:shape`, `NAME:inside`, `NAME:tail`, `NAME:settle`,
        # `event:NAME`) or a country's holiday (`CN:National Day`) holds a `:`, so a name
        # without one can never collide with them (`sts70:shape` next to `sts70` failed every fit).
        for bad, why in (("@", "it marks a yearly event's other occurrences, e.g. singles-day@2025"),
                         (":", "the model's own names hold one: NAME:shape, NAME:inside, NAME:tail, "
                               "NAME:settle, event:NAME, CC:holiday"),
                         ("_delim_", "the forecaster's model cannot take it in a name")):
            if bad in v:
                raise ValueError(f"event name {v!r} must not contain {bad!r} ({why})")
        if v.startswith(FORMULA_STARTS):
            raise ValueError(f"event name {v!r} must not start with {v[0]!r}: a spreadsheet opening the report's "
                             f"costs_by_event.csv reads a cell starting with =, +, -, @, a tab or a carriage "
                             f"return as a formula")
        return v

    @field_validator("start", "peak", "end", mode="before")
    @classmethod
    def _aware_time(cls, v):
        return parse_time(v)

    @field_validator("ebb", mode="before")
    @classmethod
    def _duration(cls, v):
        if v is None:
            return None
        td = parse_duration(v)
        if td <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. 36h")
        return td

    @field_validator("lift")
    @classmethod
    def _lift(cls, v, info):
        if v is None:
            return None
        if not (math.isfinite(v) and 1.0 < v <= 1000.0):
            raise ValueError(f"must be a finite number > 1 and <= 1000 (the peak's traffic as a multiple of "
                             f"the same time without the event, e.g. 8), got {v:g}")
        if info.data.get("kind") == "holiday":
            raise ValueError("not allowed on a `holiday` event (holidays are modelled as Prophet holiday "
                             "windows learnt from the history); give it to a `sale` or `joint_live` event")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> "Event":
        if not (self.start <= self.peak <= self.end):
            raise ValueError(
                f"times must satisfy start <= peak <= end "
                f"(start {self.start.isoformat()}, peak {self.peak.isoformat()}, end {self.end.isoformat()})"
            )
        if self.recurrence == "yearly" and self.end - self.start > timedelta(days=60):
            raise ValueError("a yearly event must last at most 60 days from start to end")
        return self

    @field_serializer("start", "peak", "end")
    def _as_written(self, v: datetime, info: FieldSerializationInfo) -> datetime:
        """A yearly event's times are dumped in the offset they were written with, so a JSON round
        trip keeps where it repeats and the policy digest changes when only that offset does. A
        one-off event's offset means nothing: dumped in UTC (the digest ignores how it is written)."""
        zones = self._written_zones
        if zones is None or self.recurrence != "yearly":
            return v
        return v.astimezone(zones[_TIMES.index(info.field_name)])

    @model_validator(mode="wrap")
    @classmethod
    def _keep_written_zones(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> "Event":
        event = handler(data)
        if isinstance(data, Mapping) and event._written_zones is None:
            # Valid once the handler accepted them; only the offsets are kept (the fields hold UTC).
            event._written_zones = tuple(parse_time(data[k], keep_zone=True).tzinfo for k in _TIMES)
        return event

    def occurrences(self, since: datetime, until: datetime, tz: str | None = None) -> list["Event"]:
        """This event's occurrences overlapping [since - 30d, until + 30d], a yearly one repeated
        on the same local date and wall-clock time every year (named `NAME@YEAR`, the local year
        of its peak): local in `tz` (the calendar's IANA zone, where a DST change moves the
        offset) unless it is None or UTC (the default calendar), else in the UTC offset each time
        was written with (`2016-03-01T00:00:00+08:00` repeats on 1 March at 00:00 +08:00, not on
        29 February at 16:00 UTC). 29 February repeats on 28 February in other years. Years
        outside 1-9999 are left out."""
        if self.recurrence != "yearly":
            return [self]
        if tz is not None and tz != "UTC":
            zones: tuple[tzinfo, ...] = (ZoneInfo(tz),) * 3
        else:
            zones = self._written_zones or (timezone.utc,) * 3
        local = [getattr(self, k).astimezone(z) for k, z in zip(_TIMES, zones, strict=True)]
        out = []
        lo, hi = _padded(since, -30), _padded(until, 30)
        for year in range(since.year - 1, until.year + 2):
            shift = year - local[1].year
            occ = self
            if shift:
                try:
                    start, peak, end = (_same_local_time(t, t.year + shift) for t in local)
                except (ValueError, OverflowError):  # outside the years 1-9999
                    continue
                # A 29 February moved to the 28th, or a time in a DST gap, must not reorder them.
                peak = max(peak, start)
                occ = self.model_copy(update={"start": start, "peak": peak, "end": max(end, peak),
                                              "name": f"{self.name}@{year}"})
            if occ.end >= lo and occ.start <= hi:
                out.append(occ)
        return out


def _padded(t: datetime, days: int) -> datetime:
    """`t` moved by `days`, held at the first or last time a datetime holds."""
    try:
        return t + timedelta(days=days)
    except OverflowError:
        return (datetime.min if days < 0 else datetime.max).replace(tzinfo=timezone.utc)


def _same_local_time(t: datetime, year: int) -> datetime:
    """`t` (aware, in its local zone) on the same local date and wall-clock time in `year`, in
    UTC; 29 February -> 28 February in a year without one. ValueError/OverflowError outside the
    years 1-9999."""
    day = 28 if (t.month, t.day) == (2, 29) and not calendar.isleap(year) else t.day
    return t.replace(year=year, day=day).astimezone(timezone.utc)


_EVENT_LIST = TypeAdapter(list[Event])


def expand_events(events: list[Event] | tuple[Event, ...], since: datetime, until: datetime,
                  tz: str | None = None) -> list[Event]:
    """All occurrences (yearly events repeated in the calendar zone `tz`, see
    `Event.occurrences`) touching the window, sorted by start."""
    out: list[Event] = []
    for ev in events:
        out.extend(ev.occurrences(since, until, tz))
    return sorted(out, key=lambda e: e.start)


RECURRING_GAP = timedelta(hours=48)
"""Sale/joint_live events starting this soon after the one before are a run (`recurring_run`)."""

RECURRING_RUN = 5
"""A run of this many such events or more is warned about (`recurring_run`)."""


def recurring_run(events: list[Event] | tuple[Event, ...]) -> list[Event]:
    """The longest run of sale/joint_live events each starting within RECURRING_GAP of the one
    before (by start), when it holds RECURRING_RUN or more; else []. A daily or every-other-day
    show is the traffic's own cycle, which the forecaster learns from the history. Declared as
    events, each gets an ebb and a new peace level that overlap the next ones' and cancel in the
    history, and the forecast drifts up once they stop being replenished: 28 daily 2-hour shows
    made NASA's next week 1.24 WAPE, against 0.27 with no calendar (bench/README.md, "The event
    calendar, the finance report, the Helm chart and the planner, swept").
    Back-to-back sales (a pre-sale wave, Black Friday then Cyber Monday) are runs of 2-3."""
    shows = sorted((e for e in events if e.kind != "holiday"), key=lambda e: e.start)
    best: list[Event] = []
    run: list[Event] = []
    for e in shows:
        run = run + [e] if run and e.start - run[-1].start <= RECURRING_GAP else [e]
        if len(run) > len(best):
            best = run
    return best if len(best) >= RECURRING_RUN else []


def recurring_run_warning(events: list[Event] | tuple[Event, ...]) -> str | None:
    """The warning for `recurring_run`, or None."""
    run = recurring_run(events)
    if not run:
        return None
    return (f"{len(run)} sale/joint_live events each start within {RECURRING_GAP.total_seconds() / 3600:g} h of "
            f"the one before ({run[0].name} .. {run[-1].name}): a recurring show is the traffic's daily or weekly "
            f"cycle, which the forecaster learns from the history; declared as events, their overlapping ebbs "
            f"can push the forecast up for days (28 daily shows: next week's error 1.24 against 0.27 without "
            f"them). Declare the one-off events only")


def holiday_off_midnight(event: Event, tz: str) -> str | None:
    """A warning when a holiday's start or end is not a midnight in `tz`, the calendar zone its
    dates are read in: a day written `2026-10-01T00:00:00+08:00` .. `2026-10-08T00:00:00+08:00`
    read in UTC covers 30 September .. 7 October. None for other kinds or midnight bounds."""
    if event.kind != "holiday":
        return None
    zone = ZoneInfo(tz)
    start, end = event.start.astimezone(zone), event.end.astimezone(zone)
    if start.time() == end.time() == time.min:
        return None
    last = end - timedelta(days=1) if end.time() == time.min else end  # the end is exclusive
    return (f"holiday {event.name}: its start or end is not midnight in the calendar zone {tz}, where holiday "
            f"dates are read: it covers {start:%Y-%m-%d} .. {last:%Y-%m-%d} there; write its bounds as local "
            f"midnights, or set the calendar zone (forecast.calendar_tz, --calendar-tz) to the one you meant")


def calendar_problems(items: object) -> list[tuple[tuple[int, str], str]]:
    """Problems between the entries of an `events:` list, found on the raw entries (mappings, as
    loaded from YAML) so that they are told together with any error inside an entry (every error
    at once): (location in the list, e.g. (2, "name"), message), in list order.

    - Two names equal ignoring case (`show`, `SHOW`): two events of one name for a person, reported
      and billed apart, each adding its own effect.
    - Two sale/joint_live entries with the same start, peak and end (names aside): the model adds
      both effects on one window (two `lift: 5` made the peak 24x) and cannot tell them apart.
      Each of them gets an error naming the other, so both lines are named."""
    if not isinstance(items, list):
        return []
    out: list[tuple[tuple[int, str], str]] = []
    first: dict[str, int] = {}
    windows: dict[tuple[datetime, ...], list[int]] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        name = item.get("name")
        if isinstance(name, str):
            j = first.setdefault(name.casefold(), i)
            if j != i:
                other = items[j]["name"]
                also = "" if other == name else f" {other!r}; names are compared ignoring case"
                out.append(((i, "name"), f"duplicate event name {name!r} (also events[{j}]{also})"))
        if item.get("kind") in ("sale", "joint_live"):
            try:
                window = tuple(parse_time(item[k]) for k in _TIMES)
            except (KeyError, TypeError, ValueError):
                continue  # told by the entry's own validation
            windows.setdefault(window, []).append(i)
    for same in windows.values():
        for i in same if len(same) > 1 else ():
            others = ", ".join(f"events[{j}] {items[j].get('name')!r}" for j in same if j != i)
            out.append(((i, "start"), f"same start, peak and end as {others}: the forecast would add the "
                        f"effect (and `lift`) of each on one window; declare one event (its `lift` the "
                        f"combined size)"))
    return sorted(out, key=lambda p: p[0][0])


def parse_events(data: object, file: str | Path, lines: dict, prefix: tuple = (),
                 taken: Mapping[str, str] | None = None) -> list[Event]:
    """Validate an `events:` list (already loaded from YAML); errors name file, line and field.
    `taken`: event names already in the calendar -> where they are (e.g. the policy file); an
    entry reusing one (ignoring case) is an error (two events of one name would be reported and
    billed as one). Every error at once: those inside entries, then `calendar_problems`. A null
    list (`events:` with nothing after it) is an error, as in a policy (`events: []` for none)."""
    label = format_path(prefix) if prefix else "events"

    def at(loc: tuple, msg: str) -> str:
        return f"{file}:{line_for(lines, prefix + loc)} {label}[{loc[0]}].{loc[1]}: {msg}"

    problems = [at(loc, msg) for loc, msg in calendar_problems(data)]
    taken_by_key = {n.casefold(): (n, where) for n, where in (taken or {}).items()}
    for i, item in enumerate(data if isinstance(data, list) else []):
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name.casefold() in taken_by_key:
            other, where = taken_by_key[name.casefold()]
            same = "" if other == name else f" (as {other!r}; names are compared ignoring case)"
            problems.append(at((i, "name"), f"event name {name!r} is already in {where}{same}; rename one of them"))
    try:
        events = _EVENT_LIST.validate_python(data)
    except ValidationError as exc:
        raise InputFileError(format_validation_errors(exc, file, lines, prefix) + problems) from None
    if problems:
        raise InputFileError(problems)
    return events


def country_calendar(code: str, years):
    """The `holidays` package's public-holiday calendar of `code` (an ISO 3166 code such as US,
    CN, DE) for `years` (a year or an iterable of years): a mapping date -> name, with
    `.weekend` (the country's weekend weekdays, Monday = 0). ValueError naming the code when
    the package has no such country."""
    import holidays  # pure data, no I/O; imported late (slow to import)

    try:
        return holidays.country_holidays(code, years=years)
    except NotImplementedError:
        raise ValueError(f"unknown holiday country code {code!r} (the `holidays` package has no such "
                         f"country; use an ISO 3166 code such as CN, US, DE)") from None


def check_holiday_country(code: str) -> str:
    """`code` unchanged when the `holidays` package has a public-holiday calendar for it; else
    ValueError naming it (`country_calendar`). Checked where a code is written (a policy's
    `country_holidays`, `ebbtide backtest --country`): an unknown code is an input error there,
    instead of failing every later fit."""
    country_calendar(code, 2000)
    return code


def load_events_file(path: str | Path, taken: Mapping[str, str] | None = None) -> list[Event]:
    """Read an events file: a top-level `events:` list, or a bare list of events. `taken`: names
    already in the calendar -> where (see parse_events); reusing one is an error naming the line."""
    data, lines = load_yaml_with_lines(path)
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"events", "apiVersion"})
        if unknown:
            raise InputFileError(
                [f"{path}:{lines.get((unknown[0],))} {unknown[0]}: unknown top-level key; an events "
                 f"file holds `events:` (a list)"]
            )
        if "events" not in data:
            raise InputFileError([f"{path}:1 events: required top-level list is missing"])
        return parse_events(data["events"], path, lines, ("events",), taken)
    if isinstance(data, list):
        return parse_events(data, path, lines, taken=taken)
    raise InputFileError([f"{path}:1: an events file holds a list of events or `events:` with one"])
