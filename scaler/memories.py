"""Planner memory as saved between controller processes: versioned JSON, validated on the way
in by a strict pydantic model, and the rule for what of an old memory may still be trusted.
Pure (no I/O, no clock).

One workload's memory is one JSON document (one data key of the state ConfigMap,
scaler.memory_store):

    {"version": 1, "saved_at": "2026-11-20T12:00:00+00:00",
     "memory": {"recommendations": [["2026-11-20T11:58:00+00:00", 12], ...],
                "last_scale_up_at": null, "last_scale_down_at": "...", "guard_until": "...",
                "guard_actions": ["freeze_scale_in"], "last_demand": 2950.5, "burst_pods": 0,
                "last_step_down_at": null, "collapse_since": null}}

`_Document` reads it, `_Memory` its `memory` (PlannerMemory's fields): pydantic models in
strict mode; a key this release does not know is ignored (a later release of the same format
version added it: a rollback reads what it knows, where refusing the document would start the
workload empty and could drop a guard hold; a change an older reader must not misread takes a
new `version`); every field present but
`jump_since` and `guard_breach` (added later, and written only while an absurd demand jump is
held, or a guard hold names the breach that set it: absent reads as null and "", so a document
of an earlier release reads and re-encodes to the same bytes); no bool or
float for an int, no string for a number. `version` is MEMORY_FORMAT_VERSION; times are ISO 8601
strings with their zone (a time without one is refused); `last_demand` is in demand units, finite
and >= 0 or null; `burst_pods` and the replicas of each `recommendations` [time, replicas] pair
are whole numbers >= 0 (pods); `guard_actions` are policies.schema.BreachAction; no event time
(recommendation, last scale-up/down and step-down, collapse and jump start) is later than `saved_at`.

`decode_memory(encode_memory(m, t))` gives back exactly `m` and `t` (equal instants and equal
UTC offsets; floats by their shortest repr). Anything else is refused with a MemoryFormatError
starting with the path of the first wrong field (`memory.recommendations[3][0]: ...`,
`memory.guard_until: missing`), or `not JSON: ...`, `not a JSON object ...`. `encode_memory` uses
json.dumps, not the model: pydantic would write UTC as `Z` and floats its own way.

`restore_memory` decides what of a decoded memory is trusted at `now` (docs/controller.md,
"Planner memory across restarts").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from policies.schema import BreachAction, Strict, Workload, invalid
from policies.units import format_duration
from policies.yamlio import format_path
from scaler.plans import PlannerMemory

#: Version of the saved document; a document of any other version is not read (empty memory).
MEMORY_FORMAT_VERSION = 1

#: Times that record something that happened (so never after the save).
_EVENT_TIMES = ("last_scale_up_at", "last_scale_down_at", "last_step_down_at", "collapse_since", "jump_since")


class MemoryFormatError(ValueError):
    """A saved memory cannot be read: the message names the field and what is wrong with it."""


@dataclass(frozen=True)
class SavedMemory:
    """One workload's memory as read back, with the time it was saved (aware)."""

    memory: PlannerMemory
    saved_at: datetime


# --------------------------------------------------------------------------- encode
def encode_memory(memory: PlannerMemory, saved_at: datetime) -> str:
    """The JSON text saved for `memory` at `saved_at` (aware). Compact, keys in a fixed order,
    so equal memories saved at equal times give equal texts."""
    _require_zone(saved_at, "saved_at")
    doc = {
        "version": MEMORY_FORMAT_VERSION,
        "saved_at": saved_at.isoformat(),
        "memory": {
            "recommendations": [[_iso(t, "recommendations"), r] for t, r in memory.recommendations],
            "last_scale_up_at": _iso_or_none(memory.last_scale_up_at, "last_scale_up_at"),
            "last_scale_down_at": _iso_or_none(memory.last_scale_down_at, "last_scale_down_at"),
            "guard_until": _iso_or_none(memory.guard_until, "guard_until"),
            "guard_actions": list(memory.guard_actions),
            "last_demand": memory.last_demand,
            "burst_pods": memory.burst_pods,
            "last_step_down_at": _iso_or_none(memory.last_step_down_at, "last_step_down_at"),
            "collapse_since": _iso_or_none(memory.collapse_since, "collapse_since"),
        },
    }
    if memory.jump_since is not None:  # written only while a jump is held: older documents stay byte-equal
        doc["memory"]["jump_since"] = _iso(memory.jump_since, "jump_since")
    if memory.guard_breach:  # likewise, only while a guard hold names its breach
        doc["memory"]["guard_breach"] = memory.guard_breach
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def _require_zone(t: datetime, field: str) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{field}: a saved time must carry a zone, got {t.isoformat()}")


def _iso(t: datetime, field: str) -> str:
    _require_zone(t, field)
    return t.isoformat()


def _iso_or_none(t: datetime | None, field: str) -> str | None:
    return None if t is None else _iso(t, field)


