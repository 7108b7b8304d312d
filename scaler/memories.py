"""Planner memory as saved between controller processes: versioned JSON, validated on the way
in, and the rule for what of an old memory may still be trusted. Pure (no I/O, no clock).

One workload's memory is one JSON document (one data key of the state ConfigMap,
scaler.memory_store):

    {"version": 1, "saved_at": "2026-11-20T12:00:00+00:00",
     "memory": {"recommendations": [["2026-11-20T11:58:00+00:00", 12], ...],
                "last_scale_up_at": null, "last_scale_down_at": "...", "guard_until": "...",
                "guard_actions": ["freeze_scale_in"], "last_demand": 2950.5, "burst_pods": 0,
                "last_step_down_at": null, "collapse_since": null}}

Times are ISO 8601 with their zone (a time without one is refused); `last_demand` is in demand
units; `burst_pods` in pods. `decode_memory(encode_memory(m, t))` gives back exactly `m` and `t`
(equal instants and equal UTC offsets; floats by their shortest repr). Anything else is refused
with a MemoryFormatError saying which field: an unknown `version`, a missing or extra field, a
wrong type, a negative count, a non-finite demand, an unknown guard action, or an event time
(recommendation, last scale times, collapse start) later than `saved_at`.

`restore_memory` decides what of a decoded memory is trusted at `now` (docs/controller.md,
"Planner memory across restarts").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, get_args

from policies.schema import BreachAction, Workload
from policies.units import format_duration
from scaler.plans import PlannerMemory

#: Version of the saved document; a document of any other version is not read (empty memory).
MEMORY_FORMAT_VERSION = 1

#: Fields of a saved memory, in PlannerMemory's order.
_FIELDS = ("recommendations", "last_scale_up_at", "last_scale_down_at", "guard_until", "guard_actions",
           "last_demand", "burst_pods", "last_step_down_at", "collapse_since")
#: Times that record something that happened (so never after the save).
_EVENT_TIMES = ("last_scale_up_at", "last_scale_down_at", "last_step_down_at", "collapse_since")
_ACTIONS = frozenset(get_args(BreachAction))


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
def decode_memory(text: str) -> SavedMemory:
    """The memory and its save time from `text` (as `encode_memory` writes it).

    Raises MemoryFormatError naming the field for anything that is not exactly a memory of
    version MEMORY_FORMAT_VERSION (see the module docstring for the checks)."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise MemoryFormatError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MemoryFormatError(f"not a JSON object but {type(doc).__name__}")
    version = doc.get("version")
    if version != MEMORY_FORMAT_VERSION or isinstance(version, bool):
        raise MemoryFormatError(f"version: {version!r} is not a known format version "
                                f"(this controller reads {MEMORY_FORMAT_VERSION})")
    _exact_keys(doc, ("version", "saved_at", "memory"), "")
    saved_at = _time(doc["saved_at"], "saved_at")
    m = doc["memory"]
    if not isinstance(m, dict):
        raise MemoryFormatError(f"memory: not an object but {type(m).__name__}")
    _exact_keys(m, _FIELDS, "memory.")

    recs = m["recommendations"]
    if not isinstance(recs, list):
        raise MemoryFormatError("memory.recommendations: not a list")
    recommendations = []
    for i, rec in enumerate(recs):
        where = f"memory.recommendations[{i}]"
        if not isinstance(rec, list) or len(rec) != 2:
            raise MemoryFormatError(f"{where}: not a [time, replicas] pair")
        recommendations.append((_time(rec[0], where + "[0]"), _count(rec[1], where + "[1]")))
    actions = m["guard_actions"]
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise MemoryFormatError("memory.guard_actions: not a list of strings")
    unknown = sorted(set(actions) - _ACTIONS)
    if unknown:
        raise MemoryFormatError(f"memory.guard_actions: unknown action(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(_ACTIONS))})")
    demand = m["last_demand"]
    if demand is not None:
        if isinstance(demand, bool) or not isinstance(demand, (int, float)) or not math.isfinite(demand) \
                or demand < 0:
            raise MemoryFormatError(f"memory.last_demand: {demand!r} is not a finite demand >= 0")
        demand = float(demand)
    memory = PlannerMemory(
        recommendations=tuple(recommendations),
        last_scale_up_at=_time_or_none(m["last_scale_up_at"], "memory.last_scale_up_at"),
        last_scale_down_at=_time_or_none(m["last_scale_down_at"], "memory.last_scale_down_at"),
        guard_until=_time_or_none(m["guard_until"], "memory.guard_until"),
        guard_actions=tuple(actions),
        last_demand=demand,
        burst_pods=_count(m["burst_pods"], "memory.burst_pods"),
        last_step_down_at=_time_or_none(m["last_step_down_at"], "memory.last_step_down_at"),
        collapse_since=_time_or_none(m["collapse_since"], "memory.collapse_since"),
    )
    late = [f"memory.recommendations[{i}]" for i, (t, _) in enumerate(memory.recommendations) if t > saved_at]
    late += [f"memory.{name}" for name in _EVENT_TIMES
             if getattr(memory, name) is not None and getattr(memory, name) > saved_at]
    if late:
        raise MemoryFormatError(f"{late[0]}: a time after saved_at {saved_at.isoformat()} "
                                "(it records something that happened before the save)")
    return SavedMemory(memory, saved_at)


def _exact_keys(d: dict[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise MemoryFormatError(f"{prefix}{missing[0]}: missing")
    extra = sorted(set(d) - set(keys))
    if extra:
        raise MemoryFormatError(f"{prefix}{extra[0]}: unknown field")


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise MemoryFormatError(f"{field}: {value!r} is not an ISO 8601 time")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise MemoryFormatError(f"{field}: {value!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise MemoryFormatError(f"{field}: {value!r} carries no zone")
    return t


def _time_or_none(value: Any, field: str) -> datetime | None:
    return None if value is None else _time(value, field)


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MemoryFormatError(f"{field}: {value!r} is not a whole number >= 0")
    return value


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
      reference), `collapse_since` (the collapse then waits `collapse_confirm` afresh, as on a
      fresh start) and `burst_pods` (pods the step limit may let go at once: 0 paces every pod).
      Each of these is what an empty memory holds, so the planner is never less careful than
      on a fresh start.
    """
    memory = saved.memory
    notes: list[str] = []
    if memory.guard_until is not None:
        holds = [q.hold for q in workload.quality]
        latest = saved.saved_at + (max(holds) if holds else timedelta(0))
        if memory.guard_until > latest:
            notes.append(f"guard hold until {memory.guard_until.isoformat()} cut to {latest.isoformat()} "
                         "(the longest SLI hold of the policy after the save)")
            if latest > saved.saved_at:
                memory = replace(memory, guard_until=latest)
            else:
                memory = replace(memory, guard_until=None, guard_actions=())
    age = now - saved.saved_at
    if abs(age) > max_staleness:
        dropped = [name for name, empty in (("last_demand", None), ("collapse_since", None), ("burst_pods", 0))
                   if getattr(memory, name) != empty]
        if dropped:
            notes.append(f"saved at {saved.saved_at.isoformat()}, more than max_staleness "
                         f"{format_duration(max_staleness)} from now: {', '.join(dropped)} dropped")
        memory = replace(memory, last_demand=None, collapse_since=None, burst_pods=0)
    return memory, tuple(notes)
