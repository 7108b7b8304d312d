"""The event calendar: sales, joint live events with partner platforms, and holidays.

An event is the unit every other part of Ebbtide reasons about: the forecaster turns it into
holiday windows, a pre-event ramp and a post-event decay (the ebb); the planner pre-scales before
its ramp; the cost report bills per event. Times are ISO 8601 with a zone, kept in UTC.

Shapes accepted for an events file: a mapping with a top-level `events:` list (the same entries a
policy's `events:` holds), or a bare list of those entries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from policies.errors import InputFileError
from policies.units import parse_duration, parse_time
from policies.yamlio import format_validation_errors, load_yaml_with_lines

EventKind = Literal["sale", "joint_live", "holiday"]

EBB_SPAN = timedelta(days=14)
"""The ebb of an event: [event end, end + 14 days). One definition for the bitrate rules
(`after_event`), the replay's post-event windows and the cost report's ebb windows."""


class Event(BaseModel):
    """One event in the calendar. `start` <= `peak` <= `end`, all with a zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique name, used in reports (e.g. `singles-day-2026`); "
                      "without `@` (it marks a yearly event's other occurrences) or `_delim_`.")
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
        description="`yearly`: the event repeats on the same calendar dates every year "
        "(Singles Day, 618); absent: a one-off event.",
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

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # `@` names a yearly event's other occurrences (`singles-day@2025`); `_delim_` is the
        # one text the forecaster's model (Prophet) cannot take in a column name.
        for bad in ("@", "_delim_"):
            if bad in v:
                raise ValueError(f"event name {v!r} must not contain {bad!r}")
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

    def occurrences(self, since: datetime, until: datetime) -> list["Event"]:
        """This event's occurrences overlapping [since - 30d, until + 30d] (yearly ones shifted)."""
        if self.recurrence != "yearly":
            return [self]
        out = []
        pad = timedelta(days=30)
        for year in range(since.year - 1, until.year + 2):
            shift = year - self.peak.year
            try:
                occ = self.model_copy(
                    update={
                        "start": self.start.replace(year=self.start.year + shift),
                        "peak": self.peak.replace(year=self.peak.year + shift),
                        "end": self.end.replace(year=self.end.year + shift),
                        "name": self.name if shift == 0 else f"{self.name}@{year}",
                    }
                )
            except ValueError:  # 29 February in a non-leap year
                continue
            if occ.end >= since - pad and occ.start <= until + pad:
                out.append(occ)
        return out


_EVENT_LIST = TypeAdapter(list[Event])


def expand_events(events: list[Event] | tuple[Event, ...], since: datetime, until: datetime) -> list[Event]:
    """All occurrences (yearly events repeated) touching the window, sorted by start."""
    out: list[Event] = []
    for ev in events:
        out.extend(ev.occurrences(since, until))
    return sorted(out, key=lambda e: e.start)


def parse_events(data: object, file: str | Path, lines: dict, prefix: tuple = (),
                 taken: Mapping[str, str] | None = None) -> list[Event]:
    """Validate an `events:` list (already loaded from YAML); errors name file, line and field.
    `taken`: event names already in the calendar -> where they are (e.g. the policy file); an
    entry reusing one is an error (two events of one name would be reported and billed as one)."""
    try:
        events = _EVENT_LIST.validate_python(data if data is not None else [])
    except ValidationError as exc:
        raise InputFileError(format_validation_errors(exc, file, lines, prefix)) from None
    names: dict[str, int] = {}
    problems = []
    for i, ev in enumerate(events):
        if ev.name in names:
            line = lines.get(prefix + (i, "name"))
            problems.append(
                f"{file}:{line} {'.'.join(map(str, prefix)) or 'events'}[{i}].name: duplicate event "
                f"name {ev.name!r} (also events[{names[ev.name]}])"
            )
        names[ev.name] = i
        if taken and ev.name in taken:
            line = lines.get(prefix + (i, "name"))
            problems.append(
                f"{file}:{line} {'.'.join(map(str, prefix)) or 'events'}[{i}].name: event name {ev.name!r} "
                f"is already in {taken[ev.name]}; rename one of them"
            )
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