# --------------------------------------------------------------------------- decode
def _aware_time(value: object) -> datetime:
    # By hand rather than pydantic's AwareDatetime, which also takes Unix seconds written as a
    # string, refuses the seconds in an offset that isoformat may write, and gives its own
    # tzinfo class instead of datetime.timezone.
    try:
        t = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        t = None
    if t is None:
        raise PydanticCustomError("memory_time", "not an ISO 8601 time")
    if t.tzinfo is None:
        raise PydanticCustomError("memory_time", "an ISO 8601 time without a zone (a saved time carries one)")
    return t


def _known_version(value: object) -> int:
    if type(value) is not int or value != MEMORY_FORMAT_VERSION:  # type(): True == 1 is no version
        raise PydanticCustomError("memory_version", "not a known format version (this controller reads {known})",
                                  {"known": MEMORY_FORMAT_VERSION})
    return value


#: An aware time (with its zone, offset as written).
_Time = Annotated[datetime, PlainValidator(_aware_time)]
#: A whole number >= 0 (pods).
_Count = Annotated[int, Field(ge=0)]


class _Memory(Strict):
    """PlannerMemory as saved: the same fields, names and order (decode builds one from the other)."""

    model_config = ConfigDict(strict=True, extra="ignore")  # a later release's field: see the module doc

    recommendations: tuple[tuple[_Time, _Count], ...]
    last_scale_up_at: _Time | None
    last_scale_down_at: _Time | None
    guard_until: _Time | None
    guard_actions: tuple[BreachAction, ...]
    last_demand: Annotated[float, Field(ge=0)] | None  # demand units; finite (Strict)
    burst_pods: _Count
    last_step_down_at: _Time | None
    collapse_since: _Time | None
    jump_since: _Time | None = None  # added after version 1 was first written: absent reads as null
    guard_breach: Annotated[str, Field(max_length=4000)] = ""  # added later too: absent reads as ""


class _Document(Strict):
    """The saved document; no event time of `memory` is later than `saved_at`."""

    model_config = ConfigDict(strict=True, extra="ignore")

    version: Annotated[int, PlainValidator(_known_version)]
    saved_at: _Time
    memory: _Memory

    @model_validator(mode="after")
    def _events_before_the_save(self) -> "_Document":
        m = self.memory
        times = [(("memory", "recommendations", i, 0), t) for i, (t, _) in enumerate(m.recommendations)]
        times += [(("memory", name), getattr(m, name)) for name in _EVENT_TIMES]
        late = [(loc, f"a time after saved_at {self.saved_at.isoformat()}: it records something that "
                      "happened before the save", t.isoformat())
                for loc, t in times if t is not None and t > self.saved_at]
        if late:
            raise invalid("memory", late)
        return self


def decode_memory(text: str) -> SavedMemory:
    """The memory and its save time from `text` (as `encode_memory` writes it).

    Raises MemoryFormatError naming the field for anything that is not exactly a memory of
    version MEMORY_FORMAT_VERSION (see the module docstring for the checks)."""
    try:
        doc = _Document.model_validate_json(text)
    except ValidationError as exc:
        raise MemoryFormatError(_first_problem(exc)) from None
    return SavedMemory(PlannerMemory(**dict(doc.memory)), doc.saved_at)


def _first_problem(exc: ValidationError) -> str:
    """`path: message` of the first error (`version`, the first field, is told before the rest)."""
    err = exc.errors(include_url=False)[0]
    kind, loc, value = err["type"], err["loc"], err["input"]
    if kind == "json_invalid":
        return f"not JSON: {err['msg'].removeprefix('Invalid JSON: ')}"
    if not loc:
        return f"not a JSON object but {type(value).__name__}"
    msg = {"missing": "missing", "extra_forbidden": "unknown field"}.get(kind, err["msg"])
    if kind not in ("missing", "extra_forbidden") and isinstance(value, (str, int, float, type(None))):
        msg += f" (got {value!r})"
    return f"{format_path(loc)}: {msg}"


