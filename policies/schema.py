"""The policy file engineers tune: a pydantic v2 schema, every field documented with unit and
default, unknown keys refused (`extra="forbid"`).

Layout (see policies/examples/reference.yaml for every field):

    apiVersion: ebbtide/v1
    dry_run, schedule, prometheus, events, workloads[], bitrate (optional), cost

Durations are written `90s`, `15m`, `1h30m`, `7d`; times ISO 8601 with a zone. Loading with
file/line error reporting lives in policies/loading.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from policies import promql
from policies.events import Event, calendar_problems, check_holiday_country
from policies.units import check_zone, format_duration, parse_duration

#: JSON Schema of a duration as the loader accepts it: `90s`, `15m`, `1h30m`, `7d`, or seconds.
DURATION_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$"},
        {"type": "number", "minimum": 0},
    ],
    "examples": ["90s", "15m", "168h", "7d"],
}


def _positive(td: timedelta) -> timedelta:
    if td <= timedelta(0):
        raise ValueError("must be a positive duration, e.g. 5m")
    return td


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(DURATION_JSON_SCHEMA),
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


def _whole_seconds(td: timedelta) -> timedelta:
    if td.total_seconds() != int(td.total_seconds()):
        raise ValueError("must be a whole number of seconds, e.g. 150s (Prometheus times are whole seconds)")
    return td


WholeSecondsDuration = Annotated[Duration, AfterValidator(_whole_seconds)]
PositiveWholeSeconds = Annotated[PositiveDuration, AfterValidator(_whole_seconds)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


@dataclass(frozen=True)
class Matching:
    """Annotation: the string must fully match `pattern`; a mismatch says `hint` (for people,
    not a regex). The JSON Schema carries the pattern, for editors."""

    pattern: str
    hint: str

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        rx = re.compile(self.pattern)

        def check(value: str) -> str:
            if not rx.fullmatch(value):
                raise PydanticCustomError("policy_pattern", "{hint} (got {value})",
                                          {"hint": self.hint, "value": repr(value)})
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> JsonSchemaValue:
        out = handler(schema)
        out["pattern"] = f"^{self.pattern}$"
        return out


NAME_PATTERN = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
Name = Annotated[str, Field(min_length=1, max_length=253),
                 Matching(NAME_PATTERN, "must be a lowercase DNS name: a-z, 0-9, '-' and '.', starting and "
                                        "ending with a letter or digit")]


def _promql(text: str) -> str:
    """Not blank, and parses as PromQL (policies.promql: an unknown function is only a warning,
    `policy_warnings`)."""
    if not text.strip():
        raise ValueError("must be a PromQL expression, not blank")
    problem = promql.check(text)
    if problem is not None and problem.severity == "error":
        raise ValueError(problem.message)
    return text


PromQL = Annotated[str, Field(min_length=1), AfterValidator(_promql)]


def is_promql(annotation: Any, metadata: Iterable[object] = ()) -> bool:
    """Whether a field typed `annotation` with pydantic's `metadata` is PromQL: pydantic unpacks
    a bare `PromQL` into str plus its validator, and keeps `PromQL | None` whole."""
    return PromQL in get_args(annotation) or any(getattr(m, "func", None) is _promql for m in metadata)


Loc = tuple[str | int, ...]


def invalid(title: str, problems: Iterable[tuple[Loc, str, object]]) -> ValidationError:
    """A ValidationError with one error per (relative location, message, input).

    Raised from a validator, pydantic prefixes each location with the validated object's own
    path, so a cross-field check inside `scaling` can name `workloads[0].scaling.max_replicas`
    (and its line) instead of the whole `scaling` mapping. All problems are reported at once.
    """
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("policy_check", "{message}", {"message": msg}),
                loc=loc,
                input=value,
            )
            for loc, msg, value in problems
        ],
    )


class PolicyJsonSchema(GenerateJsonSchema):
    """JSON Schema as people write the file: durations as `90s`/`15m` (not ISO `PT90S`)."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return dict(DURATION_JSON_SCHEMA)

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def _admits_bool(annotation: Any) -> bool:
    """Does a field of this annotation take a YAML true/false as such (bool, or any model or
    mapping that may hold one), rather than as a number?"""
    if annotation is bool:
        return True
    if get_origin(annotation) is Annotated:
        return _admits_bool(get_args(annotation)[0])
    args = get_args(annotation)
    if args:
        return any(_admits_bool(a) for a in args if a is not type(None))
    return annotation not in (int, float)


