"""Policy files -> validated `Policy`, with every problem told as `file:line path: message`.

    policy = load_policy("policy.yaml")              # raises InputFileError with ALL problems
    loaded = read_policy("policy.yaml")              # + warnings (risky but valid) and digest

Errors: YAML syntax (with its line; duplicate keys name both lines), unknown keys, wrong types,
out-of-range values, and cross-field checks (max_replicas >= min_replicas, tier floors are
rungs, unique names, event times in order, forecast step <= horizon ...), each at the line of
the offending field. Warnings: settings that validate but are risky (a low quantile, no
quality SLI, a rule capping below a tier's floor ...); `ebbtide policy validate` prints them.

`policy_digest` fingerprints the validated content (not the text: comments, key order and
`90s` vs `1m30s` do not change it) for hot-reload change detection and Plan input digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from policies import promql
from policies.errors import InputFileError
from policies.events import holiday_off_midnight, recurring_run_warning
from policies.schema import Loc, Policy, PolicyJsonSchema, is_promql
from policies.units import format_duration, parse_time
from policies.yamlio import PathKey, format_path, format_validation_errors, line_for, load_yaml_with_lines

#: JSON Schema dialect of `policy_json_schema()`.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy with where it came from.

    `warnings` are `file:line path: message` lines for risky but valid settings;
    `lines` maps each YAML path to its 1-based line; `digest` is `policy_digest(policy)`.
    """

    file: str
    policy: Policy
    warnings: tuple[str, ...]
    lines: dict[PathKey, int]
    digest: str


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; raise InputFileError listing every problem at once."""
    return read_policy(path).policy


def load_policy_text(text: str, name: str = "policy.yaml") -> Policy:
    """Validate policy YAML given as text; `name` is the file name used in messages."""
    return read_policy(name, text).policy


def read_policy(path: str | Path, text: str | None = None) -> LoadedPolicy:
    """Read (or take `text`), validate, and collect warnings. Errors: InputFileError, all at once."""
    file = str(path)
    data, lines = load_yaml_with_lines(path, text)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise InputFileError([f"{file}:1 (top level): a policy is a mapping starting with "
                              f"`apiVersion: ebbtide/v1`, found {found}"])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise InputFileError(format_validation_errors(_refine_event_errors(exc), file, lines)) from None
    warnings = tuple(_format(file, lines, loc, msg) for loc, msg in policy_warnings(policy))
    return LoadedPolicy(file=file, policy=policy, warnings=warnings, lines=lines, digest=policy_digest(policy))


def policy_digest(policy: Policy) -> str:
    """SHA-256 (hex, 64 chars) of the policy's canonical JSON: equal content -> equal digest.

    Independent of comments, key order and how a value was written (`90s` == `1m30s`,
    `2026-11-11T20:00:00+08:00` == `2026-11-11T12:00:00Z`); any change of a value changes it.
    """
    canonical = json.dumps(
        policy.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a policy file, for editors; unknown keys refused."""
    schema = Policy.model_json_schema(by_alias=True, schema_generator=PolicyJsonSchema)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


# --------------------------------------------------------------------------- warnings
LONG_LIFTED_RAMP = timedelta(hours=6)
"""A lifted event whose declared ramp (start to peak) is longer than this is warned about: the
`event` step buys the lifted peak's pods from `start` (bench/README.md, "During the event itself":
a ramp declared from the local midnight held AAPL's lifted peak 13 h, above war state's cost)."""