# --------------------------------------------------------------------------- trust after a restart
def restore_memory(saved: SavedMemory, workload: Workload, now: datetime,
                   max_staleness: timedelta) -> tuple[PlannerMemory, tuple[str, ...]]:
    """What of `saved` the planner may use at `now`, and a note per field dropped or cut.

    - Absolute times stay as they are: the stabilisation window's recommendations (the planner
      prunes the expired ones itself), the last scale-up/down and step-down times (cooldowns),
      and the guard hold `guard_until` with its actions, which is however cut to `saved_at` + the
      longest `hold` of the workload's quality SLIs in the policy now in force (a hold never
      outlives what the policy would have set; no SLIs left: no hold).
    - Fields whose meaning expires are dropped when the memory is stale, i.e. saved more than
      `max_staleness` (the policy's `prometheus.max_staleness`, the bound past which a demand
      sample is not trusted) before or after `now` (a clock running behind counts the same):
      `last_demand` (the reference of the absurd-jump and collapse checks: an old sample is no
      reference), `collapse_since` and `jump_since` (the collapse or jump then waits
      `collapse_confirm` or `jump_confirm` afresh, as on a fresh start) and `burst_pods` (pods
      the step limit may let go at once: 0 paces every pod).
      Each of these is what an empty memory holds, so the planner is never less careful than
      on a fresh start.
    - Times later than `now` (saved by a leader whose clock ran ahead, or a hand-edited key) are
      dropped (`drop_future_times`), and the guard hold is cut from `now` when the save is later:
      a scale-up "a minute from now" would otherwise hold back every breach scale-up until then.
    """
    memory, notes = drop_future_times(saved.memory, now)
    notes = list(notes)
    if memory.guard_until is not None:
        holds = [q.hold for q in workload.quality]
        latest = min(saved.saved_at, now) + (max(holds) if holds else timedelta(0))
        if memory.guard_until > latest:
            notes.append(f"guard hold until {memory.guard_until.isoformat()} cut to {latest.isoformat()} "
                         "(the longest SLI hold of the policy after the save)")
            if latest > min(saved.saved_at, now):
                memory = replace(memory, guard_until=latest)
            else:
                memory = replace(memory, guard_until=None, guard_actions=(), guard_breach="")
    age = now - saved.saved_at
    if abs(age) > max_staleness:
        dropped = [name for name, empty in (("last_demand", None), ("collapse_since", None), ("jump_since", None),
                                            ("burst_pods", 0))
                   if getattr(memory, name) != empty]
        if dropped:
            notes.append(f"saved at {saved.saved_at.isoformat()}, more than max_staleness "
                         f"{format_duration(max_staleness)} from now: {', '.join(dropped)} dropped")
        memory = replace(memory, last_demand=None, collapse_since=None, jump_since=None, burst_pods=0)
    return memory, tuple(notes)


def drop_future_times(memory: PlannerMemory, now: datetime) -> tuple[PlannerMemory, tuple[str, ...]]:
    """`memory` without what it says happened after `now`, and a note if anything went: the last
    scale-up, scale-down and step-down times, the collapse and jump starts, and the stabilisation
    window's recommendations. Each is dropped as a fresh start holds it (None, or not in the
    window), so the planner is never less careful than on a fresh start: a scale-up dated ahead
    of `now` would make every breach scale-up wait for pods that were never asked for. A clock
    stepped back (NTP, a restored VM) or a leader whose clock ran ahead leaves such times."""
    late = {name: None for name in _EVENT_TIMES if (t := getattr(memory, name)) is not None and t > now}
    window = tuple((t, r) for t, r in memory.recommendations if t <= now)
    if not late and len(window) == len(memory.recommendations):
        return memory, ()
    what = list(late) + ([f"{len(memory.recommendations) - len(window)} recommendations"]
                         if len(window) != len(memory.recommendations) else [])
    return (replace(memory, recommendations=window, **late),
            (f"{', '.join(what)} dated after now {now.isoformat()} dropped (a clock stepped back, or set ahead "
             "where it was saved)",))


def for_saving(memory: PlannerMemory) -> PlannerMemory:
    """`memory` as it is worth saving: of the stabilisation window's recommendations only those
    that can still be the one stabilisation picks (scaler.safety.stabilise takes the latest of the
    highest in the window). A recommendation with a later one at least as high never is: it leaves
    the window first, and while it is in it the later one outranks it. So the window's decisions
    after a restart are the same, and a key holds a few recommendations rather than one per tick
    (40 at a 15 s tick and a 10-minute window: about 1.6 kB a workload, the 1 MiB ConfigMap full
    at about 640 workloads)."""
    kept: list[tuple[datetime, int]] = []
    for t, r in reversed(sorted(memory.recommendations, key=lambda rec: rec[0])):  # newest first
        if not kept or r > kept[-1][1]:  # above every later one
            kept.append((t, r))
    if len(kept) == len(memory.recommendations):
        return memory
    return replace(memory, recommendations=tuple(reversed(kept)))


def after_failed_apply(before: PlannerMemory, planned: PlannerMemory) -> PlannerMemory:
    """The memory to keep when a plan's writes failed: what the tick observed, from the plan
    (the quality guard's hold, actions and breach; the data checks' last good demand, collapse
    and jump; the stabilisation window's recommendations, which only hold capacity), and what
    records an action, from before it (the scale-up and scale-down times, the step limit's
    pacing, the burst allowance's pods): a write that failed starts no cooldown, and a breach
    seen on that tick still holds the guard for its `hold`."""
    return replace(planned, last_scale_up_at=before.last_scale_up_at, last_scale_down_at=before.last_scale_down_at,
                   last_step_down_at=before.last_step_down_at, burst_pods=before.burst_pods)