class Strict(BaseModel):
    """Base of every policy model: unknown keys refused, values frozen once loaded, numbers
    finite (`.nan` or `.inf` in YAML is refused: a NaN threshold would never breach, an
    infinite per_replica would size every workload to its floor)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    @classmethod
    def model_json_schema(cls, by_alias: bool | None = True, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """JSON Schema for editors; durations and their defaults written as in the YAML."""
        kwargs.setdefault("schema_generator", PolicyJsonSchema)
        return super().model_json_schema(by_alias, *args, **kwargs)


class PolicyModel(Strict):
    """Base of the policy file's models: Strict, and `true`/`false` refused where a number is
    expected. (Not in Strict itself: a field validator makes pydantic validate JSON as Python,
    and strict models read from JSON, such as the saved planner memory, then refuse arrays
    as tuples; those are strict already, and take no bool for a number.)"""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: Any) -> Any:
        """`true`/`false` where a number is expected is refused (pydantic would read 1 and 0:
        `min_replicas: true` is a slip, not one replica)."""
        if isinstance(value, bool) and info.field_name in cls.model_fields:
            if not _admits_bool(cls.model_fields[info.field_name].annotation):
                raise PydanticCustomError("bool_not_number", "expected a number, not {value}",
                                          {"value": str(value).lower()})
        return value


# --------------------------------------------------------------------------- connection
class BasicAuth(PolicyModel):
    username: str = Field(min_length=1, description="Basic-auth user name.")
    password_file: str = Field(min_length=1, description="Path of a file holding the password (e.g. a mounted "
                               "Secret), sent as UTF-8. Read at start-up and re-read whenever the file changes "
                               "(a rotated Secret is used without a restart); a byte order mark and surrounding "
                               "whitespace are dropped.")


class PrometheusSettings(PolicyModel):
    url: Annotated[str, Matching(r"https?://\S+", "must be an http:// or https:// URL")] = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="Base URL of the Prometheus HTTP API (http:// or https://). Overridden by "
        "`--prometheus-url` or the environment variable EBBTIDE_PROMETHEUS_URL.",
    )
    timeout: PositiveDuration = Field(default=timedelta(seconds=30), description="Time limit of each query to "
                                      "Prometheus: all its requests (a long range's chunks), connecting, retries and "
                                      "their waits, and reading the whole answer (docs/history.md). Also sent as the "
                                      "query's server-side timeout.")
    bearer_token_file: str | None = Field(
        default=None, min_length=1,
        description="File holding a bearer token sent as `Authorization: Bearer`: one line of ASCII (a byte "
        "order mark and the trailing newline are dropped). Read at start-up and re-read whenever the file "
        "changes, and once more after an HTTP 401, so a rotated service-account token is used without a "
        "restart. Absent: no token. Exclusive with `basic_auth`.",
    )
    basic_auth: BasicAuth | None = Field(default=None, description="Basic auth. Absent: none. Exclusive "
                                         "with `bearer_token_file`.")
    ca_file: str | None = Field(default=None, min_length=1, description="CA bundle (PEM) to verify the "
                                "server's TLS certificate. Absent: the system's CA store.")
    insecure_skip_verify: bool = Field(
        default=False, description="Skip TLS certificate verification (testing only)."
    )
    max_staleness: PositiveDuration = Field(
        default=timedelta(minutes=5),
        description="Samples older than this count as stale: no scale-in and no bitrate cut on them.",
    )

    @model_validator(mode="after")
    def _one_auth(self) -> "PrometheusSettings":
        if self.bearer_token_file is not None and self.basic_auth is not None:
            raise invalid("PrometheusSettings", [(("basic_auth",), "set either bearer_token_file or basic_auth, "
                                                  "not both", None)])
        return self


class Schedule(PolicyModel):
    tick: PositiveWholeSeconds = Field(default=timedelta(minutes=1), description="How often plans are made and "
                                   "applied (every workload, every tick). 15s reacts to a demand jump as soon "
                                   "as an HPA does (its sync period); per-tick limits (max_scale_down_fraction, "
                                   "bitrate step_rungs) then act four times a minute.")


# --------------------------------------------------------------------------- workloads
class Target(PolicyModel):
    kind: Literal["Deployment", "StatefulSet"] = Field(description="Kind of the scaled workload.")
    namespace: Name = Field(description="Namespace of the workload.")
    name: Name = Field(description="Name of the workload.")


class HpaRef(PolicyModel):
    name: Name = Field(
        description="Name of the HorizontalPodAutoscaler (same namespace) that owns the workload. "
        "Ebbtide then moves the HPA's minReplicas instead of the scale subresource (never fights it)."
    )


class Demand(PolicyModel):
    query: PromQL = Field(description="PromQL giving the workload's demand as ONE series "
                          "(e.g. `sum(rate(http_requests_total[5m]))`, or concurrent viewers).")
    per_replica: float = Field(gt=0, description="Demand one replica serves at target quality "
                               "(same unit as the query, e.g. requests/s or viewers per replica).")
    lag: WholeSecondsDuration = Field(
        default=timedelta(seconds=150),
        description="How old the demand the query returns is, a duration: for a `rate()` query the scrape "
        "interval plus the rate window (150s: 30 s + 2 m), for a gauge of viewers about the scrape interval. "
        "The planner places each observation this long before its sample time, so the burst allowance knows "
        "which history point it belongs to and the forecast is read for that time (`ebbtide replay` "
        "simulates demand this late, for the HPA too). Staleness (prometheus.max_staleness) is the "
        "sample's own age, without it.",
    )


class Resources(PolicyModel):
    cpu_cores: float = Field(default=1.0, gt=0, description="CPU request per replica, cores.")
    memory_gib: float = Field(default=2.0, gt=0, description="Memory request per replica, GiB.")


MAX_REPLICAS = 2**31 - 1
"""Largest replica count Kubernetes stores (`spec.replicas` and an HPA's minReplicas are int32)."""


class Scaling(PolicyModel):
    min_replicas: int = Field(default=1, ge=0, description="Floor on replicas, pods.")
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS, description="Ceiling on replicas, pods (required; "
                              ">= min_replicas; at most 2147483647, Kubernetes' int32 replicas).")
    quantile: float = Field(
        default=0.9, ge=0.5, le=0.995,
        description="Forecast quantile (the forecast's yhat_upper) for capacity bought before demand is seen: the "
        "growth expected over the lead window and event pre-scaling; the level observed now is not inflated by "
        "it. 0.5-0.995.",
    )
    headroom: float = Field(
        default=0.15, ge=0.0, le=2.0,
        description="Extra capacity above the sized demand, as a fraction (0.15 = +15%), 0-2: guards against "
        "per-replica capacity error and demand moving between observations (an HPA's 0.8 target is +25%).",
    )
    max_scale_down_fraction: Fraction = Field(
        default=0.1,
        description="Largest scale-down per tick, as a fraction of current replicas (at least 1 pod), 0-1. A "
        "pace per tick: with a 15 s tick, a quarter of the per-minute fraction (and `scale_down_interval: 1m` "
        "or longer, so the one-pod floor counts per interval, not per tick). A quality breach's `scale_up` adds "
        "a minute's worth of it.",
    )
    scale_down_cooldown: Duration = Field(
        default=timedelta(minutes=10),
        description="Minimum time after the last scale-up before a scale-down (no flapping); consecutive "
        "scale-downs are paced by max_scale_down_fraction and stabilization instead.",
    )
    scale_up_cooldown: Duration = Field(
        default=timedelta(0), description="Minimum time between scale-ups (0s: never delay a scale-up)."
    )
    stabilization: Duration = Field(
        default=timedelta(minutes=5),
        description="Scale down only to the highest recommendation seen over this window (like HPA's "
        "scale-down stabilisation).",
    )
    scale_down_interval: Duration = Field(
        default=timedelta(0),
        description="Least time between two scale-downs beyond the burst allowance's pods; each may then remove "
        "floor(current x max_scale_down_fraction x the interval's ticks) pods, at least 1, so a descent keeps its "
        "speed in fewer, larger steps (fewer pod deletions, cache cold starts and Events). 0s or one tick: a step "
        "every tick.",
    )
    burst_lookback: Duration = Field(
        default=timedelta(days=7),
        description="Recent demand history the burst allowance is learnt from: while the lead window reaches "
        "demand not yet observed, capacity covers the observed demand times the `burst_quantile` of the "
        "growth realised over as many history points in this window (when above the forecast's growth). 0s: "
        "no burst allowance.",
    )
    burst_quantile: float | None = Field(
        default=None, ge=0.5, le=0.995,
        description="Quantile of the recently realised growth the burst allowance covers, 0.5-0.995. Its pods "
        "are held only while the lead window reaches demand not yet observed and go at once when it does not "
        "come, so a serving tier can afford a higher quantile here than for the forecast. Absent: `quantile`.",
    )
    burst_smoothing: bool = Field(
        default=True,
        description="Grow the burst allowance from an exponentially smoothed level of recent demand instead "
        "of the observation alone when, over `burst_lookback`, a smoothed level sized the realised bursts "
        "with a lower quantile loss (noisy fine-grained history, e.g. 5-minute counts, where one point is "
        "partly noise). The smoothing (1, 0.7, 0.5, 0.3, 0.2 or 0.1) is chosen from the history and named "
        "in the plan; on hourly history with a daily cycle the observation alone usually wins. false: "
        "always the observation alone.",
    )
    burst_bridge: Duration = Field(
        default=timedelta(0),
        description="Keep the burst allowance's pods through its off-time when that is at most this long, a "
        "duration. The allowance is on while the lead window reaches the history point after the one being "
        "observed, and off for the rest of each point; on history points a little longer than the lead window "
        "plus the metric lag (5-minute points: on 70-85% of each, off 45-90 s at a 1 min to 15 s tick) its "
        "pods are otherwise deleted at every new observation and created again moments later, two scaling "
        "actions a point and short-lived pods that hand their sessions on. Bridged, the same pods stand "
        "through the gap: ~45% fewer "
        "scaling actions on 5-minute traces for 1-3% more replica-hours (bench/README.md). 0s: released at "
        "once when off.",
    )
    event_lookahead: PositiveDuration | None = Field(
        default=None,
        description="How far ahead of now the calendar's pre-scaling buys an event's ramp, a duration: from "
        "one lead time (pod_startup + one tick) before the ramp's `start` until its `peak`, capacity covers the "
        "highest forecast over the ramp up to this far ahead (never past the peak), so pods are bought that "
        "long before the ramp needs them. Absent: up to the peak, i.e. the peak's capacity is held from `start` "
        "on (as war state does), the safest and the dearest on a long declared ramp (a pre-sale of days, a "
        "show declared from midnight).",
    )
    collapse_confirm: Duration = Field(
        default=timedelta(minutes=30),
        description="How long a sudden demand collapse is held before it is believed, a duration: demand "
        "that falls in one sample to under a tenth of both the trusted forecast's lower bound (yhat_lower) and "
        "the last good sample (one pod's worth added to each side) is taken for an outage or a broken metric "
        "(exporter restart, counter reset, dropped label): no scale-in and no bitrate cut, so the pods are "
        "there when traffic returns. After this long the low demand is accepted as real and the normal "
        "scale-down rules apply. A zero while the lower bound is near zero (quiet nights) is normal. 0s: off.",
    )
    jump_confirm: Duration = Field(
        default=timedelta(minutes=1),
        description="How long a demand sample more than 100 times every known level (the forecast now, the last "
        "good sample, what the running pods serve, one pod's worth) is held before it is believed, a duration: "
        "such a jump may be a broken exporter or a unit change, so it is not sized for and scale-in and bitrate "
        "cuts are frozen; once it has lasted this long it is taken for traffic (a viral spike, a partner's "
        "shout-out) and sized for like any other sample, capped by max_replicas. 1m: believed at the tick a "
        "minute after it first came, i.e. when a second sample a minute apart confirms it; 0s: at once.",
    )

    @field_validator("max_replicas")
    @classmethod
    def _bounds(cls, v: int, info: ValidationInfo) -> int:
        lo = info.data.get("min_replicas")
        if lo is not None and v < lo:
            raise PydanticCustomError("policy_check", "must be >= min_replicas ({min})", {"min": lo})
        return v