def policy_warnings(policy: Policy) -> list[tuple[Loc, str]]:
    """Risky but valid settings, as (path, message); pure, in document order."""
    out: list[tuple[Loc, str]] = []
    if not policy.events:
        out.append((("events",), "no events: the forecaster cannot anticipate a sale or its ebb "
                                 "(add the sales and joint live events you expect)"))
    if (run := recurring_run_warning(policy.events)) is not None:
        out.append((("events",), run))
    zones = sorted({w.forecast.calendar_tz for w in policy.workloads})
    for i, e in enumerate(policy.events):
        for tz in zones:
            if (off := holiday_off_midnight(e, tz)) is not None:
                out.append((("events", i), off))
        if e.start == e.end:
            out.append((("events", i), f"{e.name}: start, peak and end are the same time (a zero-length event): "
                                       "its effect is learnt or, never seen in the history, borrowed from its kind at "
                                       "full height in that one instant; give the event's real window"))
        unbounded = [w.name for w in policy.workloads if w.scaling.event_lookahead is None]
        if e.lift is not None and e.peak - e.start > LONG_LIFTED_RAMP and unbounded:
            out.append((("events", i, "lift"), f"{e.name}: with a lift, pre-scaling holds the lifted peak's capacity "
                                               f"from start on, {format_duration(e.peak - e.start)} before the peak "
                                               f"({', '.join(unbounded)}); declare start where the ramp really "
                                               "begins, or set scaling.event_lookahead"))
    p = policy.prometheus
    if p.insecure_skip_verify:
        out.append((("prometheus", "insecure_skip_verify"), "TLS verification is off (testing only)"))
    for i, w in enumerate(policy.workloads):
        out.extend((("workloads", i) + loc, msg) for loc, msg in _workload_warnings(w))
    if policy.bitrate is not None:
        out.extend((("bitrate",) + loc, msg) for loc, msg in _bitrate_warnings(policy.bitrate))
    out.extend(_promql_warnings(policy))
    return out


def _promql_warnings(policy: Policy) -> list[tuple[Loc, str]]:
    """A warning per query whose function the PromQL parser does not know (policies.promql;
    every other parse problem is an error at validation). The queries are found by their type
    (schema.PromQL), so a PromQL field added to the schema is checked without a change here."""
    out = []
    for loc, text in _promql_fields(policy, ()):
        problem = promql.check(text) if text else None
        if problem is not None:
            out.append((loc, problem.message))
    return out


