"""The policy file engineers tune: a pydantic v2 schema, every field documented with unit and
default, unknown keys refused (`extra="forbid"`).

Layout (see policies/examples/reference.yaml for every field):

    apiVersion: ebbtide/v1
    dry_run, schedule, prometheus, events, workloads[], bitrate (optional), cost

Durations are written `90s`, `15m`, `1h30m`, `7d`; times ISO 8601 with a zone. Loading with
file/line error reporting lives in policies/loading.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from policies.events import Event
from policies.units import format_duration, parse_duration

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$",
         "examples": ["90s", "15m", "168h", "7d"]}
    ),
]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Name = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- connection
class BasicAuth(Strict):
    username: str = Field(description="Basic-auth user name.")
    password_file: str = Field(description="Path of a file holding the password (e.g. a mounted Secret).")


class PrometheusSettings(Strict):
    url: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="Base URL of the Prometheus HTTP API. Overridden by `--prometheus-url` or "
        "EBBTIDE_PROMETHEUS_URL.",
    )
    timeout: Duration = Field(default=timedelta(seconds=30), description="Per-request timeout. Default 30s.")
    bearer_token_file: str | None = Field(
        default=None, description="File holding a bearer token sent as `Authorization: Bearer`. Default: none."
    )
    basic_auth: BasicAuth | None = Field(default=None, description="Basic auth. Default: none.")
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server's TLS certificate.")
    insecure_skip_verify: bool = Field(
        default=False, description="Skip TLS verification (testing only). Default false."
    )
    max_staleness: Duration = Field(
        default=timedelta(minutes=5),
        description="Data older than this counts as stale: no scale-in and no bitrate cut on it. Default 5m.",
    )


class Schedule(Strict):
    tick: Duration = Field(default=timedelta(minutes=1), description="How often plans are made and applied. Default 1m.")


# --------------------------------------------------------------------------- workloads
class Target(Strict):
    kind: Literal["Deployment", "StatefulSet"] = Field(description="Kind of the scaled workload.")
    namespace: Name = Field(description="Namespace of the workload.")
    name: Name = Field(description="Name of the workload.")


class HpaRef(Strict):
    name: Name = Field(
        description="Name of the HorizontalPodAutoscaler (same namespace) that owns the workload. "
        "Ebbtide then moves the HPA's minReplicas instead of the scale subresource (never fights it)."
    )


class Demand(Strict):
    query: str = Field(min_length=1, description="PromQL giving the workload's demand as ONE series "
                       "(e.g. `sum(rate(http_requests_total[5m]))`, or concurrent viewers).")
    per_replica: float = Field(gt=0, description="Demand one replica serves at target quality "
                               "(same unit as the query).")


class Resources(Strict):
    cpu_cores: float = Field(default=1.0, gt=0, description="CPU request per replica, cores. Default 1.")
    memory_gib: float = Field(default=2.0, gt=0, description="Memory request per replica, GiB. Default 2.")


class Scaling(Strict):
    min_replicas: int = Field(default=1, ge=0, description="Floor on replicas. Default 1.")
    max_replicas: int = Field(ge=1, description="Ceiling on replicas (required).")
    quantile: float = Field(
        default=0.9, ge=0.5, le=0.995,
        description="Forecast quantile capacity is sized to (the forecast's yhat_upper). Default 0.9.",
    )
    headroom: float = Field(
        default=0.15, ge=0.0, le=2.0,
        description="Extra capacity above the sized demand, as a fraction (0.15 = +15%). Default 0.15.",
    )
    max_scale_down_fraction: Fraction = Field(
        default=0.1,
        description="Largest scale-down per tick, as a fraction of current replicas (at least 1 pod). Default 0.1.",
    )
    scale_down_cooldown: Duration = Field(
        default=timedelta(minutes=10),
        description="Minimum time after any scaling action before the next scale-down. Default 10m.",
    )
    scale_up_cooldown: Duration = Field(
        default=timedelta(0), description="Minimum time between scale-ups. Default 0s (never delay scale-up)."
    )
    stabilization: Duration = Field(
        default=timedelta(minutes=5),
        description="Scale down only to the highest recommendation seen over this window (like HPA's "
        "scale-down stabilisation). Default 5m.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> "Scaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas must be >= min_replicas ({self.min_replicas})")
        return self


class ForecastSettings(Strict):
    lookback: Duration = Field(default=timedelta(days=28), description="History the model is fitted on. Default 28d.")
    step: Duration = Field(default=timedelta(minutes=5), description="Resolution of history and forecast. Default 5m.")
    horizon: Duration = Field(default=timedelta(hours=24), description="How far ahead to forecast. Default 24h.")
    refit_interval: Duration = Field(default=timedelta(hours=6), description="How often the model is refitted; "
                                     "between refits the cached model predicts. Default 6h.")
    min_history: Duration = Field(default=timedelta(days=7), description="Less history than this -> forecast not "
                                  "trusted, reactive sizing. Default 7d.")
    trust_bound: float = Field(default=0.35, gt=0, description="Largest rolling-backtest WAPE (0.35 = 35%) at "
                               "which the forecast is still trusted. Default 0.35.")
    country_holidays: str | None = Field(default=None, description="ISO country code whose national holidays "
                                         "the model learns (e.g. CN). Default none.")


class QualitySli(Strict):
    name: Name = Field(description="SLI name used in reasons, Events and metrics (e.g. `rebuffering`).")
    query: str = Field(min_length=1, description="PromQL giving the SLI as one number (instant query).")
    threshold: float = Field(description="Breach threshold, in the query's unit.")
    breach_when: Literal["above", "below"] = Field(
        default="above", description="Breach when the value is above (rebuffer ratio, startup time, latency) "
        "or below (e.g. HD share) the threshold. Default above.",
    )
    on_breach: list[Literal["freeze_scale_in", "restore_bitrate", "scale_up"]] = Field(
        default_factory=lambda: ["freeze_scale_in", "restore_bitrate"],
        description="What a breach does: freeze scale-in, restore bitrate caps to the ladder top, and/or "
        "scale up one step. Default freeze_scale_in + restore_bitrate.",
    )
    hold: Duration = Field(default=timedelta(minutes=15), description="How long the guard holds after the "
                           "last breach. Default 15m.")


class Workload(Strict):
    name: Name = Field(description="Unique workload name (reports, metrics, --workload).")
    target: Target
    hpa: HpaRef | None = Field(default=None, description="Set when an HPA owns the workload. Default: none "
                               "(the controller also detects an HPA targeting the workload).")
    demand: Demand
    pod_startup: Duration = Field(default=timedelta(seconds=60), description="Time from scale-up to a ready "
                                  "pod; the planner looks this far ahead. Default 60s.")
    resources: Resources = Field(default_factory=Resources, description="Requests per replica, for costing.")
    scaling: Scaling
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    quality: list[QualitySli] = Field(default_factory=list, description="Quality SLIs gating scale-in and "
                                      "bitrate cuts. Default none (staleness of demand still gates).")


# --------------------------------------------------------------------------- bitrate
class Rung(Strict):
    name: str = Field(min_length=1, description="Rung name, e.g. `1080p`.")
    kbps: float = Field(gt=0, description="Video bitrate of the rung, kbit/s.")


class ViewerTier(Strict):
    name: Literal["core", "silent", "edge", "returning"] = Field(
        description="core (active, keep perfect), silent (activatable, keep good), edge (churning, "
        "cost-sensitive), returning (potential returners)."
    )
    hd_floor: str = Field(description="Lowest rung this tier's cap may ever reach (a ladder rung name).")
    viewers_query: str | None = Field(default=None, description="PromQL counting this tier's concurrent viewers.")
    share: float | None = Field(default=None, ge=0, le=1, description="Share of viewers in this tier when "
                                "no query is given (replay, demo).")


class CapRule(Strict):
    name: str = Field(min_length=1, description="Rule name used in reasons.")
    hours: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$",
                              description="Local time window `HH:MM-HH:MM` (may wrap midnight). Default: all day.")
    timezone: str = Field(default="UTC", description="IANA zone for `hours`, e.g. Asia/Shanghai. Default UTC.")
    traffic_below: float | None = Field(default=None, gt=0, description="Applies when forecast demand is below "
                                        "this fraction of the lookback's peak (e.g. 0.5). Default: any level.")
    after_event: bool = Field(default=False, description="Applies only during an ebb (after an event's end, "
                              "within 14 days). Default false.")
    caps: dict[str, str] = Field(description="Tier name -> highest rung allowed while the rule applies.")


class WeakNetwork(Strict):
    loss_query: str | None = Field(default=None, description="PromQL for the packet-loss ratio of weak-network viewers.")
    loss_above: float = Field(default=0.05, ge=0, le=1, description="Loss ratio above which the profile applies. Default 0.05.")
    fec_profile: Literal["off", "standard", "aggressive"] = Field(
        default="aggressive", description="Anti-loss profile (FEC/retransmission) to apply. Default aggressive.")
    cap: str | None = Field(default=None, description="Rung cap for weak-network viewers (never below a tier's floor).")


class BitrateTarget(Strict):
    kind: Literal["ConfigMap"] = Field(default="ConfigMap", description="Object the media stack reads.")
    namespace: Name = Field(default="default", description="Namespace of the object.")
    name: Name = Field(default="ebbtide-bitrate", description="Name of the object.")
    key: str = Field(default="policy.json", description="Key holding the document.")
    format: Literal["json", "yaml"] = Field(default="json", description="Document format.")


class Bitrate(Strict):
    ladder: list[Rung] = Field(min_length=1, description="Rungs from highest to lowest bitrate.")
    tiers: list[ViewerTier] = Field(min_length=1, description="Viewer tiers and their HD floors.")
    rules: list[CapRule] = Field(default_factory=list, description="Cap rules; the lowest applicable cap wins, "
                                 "never below a tier's floor.")
    weak_network: WeakNetwork | None = Field(default=None, description="Weak-network anti-loss profile.")
    step_rungs: int = Field(default=1, ge=1, description="Largest cap change per tick, in rungs. Default 1.")
    target: BitrateTarget = Field(default_factory=BitrateTarget, description="Where the document is written.")

    @model_validator(mode="after")
    def _rungs_known(self) -> "Bitrate":
        names = [r.name for r in self.ladder]
        kbps = [r.kbps for r in self.ladder]
        if len(set(names)) != len(names):
            raise ValueError("ladder rung names must be unique")
        if kbps != sorted(kbps, reverse=True):
            raise ValueError("ladder must list rungs from highest to lowest kbps")
        for t in self.tiers:
            if t.hd_floor not in names:
                raise ValueError(f"tier {t.name}: hd_floor {t.hd_floor!r} is not a ladder rung ({', '.join(names)})")
        tier_names = {t.name for t in self.tiers}
        for r in self.rules:
            for tier, rung in r.caps.items():
                if tier not in tier_names:
                    raise ValueError(f"rule {r.name}: unknown tier {tier!r}")
                if rung not in names:
                    raise ValueError(f"rule {r.name}: cap {rung!r} is not a ladder rung")
        if self.weak_network and self.weak_network.cap and self.weak_network.cap not in names:
            raise ValueError(f"weak_network.cap {self.weak_network.cap!r} is not a ladder rung")
        return self


# --------------------------------------------------------------------------- cost
class Cost(Strict):
    currency: str = Field(default="USD", description="ISO currency code of every price. Default USD.")
    cpu_core_hour: float = Field(default=0.031611, ge=0, description="Price per CPU core-hour requested. "
                                 "Default 0.031611 (on-demand list price order of magnitude).")
    memory_gib_hour: float = Field(default=0.004237, ge=0, description="Price per GiB-hour of memory requested.")
    egress_billing: Literal["per_gb", "daily_peak_bandwidth", "monthly_p95"] = Field(
        default="per_gb", description="CDN billing model. Default per_gb.")
    egress_per_gb: float = Field(default=0.02, ge=0, description="Price per GB delivered (per_gb billing).")
    egress_per_mbps_day: float = Field(default=0.15, ge=0, description="Price per Mbps of daily peak bandwidth "
                                       "(daily_peak_bandwidth billing).")
    egress_per_mbps_month: float = Field(default=2.0, ge=0, description="Price per Mbps of monthly 95th "
                                         "percentile bandwidth (monthly_p95 billing).")
    transcoding_per_rung_hour: float = Field(default=0.01, ge=0, description="Price per transcoded rung-hour per stream.")


# --------------------------------------------------------------------------- the policy
class Policy(Strict):
    api_version: Literal["ebbtide/v1"] = Field(alias="apiVersion", description="Schema version: ebbtide/v1.")
    dry_run: bool = Field(default=False, description="Plan and report, but write nothing to the cluster. "
                          "Default false (the Helm chart sets true).")
    schedule: Schedule = Field(default_factory=Schedule)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    events: list[Event] = Field(default_factory=list, description="Calendar of sales, joint live events, holidays.")
    workloads: list[Workload] = Field(min_length=1, description="Workloads Ebbtide plans for.")
    bitrate: Bitrate | None = Field(default=None, description="Bitrate planning; absent = none.")
    cost: Cost = Field(default_factory=Cost)

    @model_validator(mode="after")
    def _unique(self) -> "Policy":
        seen: set[str] = set()
        for w in self.workloads:
            if w.name in seen:
                raise ValueError(f"duplicate workload name {w.name!r}")
            seen.add(w.name)
        names = [e.name for e in self.events]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate event name(s): {', '.join(sorted(dup))}")
        return self

    def workload(self, name: str) -> Workload:
        for w in self.workloads:
            if w.name == name:
                return w
        raise KeyError(name)