class ForecastSettings(PolicyModel):
    lookback: PositiveDuration = Field(default=timedelta(days=28), description="History the model is fitted "
                                       "on (>= min_history).")
    step: PositiveWholeSeconds = Field(default=timedelta(minutes=5), description="Resolution of history and "
                                   "forecast (<= horizon).")
    horizon: PositiveDuration = Field(default=timedelta(hours=24), description="How far ahead to forecast "
                                      "(>= the workload's pod_startup).")
    refit_interval: PositiveDuration = Field(default=timedelta(hours=6), description="How often the model is "
                                             "refitted; between refits the cached model predicts.")
    min_history: Duration = Field(default=timedelta(days=7), description="Less history than this -> forecast "
                                  "not trusted, reactive sizing.")
    trust_bound: float = Field(default=0.35, gt=0, le=10, description="Largest rolling-backtest WAPE (0.35 = "
                               "35%) at which the forecast is still trusted.")
    country_holidays: Annotated[str, Matching(r"[A-Z]{2}", "must be a 2-letter ISO 3166 country code in "
                                              "capitals, e.g. CN")] | None = Field(default=None, description="ISO 3166 "
                                         "country code whose national holidays the model learns (e.g. CN). "
                                         "Absent: none (sales come from `events`).")

    calendar_tz: str = Field(default="UTC", description="IANA zone of the audience's local calendar, e.g. "
                             "Asia/Shanghai: the dates of `country_holidays` (and of holiday-kind events) and the "
                             "clock the daily seasonality lives in. Event regressors are exact in any zone.")

    @field_validator("country_holidays")
    @classmethod
    def _known_country(cls, v: str | None) -> str | None:
        return None if v is None else check_holiday_country(v)

    @field_validator("calendar_tz")
    @classmethod
    def _calendar_zone(cls, v: str) -> str:
        return check_zone(v)

    @model_validator(mode="after")
    def _consistent(self) -> "ForecastSettings":
        problems: list[tuple[Loc, str, object]] = []
        if self.step > self.horizon:
            problems.append((("step",), f"must be <= horizon ({format_duration(self.horizon)})",
                             format_duration(self.step)))
        if self.lookback < self.min_history:
            # Name the field the author wrote: the other one is a default they may not know about.
            if "min_history" in self.model_fields_set and "lookback" not in self.model_fields_set:
                problems.append((("min_history",), f"must be <= lookback ({format_duration(self.lookback)})",
                                 format_duration(self.min_history)))
            else:
                problems.append((("lookback",), f"must be >= min_history ({format_duration(self.min_history)})",
                                 format_duration(self.lookback)))
        if self.step > self.lookback:
            problems.append((("step",), f"must be <= lookback ({format_duration(self.lookback)})",
                             format_duration(self.step)))
        if problems:
            raise invalid("ForecastSettings", problems)
        return self