def _promql_fields(value: object, loc: Loc) -> Iterator[tuple[Loc, str | None]]:
    """(path, text) of every schema.PromQL field in `value` and the models, lists and mappings
    below it, in document order."""
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            child = getattr(value, name)
            if is_promql(info.annotation, info.metadata):
                yield loc + (name,), child
            else:
                yield from _promql_fields(child, loc + (name,))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _promql_fields(item, loc + (i,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _promql_fields(item, loc + (key,))


def _workload_warnings(w) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    s, f = w.scaling, w.forecast
    if s.min_replicas == 0:
        out.append((("scaling", "min_replicas"), "0 allows scaling to zero: the first demand after it "
                                                 f"waits pod_startup ({format_duration(w.pod_startup)})"))
    if s.quantile < 0.8:
        out.append((("scaling", "quantile"), f"sizing to the q{s.quantile:g} forecast leaves about "
                                             f"{1 - s.quantile:.0%} of intervals under-provisioned "
                                             "when the forecast is calibrated; 0.9 or more is usual"))
    if s.headroom < 0.05:
        out.append((("scaling", "headroom"), f"{s.headroom:.0%} headroom: event-aware forecasts of the "
                                             "ebb have been measured to under-forecast by 7-9%"))
    if s.max_scale_down_fraction == 0:
        out.append((("scaling", "max_scale_down_fraction"), "0 still lets one pod go per tick (the step limit "
                                                            "is at least one pod); to hold the count, set "
                                                            "min_replicas, or a long scale_down_cooldown"))
    if s.max_scale_down_fraction > 0.5:
        out.append((("scaling", "max_scale_down_fraction"), f"up to {s.max_scale_down_fraction:.0%} of "
                                                            "replicas may go in one tick"))
    if s.scale_down_cooldown < w.pod_startup:
        out.append((("scaling", "scale_down_cooldown"),
                    f"{format_duration(s.scale_down_cooldown)} is shorter than pod_startup "
                    f"({format_duration(w.pod_startup)}): pods may be removed before the ones just "
                    "added are ready"))
    if f.lookback < timedelta(days=14):
        out.append((("forecast", "lookback"), f"{format_duration(f.lookback)} of history: weekly "
                                              "seasonality needs at least 14d"))
    if f.refit_interval < f.step:
        out.append((("forecast", "refit_interval"), f"refitting every {format_duration(f.refit_interval)}, "
                                                    f"more often than new data arrives (step "
                                                    f"{format_duration(f.step)})"))
    if not w.quality:
        out.append((("quality",), "no quality SLI: scale-in is gated only by stale or missing data"))
    for j, q in enumerate(w.quality):
        if not q.on_breach:
            out.append((("quality", j, "on_breach"), "empty: a breach of this SLI changes nothing"))
    return out


def _bitrate_warnings(b) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    rank = {r.name: i for i, r in enumerate(b.ladder)}  # 0 = highest rung
    floors = {t.name: t.hd_floor for t in b.tiers}
    for i, t in enumerate(b.tiers):
        if t.viewers_query is None and t.share is None:
            out.append((("tiers", i), f"tier {t.name}: neither viewers_query nor share; its viewers are unknown"))
    for i, r in enumerate(b.rules):
        if r.hours is None and r.traffic_below is None and not r.after_event:
            out.append((("rules", i), f"rule {r.name} has no condition (hours, traffic_below, after_event): "
                                      "it applies all the time"))
        for tier, rung in r.caps.items():
            floor = floors.get(tier)
            if floor in rank and rung in rank and rank[rung] > rank[floor]:
                out.append((("rules", i, "caps", tier), f"cap {rung} is below tier {tier}'s floor {floor}: "
                                                        "the floor wins"))
    wn = b.weak_network
    if wn is not None:
        if wn.loss_query is None:
            out.append((("weak_network",), "no loss_query: the profile never applies in production"))
        if wn.cap is not None:
            for tier, floor in floors.items():
                if rank[wn.cap] > rank[floor]:
                    out.append((("weak_network", "cap"), f"cap {wn.cap} is below tier {tier}'s floor {floor}: "
                                                         "the floor wins for that tier"))
    return out


def _format(file: str, lines: dict[PathKey, int], loc: Loc, msg: str) -> str:
    line = line_for(lines, loc)
    return f"{file}:{line} {format_path(loc)}: {msg}" if line else f"{file} {format_path(loc)}: {msg}"


# --------------------------------------------------------------------------- error locations
def _refine_event_errors(exc: ValidationError) -> ValidationError:
    """Point Event's order check (a model-level error at `events[i]`) at the offending time field.

    policies/events.py validates `start <= peak <= end` on the whole event; the error is the
    clearer at the line of the field that breaks the order: `peak` when it precedes `start`,
    `end` otherwise (also for a yearly event that lasts too long).
    """
    errors = exc.errors(include_url=False)
    changed = False
    for err in errors:
        loc = err["loc"]
        if (len(loc) == 2 and loc[0] == "events" and isinstance(loc[1], int) and err["type"] == "value_error"
                and isinstance(err["input"], dict)):
            err["loc"] = loc + (_event_offender(err["input"]),)
            changed = True
    if not changed:
        return exc
    return ValidationError.from_exception_data(
        exc.title,
        [
            InitErrorDetails(
                type=PydanticCustomError(err["type"], "{message}", {"message": err["msg"]}),
                loc=err["loc"],
                input=err["input"],
            )
            for err in errors
        ],
    )


def _event_offender(raw: dict[str, Any]) -> str:
    try:
        start, peak = parse_time(raw["start"]), parse_time(raw["peak"])
    except (KeyError, ValueError):
        return "end"
    return "peak" if peak < start else "end"
