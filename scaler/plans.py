"""Value types of planning: what the planner reads (observations, cluster state, its own memory)
and what it decides (a Plan). All frozen; pure code passes them around, adapters fill them.

A Plan is the unit of truth: logs, Kubernetes Events, dry-run output, /metrics and cost reports
all read Plans. It holds the ordered list of steps that led from the raw demand to the final
replicas and caps, each with the value before and after and a reason a person can read.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from forecaster.series import Forecast, Series

if TYPE_CHECKING:
    from forecaster.backtest import TrustVerdict


@dataclass(frozen=True)
class SliReading:
    """The latest value of one quality SLI. `value None` = the query returned nothing."""

    name: str
    value: float | None
    at: datetime | None  # sample time (UTC); None when no sample


@dataclass(frozen=True)
class RecentDemand:
    """Recent demand history on a regular grid, oldest first: `values[i]` is the demand over
    [start + i x step, start + (i + 1) x step) (NaN: no data). Complete points only: the point
    holding the observation is not in it. The planner learns the burst allowance from it
    (scaler.safety.burst_growth); the controller passes the history it reads for the forecaster."""

    start: datetime
    step: timedelta
    values: tuple[float, ...]


def recent_window(grid_start: datetime, step: timedelta, n_points: int, until: datetime,
                  lookback: timedelta) -> tuple[int, int]:
    """[lo, hi): the points of a history on the grid grid_start + i x step (`n_points` long)
    that are complete at `until` (grid_start + (i + 1) x step <= until), the last `lookback` of
    them. lo == hi: none. What `RecentDemand` holds, for the controller and the replay alike."""
    s = step.total_seconds()
    hi = min(max(0, math.floor(round((until - grid_start).total_seconds() / s, 9))), n_points)
    lo = max(0, hi - math.ceil(round(lookback.total_seconds() / s, 9)))
    return lo, hi


def recent_demand(history: Series | None, until: datetime, lookback: timedelta) -> RecentDemand | None:
    """The planner's view of recent demand (Observation.recent_demand, for the burst allowance):
    the points of `history` complete at `until` (start + (i + 1) x step <= until; the point still
    in progress is left out), the last `lookback` of them (`recent_window`). None with no
    history, no complete point or lookback 0."""
    if history is None or lookback <= timedelta(0) or len(history) == 0:
        return None
    start, end = recent_window(history.start.to_pydatetime(), history.step, len(history), until, lookback)
    if end <= start:
        return None
    values = history.values.to_numpy(dtype=float)[start:end]
    return RecentDemand(history.start.to_pydatetime() + start * history.step, history.step,
                        tuple(values.tolist()))  # Python floats, as float(v) gives, without the loop


@dataclass(frozen=True)
class Observation:
    """What was measured this tick: demand now (latest sample) and the quality SLIs.

    `demand_at` is the sample time of `demand_now`; data older than the policy's max_staleness
    counts as stale. `tier_viewers`: concurrent viewers per tier (bitrate planning), if known.
    `weak_network_loss`: packet-loss ratio of weak-network viewers, if known, sampled at
    `weak_network_loss_at` (None: time unknown, taken as stale: no weak-network profile).
    `demand_problem`: why `demand_now` is None, when the adapter knows (e.g. "query
    'sum(edge_viewers)' failed: timed out after 1s"): the plan's reasons say it instead of
    guessing ("" or None: not known).
    """

    demand_now: float | None
    demand_at: datetime | None
    slis: tuple[SliReading, ...] = ()
    tier_viewers: tuple[tuple[str, float], ...] = ()
    weak_network_loss: float | None = None
    lookback_peak: float | None = None  # highest demand over the forecast lookback (bitrate `traffic_below`)
    recent_demand: RecentDemand | None = None  # history the burst allowance is learnt from (None: no allowance)
    demand_problem: str | None = None
    weak_network_loss_at: datetime | None = None


@dataclass(frozen=True)
class WorkloadState:
    """The cluster as read this tick. `replicas`: desired replicas (spec / scale subresource);
    `ready_replicas`: ready pods; `hpa_min`/`hpa_max` when an HPA owns the workload;
    `bitrate_caps`: tier -> rung currently written in the bitrate document (empty if none)."""

    replicas: int
    ready_replicas: int
    hpa_min: int | None = None
    hpa_max: int | None = None
    bitrate_caps: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PlannerMemory:
    """What the planner remembers between ticks (returned in each Plan, fed to the next).

    `recommendations`: (time, replicas) recommended over the stabilisation window;
    `last_scale_up_at`/`last_scale_down_at`: times of the last actions taken;
    `guard_until`: the quality guard holds until this time;
    `guard_actions`: the `on_breach` actions the held guard applies (freeze_scale_in, ...);
    `last_demand`: the last demand sample that passed the data checks (demand units), the
    reference against which an absurd jump is recognised;
    `burst_pods`: pods of the current count that the burst allowance alone bought, for demand
    no observation has shown yet (the step limit lets them go at once when it does not come).
    The recommendations hold no such pods;
    `last_step_down_at`: time of the last scale-down beyond the burst pods (the part the step
    limit paces); the next one waits `scaling.scale_down_interval` after it;
    `collapse_since`: start of a demand collapse not yet confirmed (scaler.safety.check_collapse;
    None: none under way). While it lasts `last_demand` keeps the level before the collapse;
    `jump_since`: start of an absurd demand jump not yet believed (scaler.safety.confirm_jump;
    None: none under way). While it lasts `last_demand` keeps the level before the jump;
    `guard_breach`: the breach that set the guard's hold (SLI, reading, threshold, time, hold),
    for the held guard's reason ("" without a hold); saved with the rest (scaler.memories).
    """

    recommendations: tuple[tuple[datetime, int], ...] = ()
    last_scale_up_at: datetime | None = None
    last_scale_down_at: datetime | None = None
    guard_until: datetime | None = None
    guard_actions: tuple[str, ...] = ()
    last_demand: float | None = None
    burst_pods: int = 0
    last_step_down_at: datetime | None = None
    collapse_since: datetime | None = None
    jump_since: datetime | None = None
    guard_breach: str = ""


@dataclass(frozen=True)
class PlanningState:
    """Everything the planner knows of the past: the cluster as read now, and its own memory."""

    cluster: WorkloadState
    memory: PlannerMemory = PlannerMemory()


@dataclass(frozen=True)
class TrustedForecast:
    """A forecast with its trust verdict (from the rolling backtest and the trust gate).

    `forecast None` = forecasting failed or was not possible; with `trusted False` the planner
    sizes reactively on current demand. `reasons` say why (for the Plan). `level_trusted`, with
    `trusted`: the forecast's level passed the rolling check too (WAPE within `trust_bound`), not
    only its growth (`forecaster.backtest.TrustVerdict.level_trusted`). The growth anchored on
    the observed demand needs `trusted` alone; where the planner would take the level itself, a
    level not trusted may only add capacity or keep bitrate (scaler.planning: event pre-scaling
    covers at least the growth on the observed demand; the bitrate peak leaves it out).
    """

    forecast: Forecast | None
    trusted: bool
    reasons: tuple[str, ...] = ()
    level_trusted: bool = True

    @classmethod
    def judged(cls, forecast: Forecast | None, verdict: TrustVerdict) -> TrustedForecast:
        """`forecast` with the trust `verdict` gave it (both flags and the reasons)."""
        return cls(forecast, bool(verdict.trusted), tuple(verdict.reasons), verdict.level_trusted is not False)

    @classmethod
    def not_fitted(cls) -> TrustedForecast:
        """No model fitted yet for the workload: untrusted, so the planner sizes reactively."""
        return cls(None, False, ("no forecast yet: the model has not been fitted",))

    def sliced(self, window: Forecast | None, attempted_at: datetime) -> TrustedForecast:
        """This verdict with its forecast cut to `window` (`forecast_window`'s points, taken by
        the cache that holds the forecast); untrusted, "refit overdue", when no point is left
        (the refit attempted at `attempted_at` is too old)."""
        if window is None or window.frame.empty:
            return TrustedForecast(None, False, (f"forecast from {attempted_at.isoformat()} has no point "
                                                 "at or after now (refit overdue)",))
        return replace(self, forecast=window)


def forecast_window(now: datetime, horizon: timedelta, step: timedelta,
                    data_until: datetime | None = None) -> tuple[datetime, datetime]:
    """The points a tick at `now` plans with, as the open interval (after, before) of their
    times: the buckets [t, t + step) not over yet at `data_until` (the demand observation's time,
    before `now` by the demand's lag: the planner compares the observation with the forecast for
    its time; default `now`, never after it), up to `now + horizon`. One rule for every cache:
    scaler.controller.LiveForecasterCache (a frame), scaler.fitting.CompactForecast (arrays) and
    the replay's scaler.replay.forecasting.ReplayForecaster (int64 times)."""
    seen = now if data_until is None else min(now, data_until)
    return seen - step, now + horizon


@dataclass(frozen=True)
class Step:
    """One step of a plan: `name` of the rule, value `before` and `after`, and why."""

    name: str
    before: object
    after: object
    reason: str


@dataclass(frozen=True)
class TierCap:
    """Bitrate decision for one viewer tier: highest rung allowed, its kbps, the FEC profile."""

    tier: str
    rung: str
    max_kbps: float
    fec_profile: str = "standard"
    egress_gbph: float | None = None  # estimated egress, GB per hour, when viewers are known
    weak_network_rung: str | None = None  # cap for weak-network viewers of the tier, when the profile applies
    weak_network_kbps: float | None = None  # kbit/s of weak_network_rung


@dataclass(frozen=True)
class Plan:
    """The decision for one workload at one tick. Pure data; `inputs_digest` identifies inputs.

    `apply_via`: `scale` (scale subresource) or `hpa_min_replicas` (an HPA owns the workload).
    `target_replicas` is what is written (scale replicas, or the HPA's minReplicas).
    `bitrate` is None when the policy plans no bitrate.
    """

    workload: str
    now: datetime
    current_replicas: int
    target_replicas: int
    apply_via: Literal["scale", "hpa_min_replicas"]
    steps: tuple[Step, ...]
    memory: PlannerMemory
    forecast_trusted: bool
    guard_active: bool
    data_ok: bool
    bitrate: tuple[TierCap, ...] | None = None
    inputs_digest: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def replicas_change(self) -> int:
        return self.target_replicas - self.current_replicas

    @property
    def reasons(self) -> list[str]:
        return [s.reason for s in self.steps]

    def to_json(self) -> dict:
        """JSON-ready dict (audit log line, plans.jsonl)."""
        d = asdict(self)
        d["now"] = self.now.isoformat()
        d["memory"] = {
            "recommendations": [(t.isoformat(), r) for t, r in self.memory.recommendations],
            "last_scale_up_at": _iso(self.memory.last_scale_up_at),
            "last_scale_down_at": _iso(self.memory.last_scale_down_at),
            "guard_until": _iso(self.memory.guard_until),
            "guard_actions": list(self.memory.guard_actions),
            "last_demand": self.memory.last_demand,
            "burst_pods": self.memory.burst_pods,
            "last_step_down_at": _iso(self.memory.last_step_down_at),
            "collapse_since": _iso(self.memory.collapse_since),
            "jump_since": _iso(self.memory.jump_since),
        }
        d["steps"] = [
            {"step": s.name, "before": _plain(s.before), "after": _plain(s.after), "reason": s.reason}
            for s in self.steps
        ]
        return d


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _plain(v: object) -> object:
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


def digest(*parts: object) -> str:
    """Stable short digest of the planner's inputs (equal inputs -> equal digest)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]