BreachAction = Literal["freeze_scale_in", "restore_bitrate", "scale_up"]


class QualitySli(PolicyModel):
    name: Name = Field(description="SLI name used in reasons, Events and metrics (e.g. `rebuffering`).")
    query: PromQL = Field(description="PromQL giving the SLI as one number (instant query).")
    threshold: float = Field(description="Breach threshold, in the query's unit (ratio, seconds, ...).")
    breach_when: Literal["above", "below"] = Field(
        default="above", description="Breach when the value is above (rebuffer ratio, startup time, latency) "
        "or below (e.g. HD share) the threshold.",
    )
    on_breach: list[BreachAction] = Field(
        default_factory=lambda: ["freeze_scale_in", "restore_bitrate"],
        description="What a breach does: freeze scale-in, restore bitrate caps to the ladder top, and/or "
        "scale up one step (each at most once). Empty: the SLI is only reported.",
    )
    hold: Duration = Field(default=timedelta(minutes=15), description="How long the guard holds after the "
                           "last breach.")

    @field_validator("on_breach")
    @classmethod
    def _distinct_actions(cls, v: list[str]) -> list[str]:
        dup = [(i,) for i, a in enumerate(v) if a in v[:i]]
        if dup:
            raise invalid("QualitySli", [(loc, "action listed twice", v[loc[0]]) for loc in dup])
        return v


def _duplicates(items: list[Any], key: Any, field: str, what: str, where: str) -> list[tuple[Loc, str, object]]:
    """One problem per repeated key, located at the repeat's `field`, naming the first occurrence."""
    first: dict[Any, int] = {}
    out: list[tuple[Loc, str, object]] = []
    for i, item in enumerate(items):
        k = key(item)
        if k in first:
            out.append(((i, field), f"duplicate {what} {k!r} (also {where}[{first[k]}])", k))
        else:
            first[k] = i
    return out


def _raw_duplicates(items: Any, key: Any, field: str, what: str, where: str) -> list[tuple[Loc, str, object]]:
    """`_duplicates` over raw YAML entries (dicts); entries that are not mappings are skipped."""
    if not isinstance(items, list):
        return []
    keyed = [key(item) if isinstance(item, dict) else None for item in items]
    first: dict[Any, int] = {}
    out: list[tuple[Loc, str, object]] = []
    for i, k in enumerate(keyed):
        if k is None or not isinstance(k, str):
            continue
        if k in first:
            out.append(((i, field), f"duplicate {what} {k!r} (also {where}[{first[k]}])", k))
        else:
            first[k] = i
    return out


def _validate_with(handler: ValidatorFunctionWrapHandler, value: Any, problems: list[tuple[Loc, str, object]],
                   title: str) -> Any:
    """Run the inner validation; raise its errors and `problems` together, if any."""
    try:
        result = handler(value)
    except ValidationError as exc:
        inner = [(tuple(e["loc"]), e["msg"], e["input"], e["type"]) for e in exc.errors(include_url=False)]
        raise ValidationError.from_exception_data(
            title,
            [InitErrorDetails(type=PydanticCustomError(t, "{message}", {"message": m}), loc=loc, input=inp)
             for loc, m, inp, t in inner]
            + [InitErrorDetails(type=PydanticCustomError("policy_check", "{message}", {"message": m}),
                                loc=loc, input=inp) for loc, m, inp in problems],
        ) from None
    if problems:
        raise invalid(title, problems)
    return result


class Workload(PolicyModel):
    name: Name = Field(description="Unique workload name (reports, metrics, --workload).")
    target: Target = Field(description="The Deployment or StatefulSet whose replicas Ebbtide plans.")
    hpa: HpaRef | None = Field(default=None, description="Set when an HPA owns the workload. Absent: "
                               "the controller still detects an HPA targeting the workload.")
    demand: Demand = Field(description="How demand is measured and what one replica serves.")
    pod_startup: Duration = Field(default=timedelta(seconds=60), description="Time from scale-up to a ready "
                                  "pod; the planner looks this far ahead (<= forecast.horizon).")
    resources: Resources = Field(default_factory=Resources, description="Requests per replica, for costing.")
    scaling: Scaling = Field(description="Replica bounds and how fast replicas may move.")
    forecast: ForecastSettings = Field(default_factory=ForecastSettings, description="Forecaster settings "
                                       "and the trust gate.")
    quality: list[QualitySli] = Field(default_factory=list, description="Quality SLIs gating scale-in and "
                                      "bitrate cuts (unique names). None: only staleness of demand gates.")

    @field_validator("quality", mode="wrap")
    @classmethod
    def _unique_slis(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> list[QualitySli]:
        problems = _raw_duplicates(v, lambda q: q.get("name"), "name", "SLI name", "quality")
        return _validate_with(handler, v, problems, "Workload")

    @model_validator(mode="after")
    def _lead_time(self) -> "Workload":
        if self.pod_startup > self.forecast.horizon:
            raise invalid("Workload", [(("pod_startup",), f"must be <= forecast.horizon "
                                        f"({format_duration(self.forecast.horizon)}): the planner looks "
                                        f"pod_startup ahead", format_duration(self.pod_startup))])
        return self


# --------------------------------------------------------------------------- bitrate
class Rung(PolicyModel):
    name: str = Field(min_length=1, description="Rung name, e.g. `1080p`.")
    kbps: float = Field(gt=0, description="Video bitrate of the rung, kbit/s.")


TierName = Literal["core", "silent", "edge", "returning"]


class ViewerTier(PolicyModel):
    name: TierName = Field(
        description="core (active, keep perfect), silent (activatable, keep good), edge (churning, "
        "cost-sensitive), returning (potential returners)."
    )
    hd_floor: str = Field(description="Lowest rung this tier's cap may ever reach (a ladder rung name).")
    viewers_query: PromQL | None = Field(default=None, description="PromQL counting this tier's concurrent "
                                         "viewers. Absent: `share` is used.")
    share: float | None = Field(default=None, ge=0, le=1, description="Share of viewers in this tier (0-1) "
                                "when no query is given (replay, demo). Absent: unknown.")


def _hhmm_minutes(text: str) -> int:
    hh, mm = int(text[:2]), int(text[3:])
    if hh > 23 or mm > 59:
        raise ValueError(f"{text!r} is not a time of day (00:00-23:59)")
    return hh * 60 + mm


class CapRule(PolicyModel):
    name: str = Field(min_length=1, description="Rule name used in reasons.")
    hours: Annotated[str, Matching(r"\d{2}:\d{2}-\d{2}:\d{2}", "must be HH:MM-HH:MM, e.g. 01:00-08:00")] | None = Field(
                              default=None,
                              description="Local time window `HH:MM-HH:MM`, end exclusive (may wrap "
                              "midnight, e.g. 23:00-07:00). Absent: all day.")
    timezone: str = Field(default="UTC", description="IANA zone for `hours`, e.g. Asia/Shanghai.")
    traffic_below: float | None = Field(default=None, gt=0, le=1, description="Applies when forecast demand is "
                                        "below this fraction (0-1] of the lookback's peak (e.g. 0.5). "
                                        "Absent: any traffic level.")
    after_event: bool = Field(default=False, description="Applies only during an ebb (after an event's end, "
                              "within 14 days).")
    caps: dict[str, str] = Field(min_length=1, description="Tier name -> highest rung allowed while "
                                      "the rule applies.")

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        if v is not None:
            start, end = (_hhmm_minutes(part) for part in v.split("-"))
            if start == end:
                raise ValueError("empty window: start and end are the same time (omit `hours` for all day)")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_zone(v)


class WeakNetwork(PolicyModel):
    loss_query: PromQL | None = Field(default=None, description="PromQL for the packet-loss ratio (0-1) of "
                                      "weak-network viewers. Absent: the profile never applies in production.")
    loss_above: float = Field(default=0.05, ge=0, le=1, description="Loss ratio (0-1) above which the profile "
                              "applies.")
    fec_profile: Literal["off", "standard", "aggressive"] = Field(
        default="aggressive", description="Anti-loss profile (FEC/retransmission) to apply.")
    cap: str | None = Field(default=None, description="Rung cap for weak-network viewers (never below a tier's "
                            "floor). Absent: no extra cap.")


class BitrateTarget(PolicyModel):
    kind: Literal["ConfigMap"] = Field(default="ConfigMap", description="Object the media stack reads.")
    namespace: Name = Field(default="default", description="Namespace of the object.")
    name: Name = Field(default="ebbtide-bitrate", description="Name of the object.")
    key: Annotated[str, Matching(r"[-._a-zA-Z0-9]+", "must be a ConfigMap key: letters, digits, '-', '_' "
                                 "and '.'")] = Field(default="policy.json",
                     description="ConfigMap key holding the document.")
    format: Literal["json", "yaml"] = Field(default="json", description="Document format.")


def _rung_list(info: ValidationInfo) -> list[str] | None:
    ladder = info.data.get("ladder")
    return None if ladder is None else [r.name for r in ladder]


class Bitrate(PolicyModel):
    ladder: list[Rung] = Field(min_length=1, description="Rungs from highest to lowest bitrate (strictly "
                               "decreasing kbps, unique names).")
    tiers: list[ViewerTier] = Field(min_length=1, description="Viewer tiers and their HD floors (unique names).")
    rules: list[CapRule] = Field(default_factory=list, description="Cap rules; the lowest applicable cap wins, "
                                 "never below a tier's floor. Empty: caps stay at the ladder top.")
    weak_network: WeakNetwork | None = Field(default=None, description="Weak-network anti-loss profile. "
                                             "Absent: none.")
    step_rungs: int = Field(default=1, ge=1, description="Largest cap change per tick, in rungs.")
    target: BitrateTarget = Field(default_factory=BitrateTarget, description="Where the document is written.")
    workload: Name | None = Field(default=None, description="The workload whose plan carries the bitrate "
                                  "document: its demand drives the traffic-level cap rules, so name the "
                                  "viewer-serving tier (e.g. edge). Absent: the first workload.")

    # Field validators (not one model validator) so each check runs as soon as what it needs is
    # valid, and a bad ladder does not hide a bad rule: every error at once.
    @field_validator("ladder")
    @classmethod
    def _ladder(cls, v: list[Rung]) -> list[Rung]:
        problems = _duplicates(v, lambda r: r.name, "name", "rung name", "ladder")
        for i in range(1, len(v)):
            if v[i].kbps >= v[i - 1].kbps:
                problems.append(((i, "kbps"), f"must be below the previous rung's kbps ({v[i - 1].kbps:g}): "
                                 f"list rungs from highest to lowest", v[i].kbps))
        if problems:
            raise invalid("Bitrate", problems)
        return v

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: list[ViewerTier], info: ValidationInfo) -> list[ViewerTier]:
        problems = _duplicates(v, lambda t: t.name, "name", "tier", "tiers")
        rungs = _rung_list(info)
        if rungs is not None:
            for i, t in enumerate(v):
                if t.hd_floor not in rungs:
                    problems.append(((i, "hd_floor"), f"{t.hd_floor!r} is not a ladder rung ({', '.join(rungs)})",
                                     t.hd_floor))
        shares = [t.share for t in v if t.share is not None]
        if sum(shares) > 1 + 1e-9:
            last = max(i for i, t in enumerate(v) if t.share is not None)
            problems.append(((last, "share"), f"tier shares add up to {sum(shares):g}, more than 1", v[last].share))
        if problems:
            raise invalid("Bitrate", problems)
        return v

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: list[CapRule], info: ValidationInfo) -> list[CapRule]:
        problems = _duplicates(v, lambda r: r.name, "name", "rule name", "rules")
        rungs = _rung_list(info)
        tiers = info.data.get("tiers")
        tier_names = None if tiers is None else {t.name for t in tiers}
        for i, r in enumerate(v):
            for tier, rung in r.caps.items():
                if tier_names is not None and tier not in tier_names:
                    problems.append(((i, "caps", tier), f"tier {tier!r} is not defined in bitrate.tiers "
                                     f"({', '.join(sorted(tier_names))})", tier))
                elif rungs is not None and rung not in rungs:
                    problems.append(((i, "caps", tier), f"{rung!r} is not a ladder rung ({', '.join(rungs)})", rung))
        if problems:
            raise invalid("Bitrate", problems)
        return v

    @field_validator("weak_network")
    @classmethod
    def _weak_network(cls, v: WeakNetwork | None, info: ValidationInfo) -> WeakNetwork | None:
        rungs = _rung_list(info)
        if v is not None and v.cap is not None and rungs is not None and v.cap not in rungs:
            raise invalid("Bitrate", [(("cap",), f"{v.cap!r} is not a ladder rung ({', '.join(rungs)})", v.cap)])
        return v

    @field_validator("step_rungs")
    @classmethod
    def _step(cls, v: int, info: ValidationInfo) -> int:
        rungs = _rung_list(info)
        if rungs is not None and v > max(1, len(rungs) - 1):
            raise ValueError(f"must be <= {max(1, len(rungs) - 1)} (the ladder has {len(rungs)} rungs)")
        return v


# --------------------------------------------------------------------------- cost
class Cost(PolicyModel):
    currency: Annotated[str, Matching(r"[A-Z]{3}", "must be a 3-letter ISO 4217 code in capitals, e.g. "
                                      "USD")] = Field(default="USD", description="ISO 4217 currency code of "
                          "every price. Costs are rounded to its minor unit: the cent for USD, EUR or CNY, the "
                          "whole yen for JPY, a thousandth for KWD.")
    cpu_core_hour: float = Field(default=0.031611, ge=0, description="Price per CPU core-hour requested, "
                                 "currency/(core*h) (default: on-demand list price order of magnitude).")
    memory_gib_hour: float = Field(default=0.004237, ge=0, description="Price per GiB-hour of memory requested, "
                                   "currency/(GiB*h).")
    egress_billing: Literal["per_gb", "daily_peak_bandwidth", "monthly_p95"] = Field(
        default="per_gb", description="CDN billing model: per GB delivered, per Mbps of each day's peak, or "
        "per Mbps of the month's 95th percentile.")
    egress_per_gb: float = Field(default=0.02, ge=0, description="Price per GB delivered, currency/GB "
                                 "(per_gb billing).")
    egress_per_mbps_day: float = Field(default=0.15, ge=0, description="Price per Mbps of daily peak bandwidth, "
                                       "currency/(Mbps*day) (daily_peak_bandwidth billing).")
    egress_per_mbps_month: float = Field(default=2.0, ge=0, description="Price per Mbps of monthly 95th "
                                         "percentile bandwidth, currency/(Mbps*month) (monthly_p95 billing).")
    transcoding_per_rung_hour: float = Field(default=0.01, ge=0, description="Price per transcoded rung-hour "
                                             "per stream, currency/(rung*h).")

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, v: str) -> str:
        from babel.numbers import list_currencies

        if v not in list_currencies():
            raise ValueError(f"{v!r} is not an ISO 4217 currency code (e.g. USD, EUR, CNY, JPY)")
        return v


# --------------------------------------------------------------------------- the policy
class Policy(PolicyModel):
    """Load it with policies.loading.load_policy: every error at once, with file and line."""

    api_version: Literal["ebbtide/v1"] = Field(alias="apiVersion", description="Schema version: ebbtide/v1.")
    dry_run: bool = Field(default=False, description="Plan and report, but write nothing to the cluster "
                          "(the Helm chart passes `--dry-run` instead, by default: its `dryRun` value).")
    schedule: Schedule = Field(default_factory=Schedule, description="Controller loop timing.")
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings, description="Where metrics "
                                           "are read.")
    events: list[Event] = Field(default_factory=list, description="Calendar of sales, joint live events, "
                                "holidays (unique names).")
    workloads: list[Workload] = Field(min_length=1, description="Workloads Ebbtide plans for (unique names "
                                      "and targets).")
    bitrate: Bitrate | None = Field(default=None, description="Bitrate planning. Absent: no bitrate planning.")
    cost: Cost = Field(default_factory=Cost, description="Prices for cost reports.")

    # Wrap validators: duplicates are found on the raw entries, so they are reported together
    # with any error inside an entry (all errors at once), not only once every entry is valid.
    @field_validator("workloads", mode="wrap")
    @classmethod
    def _unique_workloads(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> list[Workload]:
        def target(w: dict[str, Any]) -> str | None:
            t = w.get("target")
            return f"{t.get('kind')} {t.get('namespace')}/{t.get('name')}" if isinstance(t, dict) else None

        problems = _raw_duplicates(v, lambda w: w.get("name"), "name", "workload name", "workloads")
        problems += _raw_duplicates(v, target, "target", "target", "workloads")
        return _validate_with(handler, v, problems, "Policy")

    @field_validator("events", mode="wrap")
    @classmethod
    def _unique_events(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> list[Event]:
        problems = [(loc, msg, v[loc[0]].get(loc[1])) for loc, msg in calendar_problems(v)]
        return _validate_with(handler, v, problems, "Policy")

    @field_validator("bitrate")
    @classmethod
    def _bitrate_workload(cls, v: Bitrate | None, info: ValidationInfo) -> Bitrate | None:
        workloads = info.data.get("workloads")
        if v is None or v.workload is None or workloads is None:
            return v
        names = [w.name for w in workloads]
        if v.workload not in names:
            raise invalid("Policy", [(("workload",), f"{v.workload!r} is not a workload of this policy "
                                      f"({', '.join(names)})", v.workload)])
        return v

    @property
    def bitrate_workload(self) -> str | None:
        """Name of the workload that plans the bitrate document (None: no bitrate planning)."""
        if self.bitrate is None:
            return None
        return self.bitrate.workload or self.workloads[0].name

    def workload(self, name: str) -> Workload:
        for w in self.workloads:
            if w.name == name:
                return w
        raise KeyError(name)
