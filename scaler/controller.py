"""One controller tick: read metrics, forecast, read the cluster, plan, apply, record.

The tick is a flat list of named steps per workload (DESIGN.md "The flow of one tick"):

    now = clock.now()                                   # read once, passed down
    for workload in policy.workloads:
        history     = read_history(...)                 # Prometheus range, lookback at forecast.step
        observation = observe(...)                      # demand now, SLIs, tier viewers, weak-network loss
        refit_if_due(...)                               # only with fit=True (--once); the loop refits apart
        forecast    = forecasters.forecast(...)         # cached model sliced at now, with its trust verdict
        state       = cluster.read(...)                 # replicas, HPA, bitrate document
        plan        = planner(forecast, observation, workload, policy, state, now)   # PURE
        result      = cluster.apply(plan, ..., dry_run) # followers and dry-run: no write
        record(plan)                                    # audit log line, /metrics

Small interfaces, so tests use fakes: `Clock`, `MetricsSource` (forecaster.history), `Cluster`,
`ForecasterCache`. `LiveForecasterCache` is the production cache: one fitted model per workload,
refitted every `forecast.refit_interval` (warm-started from the previous fit's parameters when
the model offers them), each refit predicting the horizon plus one refit interval once; between
refits a tick only slices that frame.

Failure rules (each is logged, counted in ebbtide_errors_total{kind}, and written in the audit
line's `problems`):
- Prometheus unreachable, slow or empty: the observation carries no demand (or no SLI reading),
  so the planner's guard holds: no scale-in, no bitrate cut; scale-up on a cached trusted forecast
  is still allowed. After the first connection-level failure (no HTTP status) in a tick the
  remaining queries of that tick are skipped rather than each waiting for its own timeout.
- Forecast failure (fit raises, too little history, no data): reactive sizing
  (`TrustedForecast(None, False, reasons)`); a failed fit is retried after `FIT_RETRY`.
- Cluster read fails: no plan for that workload this tick (nothing is known to plan from).
- Apply fails (after the adapter's own retries): reported; the next tick plans again.

Bitrate caps are one document per cluster, planned with the policy's `bitrate.workload` (default
the first workload; `bitrate_scope`); the other workloads plan replicas.

A workload's planner memory (stabilisation window, cooldown times, guard hold) is kept between
ticks in the Controller, keyed by workload name. With a `MemoryStore` (scaler.memory_store;
`ebbtide run --state-configmap`) it also survives a restart or a failover: the store is read at
the first tick and again at the first tick after this replica becomes leader (reading it in the
tick, which never overlaps itself, not in the leader job, so the memory is never swapped under a
running tick), and the leader saves what changed after each tick it applied live. A store that
cannot be read or written, or a saved memory that does not validate, is logged, counted
(ebbtide_errors_total{kind="state_load"|"state_save"}) and never stops planning or applying
(docs/controller.md, "Planner memory across restarts").
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import pandas as pd

from forecaster.backtest import TrustPolicy, judge_and_fit, judge_issued, model_params, observed_span
from forecaster.history import InstantValue, MetricsError, MetricsSource
from forecaster.series import Forecast, Forecaster, Series
from policies.errors import EbbtideError, UnreadableDocumentError
from policies.events import Event
from policies.schema import BitrateTarget, Policy, Workload
from policies.units import format_duration
from scaler.memories import (
    MemoryFormatError,
    after_failed_apply,
    decode_memory,
    drop_future_times,
    encode_memory,
    for_saving,
    restore_memory,
)
from scaler.memory_store import MemoryStore
from scaler.metrics import ControllerMetrics
from scaler.plans import (
    Observation,
    Plan,
    PlannerMemory,
    PlanningState,
    SliReading,
    TrustedForecast,
    WorkloadState,
    forecast_window,
    recent_demand,
)
from scaler.safety import lookback_peak

log = logging.getLogger("ebbtide.controller")

#: After a failed fit, the next attempt waits this long (or the refit interval, if shorter).
FIT_RETRY = timedelta(minutes=15)
#: Longest window over which issued forecasts are scored against what happened (trust check).
TRUST_WINDOW = timedelta(days=1)
#: A planner-memory store that keeps refusing saves (RBAC) is warned about this often, not every tick.
SAVE_WARN_EVERY = timedelta(minutes=10)

Planner = Callable[[TrustedForecast, Observation, Workload, Policy, PlanningState, datetime], Plan]
ModelFactory = Callable[[Workload, Sequence[Event]], Callable[[], Forecaster]]


# --------------------------------------------------------------------------- interfaces
class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, tz-aware UTC."""
        ...


class SystemClock:
    """The wall clock in UTC, to the whole second (Prometheus works in whole seconds)."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc).replace(microsecond=0)


class ShiftedClock:
    """A clock whose first reading is `start` and that runs at wall speed from there (UTC, whole
    seconds): what-if runs and tests against stored history (`ebbtide run --at`). It starts at the
    first reading, not when made, so `--once --at T` plans at exactly T however long the start-up
    (imports, policy load) took."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError(f"the start time must carry a zone, got {start.isoformat()}")
        self._start = start.astimezone(timezone.utc)
        self._t0: float | None = None

    def now(self) -> datetime:
        if self._t0 is None:
            self._t0 = time.monotonic()
        return (self._start + timedelta(seconds=time.monotonic() - self._t0)).replace(microsecond=0)


class Cluster(Protocol):
    """The Kubernetes side (scaler.kube.KubeCluster in production)."""

    def read(self, workload: Workload, bitrate_target: BitrateTarget | None) -> WorkloadState: ...

    def apply(self, plan: Plan, workload: Workload, bitrate_target: BitrateTarget | None,
              dry_run: bool, *, state: WorkloadState | None = None) -> "Applied":
        """Make the cluster match `plan` (dry_run: record the writes, send none). May raise
        EbbtideError."""
        ...


class Applied(Protocol):
    """What `Cluster.apply` returns (scaler.kube.ApplyResult in production): a dataclass with at
    least these fields. `ok`: every change the plan asked for is in the cluster; `changed`: the
    plan differed from the state (writes were sent, or would have been in dry-run); `error`: why
    not ok."""

    ok: bool
    changed: bool
    error: str | None


class ForecasterCache(Protocol):
    """Fitted forecasters per workload. `due` says whether `refit` should run now; `refit` fits on
    `history` (never raises: failures become an untrusted verdict and a RefitOutcome with ok
    False); `forecast` is cheap (no fit) and returns the verdict sliced at `now`."""

    def due(self, workload: Workload, events: Sequence[Event], now: datetime) -> bool: ...

    def refit(self, workload: Workload, events: Sequence[Event], history: Series, now: datetime) -> "RefitOutcome": ...

    def forecast(self, workload: Workload, now: datetime, data_until: datetime | None = None,
                 events: Sequence[Event] | None = None) -> TrustedForecast: ...


@dataclass(frozen=True)
class RefitOutcome:
    """What one refit did: `ok` False when it failed (message says why); `fit_s` wall seconds."""

    workload: str
    ok: bool
    message: str
    fit_s: float = 0.0
    trusted: bool = False


# --------------------------------------------------------------------------- forecaster cache
def default_model_factory(workload: Workload, events: Sequence[Event]) -> Callable[[], Forecaster]:
    """EbbtideForecaster configured from the workload (the replay's factory: one way to do it)."""
    from scaler.replay.runner import default_model_factory as factory

    return factory(workload, events)


@dataclass(frozen=True)
class _Fitted:
    """One workload's cache entry (immutable: replaced whole, so readers need no lock)."""

    key: str                      # digest of the workload's settings and the events
    attempted_at: datetime        # last refit attempt
    ok: bool                      # last attempt produced a forecast
    verdict: TrustedForecast      # forecast over [first point, + horizon + refit_interval)
    params: dict | None = None    # warm start for the next fit
    issued: tuple[Forecast, ...] = ()  # earlier forecasts, scored against what happened


def _settings_key(workload: Workload, events: Sequence[Event]) -> str:
    doc = {"w": workload.model_dump(mode="json"), "e": [e.model_dump(mode="json") for e in events]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finite_forecast(fc: Forecast) -> Forecast:
    """`fc` when every yhat, yhat_lower and yhat_upper is finite; a ValueError (a failed fit:
    sized reactively, retried) otherwise. A warm refit judged only on earlier forecasts stored a
    forecast of NaN as ok and trusted, and, kept among the forecasts issued, failed every later
    refit's trust check for 18 h."""
    values = fc.frame[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(dtype=float)
    bad = int((~np.isfinite(values)).any(axis=1).sum())
    if bad:
        raise ValueError(f"the forecast holds {bad} of {len(values)} points that are not finite (NaN or infinite)")
    return fc


def fitted_for_other_settings(key: str, workload: Workload, events: Sequence[Event] | None) -> TrustedForecast | None:
    """An untrusted verdict when the forecast held under `key` was fitted for other settings or
    events than `workload`'s and `events` (a policy reload: a new event, another per_replica)
    and its refit has not run yet; None when it is still theirs (or `events` is not given).
    Served as trusted, the old forecast scaled a workload in a minute before a newly declared
    event's ramp (untrusted, the planner holds near an event's start and sizes reactively)."""
    if events is None or key == _settings_key(workload, events):
        return None
    return TrustedForecast(None, False, ("forecast fitted before the policy's settings or events for this workload "
                                         "changed (reload): sized reactively until its refit",))


class LiveForecasterCache:
    """ForecasterCache for the running controller.

    Refit due: no fit yet, the workload's settings or the events changed (policy reload), the
    last fit is `forecast.refit_interval` old, or a failed fit is min(FIT_RETRY, refit_interval)
    old. Trust, judged at each refit (cheap): the forecasts this cache issued earlier are scored,
    as issued, against the history over the last min(horizon, TRUST_WINDOW) by
    `forecaster.backtest.judge_issued`, the rule the replay runs (level and growth, with the
    workload's per_replica; scaler.fitting's worker path calls the same); before any can be scored,
    one rolling-origin backtest at that window's start bootstraps the verdict (one extra fit).
    Thread-safe: a refit (scheduler thread) replaces an entry whole.
    """

    def __init__(self, model_factory: ModelFactory = default_model_factory):
        self._factory = model_factory
        self._entries: dict[str, _Fitted] = {}
        self._lock = threading.Lock()

    def due(self, workload: Workload, events: Sequence[Event], now: datetime) -> bool:
        e = self._entries.get(workload.name)
        if e is None or e.key != _settings_key(workload, events):
            return True
        every = workload.forecast.refit_interval if e.ok else min(FIT_RETRY, workload.forecast.refit_interval)
        return now - e.attempted_at >= every

    def forget_except(self, names: set[str]) -> None:
        """Drop entries of workloads no longer in the policy."""
        with self._lock:
            for name in set(self._entries) - names:
                del self._entries[name]

    def refit(self, workload: Workload, events: Sequence[Event], history: Series, now: datetime) -> RefitOutcome:
        fs = workload.forecast
        key = _settings_key(workload, events)
        prev = self._entries.get(workload.name)
        prev = prev if prev is not None and prev.key == key else None
        span = observed_span(history)
        if span < fs.min_history:
            why = (f"only {format_duration(span)} of history, need {format_duration(fs.min_history)}; "
                   "sizing reactively")
            self._store(workload.name, _Fitted(key, now, True, TrustedForecast(None, False, (why,))))
            return RefitOutcome(workload.name, True, why)
        make_model = self._factory(workload, events)
        step = pd.Timedelta(history.step)
        window = min(fs.horizon, TRUST_WINDOW)
        t0 = time.perf_counter()
        try:
            verdict, model, _ = self.judge_and_fit(history, make_model, prev.issued if prev else (), window, span,
                                                   fs, workload.demand.per_replica, prev.params if prev else None)
            index = history.future_index(fs.horizon + fs.refit_interval, start=history.end + step, partial=True)
            fc = finite_forecast(model.predict(index))
        except (EbbtideError, ValueError, RuntimeError, ArithmeticError, KeyError) as exc:
            why = f"forecast failed: {exc}; sizing reactively"
            self._store(workload.name, _Fitted(key, now, False, TrustedForecast(None, False, (why,)),
                                               prev.params if prev else None, prev.issued if prev else ()))
            return RefitOutcome(workload.name, False, why, time.perf_counter() - t0)
        fit_s = time.perf_counter() - t0
        params = model_params(model)
        cutoff = pd.Timestamp(now) - pd.Timedelta(window) - pd.Timedelta(fs.horizon + fs.refit_interval)
        issued = tuple(f for f in (prev.issued if prev else ()) if f.index[-1] >= cutoff) + (fc,)
        self._store(workload.name, _Fitted(key, now, True, TrustedForecast.judged(fc, verdict), params, issued[-8:]))
        return RefitOutcome(workload.name, True, "; ".join(verdict.reasons), fit_s, verdict.trusted)

    def forecast(self, workload: Workload, now: datetime, data_until: datetime | None = None,
                 events: Sequence[Event] | None = None) -> TrustedForecast:
        """The trusted forecast at `now`, cut to `scaler.plans.forecast_window` (from the bucket
        holding `data_until`, the demand observation's time, up to the horizon); untrusted when it
        was fitted for other settings or `events` (fitted_for_other_settings)."""
        e = self._entries.get(workload.name)
        if e is None:
            return TrustedForecast.not_fitted()
        if (changed := fitted_for_other_settings(e.key, workload, events)) is not None:
            return changed
        fc = e.verdict.forecast
        if fc is None:
            return e.verdict
        step = pd.Timedelta(fc.index[1] - fc.index[0]) if len(fc.index) > 1 else pd.Timedelta(workload.forecast.step)
        after, before = forecast_window(now, workload.forecast.horizon, step, data_until)
        lo = fc.index.searchsorted(pd.Timestamp(after), side="right")
        hi = fc.index.searchsorted(pd.Timestamp(before), side="left")
        window = Forecast(fc.frame.iloc[lo:hi], fc.model, fc.upper_quantile, fc.lower_quantile, fc.notes)
        return e.verdict.sliced(window, e.attempted_at)

    def _store(self, name: str, entry: _Fitted) -> None:
        with self._lock:
            self._entries[name] = entry

    @staticmethod
    def judge_issued(history: Series, make_model: Callable[[], Forecaster], issued: Sequence[Forecast],
                     window: timedelta, span: timedelta, fs, per_replica: float | None = None) -> Any:
        """Trust verdict of a workload whose forecast settings are `fs`: the shared rolling check
        `forecaster.backtest.judge_issued` (the forecasts issued earlier, oldest first, scored as
        issued over the last `window` of `history`; a bootstrap backtest when none overlaps it)
        with `trust_bound` and `min_history`. With `per_replica` (the workload's demand per pod)
        the forecast's growth is judged as the planner uses it (docs/planner.md, trust); None:
        the level alone. `span`: the history's observed span. Pure; also run by scaler.fitting
        in worker processes."""
        policy = TrustPolicy(max_wape=fs.trust_bound, min_history=fs.min_history)
        return judge_issued(history, issued, window, span, policy, make_model, per_replica)

    @staticmethod
    def judge_and_fit(history: Series, make_model: Callable[[], Forecaster], issued: Sequence[Forecast],
                      window: timedelta, span: timedelta, fs, per_replica: float | None,
                      init: dict | None) -> tuple[Any, Forecaster, bool]:
        """One refit, shared by both caches: `forecaster.backtest.judge_and_fit` with the
        workload's forecast settings `fs` (trust_bound, min_history). Returns (verdict, fitted
        model, warm: `init` was given to the model)."""
        policy = TrustPolicy(max_wape=fs.trust_bound, min_history=fs.min_history)
        return judge_and_fit(history, issued, window, span, policy, make_model, per_replica, init)


# --------------------------------------------------------------------------- audit log
class AuditLog:
    """One JSON line per plan: `Plan.to_json()` plus what was done with it.

    Fields added to the plan's own: `kind` ("plan"), `dry_run`, `leader`, `applied` (the
    adapter's result, as JSON), `problems` (what went wrong this tick for the workload),
    `reasons` (the steps' reasons in order). Written to a stream (default stdout) or appended to
    a file; each line is flushed.
    """

    def __init__(self, target: str | Path | IO[str] | None = None):
        self._lock = threading.Lock()
        if target is None or target == "-":
            self._stream, self._own = sys.stdout, False
        elif isinstance(target, (str, Path)):
            self._stream, self._own = open(target, "a", encoding="utf-8"), True  # noqa: SIM115 (closed in close)
        else:
            self._stream, self._own = target, False

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=False, default=_json_default, ensure_ascii=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._own:
            self._stream.close()


def _json_default(v: object) -> object:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, timedelta):
        return format_duration(v)
    if hasattr(v, "to_json"):
        return v.to_json()
    if is_dataclass(v) and not isinstance(v, type):
        return asdict(v)
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    return str(v)


def describe_apply(result: Applied | None) -> Any:
    """The adapter's apply result (a dataclass, `Applied`) as plain JSON data."""
    if result is None:
        return None
    return json.loads(json.dumps(asdict(result), default=_json_default))


def apply_failure(result: Applied) -> str | None:
    """The adapter's failure message when its result is not `ok`, else None."""
    return None if result.ok else (result.error or "the adapter reported a failure")


# --------------------------------------------------------------------------- one tick
@dataclass(frozen=True)
class WorkloadOutcome:
    """One workload's tick. `plan` None when no plan could be made (`error` says why).
    `held`: demand or SLI data was missing/stale, so the planner held (no scale-in, no cut).
    `problems`: everything that went wrong, reported but not fatal."""

    workload: str
    plan: Plan | None
    held: bool
    problems: tuple[str, ...] = ()
    applied: Applied | None = None
    wrote: bool = False
    error: str | None = None


@dataclass(frozen=True)
class TickReport:
    """A whole tick: `ok` when every workload got a plan and its apply did not fail."""

    now: datetime
    dry_run: bool
    leader: bool
    outcomes: tuple[WorkloadOutcome, ...]
    duration_s: float
    refits: tuple[RefitOutcome, ...] = ()

    @property
    def ok(self) -> bool:
        return all(o.error is None for o in self.outcomes)

    @property
    def held(self) -> tuple[str, ...]:
        return tuple(o.workload for o in self.outcomes if o.held)

    def summary(self) -> str:
        parts = []
        for o in self.outcomes:
            if o.plan is None:
                parts.append(f"{o.workload}: no plan ({o.error})")
                continue
            p = o.plan
            what = f"{p.current_replicas}->{p.target_replicas}" if p.replicas_change else f"hold {p.current_replicas}"
            flags = [f for f, on in (("held: data missing/stale", o.held), ("guard", p.guard_active and not o.held),
                                     ("reactive", not p.forecast_trusted), ("wrote", o.wrote),
                                     (f"apply failed: {o.error}", o.error is not None)) if on]
            parts.append(f"{o.workload}: {what}" + (f" ({', '.join(flags)})" if flags else ""))
        mode = "dry-run" if self.dry_run else "live"
        role = "leader" if self.leader else "follower"
        return f"tick {self.now.isoformat()} [{mode}, {role}, {self.duration_s:.2f}s]: " + "; ".join(parts)


class _Queries:
    """The Prometheus queries of one tick: memoised, counted, and cut short once the server is
    unreachable (a connection-level failure, no HTTP status), so a dead or slow server costs one
    timeout per tick, not one per query."""

    def __init__(self, source: MetricsSource, metrics: ControllerMetrics | None):
        self._source = source
        self._metrics = metrics
        self._memo: dict[tuple, Any] = {}
        self.down: str | None = None

    def _run(self, key: tuple, call: Callable[[], Any]) -> tuple[Any, str | None]:
        if key in self._memo:
            return self._memo[key]
        if self.down is not None:
            out: tuple[Any, str | None] = (None, f"query {key[1]!r} skipped: {self.down}")
        else:
            try:
                out = (call(), None)
            except MetricsError as exc:
                if self._metrics is not None:
                    self._metrics.prometheus_error()
                if _unreachable(exc):
                    self.down = f"Prometheus unreachable this tick ({exc})"
                out = (None, str(exc))
        self._memo[key] = out
        return out

    def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> tuple[Series | None, str | None]:
        return self._run(("range", query, start, end, step), lambda: self._source.range(query, start, end, step))

    def instant(self, query: str, at: datetime) -> tuple[InstantValue | None, str | None]:
        return self._run(("instant", query, at), lambda: self._source.instant(query, at))


#: Words of forecaster.history's connection-level reasons (no HTTP answer, or a gateway error).
_UNREACHABLE_WORDS = ("timed out", "connection refused", "cannot connect", "connection failed", "no answer",
                      "host name not found", "TLS error")


def _unreachable(exc: MetricsError) -> bool:
    """The server (not the query) failed: no answer, or a 502/503/504 from it or a proxy."""
    if exc.status is not None:
        return exc.status in (502, 503, 504)
    return any(w in str(exc) for w in _UNREACHABLE_WORDS)


def history_window(now: datetime, lookback: timedelta, step: timedelta) -> tuple[datetime, datetime]:
    """(start, end) of the history range, on the UTC epoch grid of `step`: `end` is the last
    bucket already over at `now` (Series are left-labelled: the point at ts covers
    [ts, ts + step)), so the forecast's first point is the bucket containing `now`;
    start = end - lookback (rounded down to whole steps).

    Example: now 12:03, step 5m -> end 11:55 (the bucket [11:55, 12:00)); the forecast starts 12:00.
    """
    step_s = int(step.total_seconds())
    if step_s <= 0 or step.total_seconds() != step_s:
        raise ValueError(f"forecast step must be a whole number of seconds, got {step}")
    end_s = (int(now.timestamp()) // step_s) * step_s - step_s
    end = datetime.fromtimestamp(end_s, tz=timezone.utc)
    lookback_s = (int(lookback.total_seconds()) // step_s) * step_s
    return end - timedelta(seconds=lookback_s), end


def demand_history_range(w: Workload, now: datetime) -> tuple[datetime, datetime]:
    """Evaluation range of a workload's demand history: the buckets complete at `now - lag`
    (`history_window`; the replay's history ends there too), each read `demand.lag` after its
    start, since a sample stands for the demand `lag` before it (a `rate()` at t + lag covers
    the bucket starting at t). `_read_history` labels the points back by `lag`."""
    start, end = history_window(now - w.demand.lag, w.forecast.lookback, w.forecast.step)
    return start + w.demand.lag, end + w.demand.lag


def label_demand_history(series: Series, w: Workload) -> Series:
    """The points read over `demand_history_range`, each labelled by the bucket it stands for
    (`demand.lag` before the time it was read at)."""
    if not w.demand.lag:
        return series
    return Series(series.values.set_axis(series.index - pd.Timedelta(w.demand.lag)), series.step, series.name)


def _replicas_stayed(applied: Any) -> bool:
    """A failed apply whose replicas write landed and stayed (a scale-up kept when the bitrate
    write failed, or a rollback that failed): the action happened, and its memory counts."""
    return (applied is not None and not getattr(applied, "rolled_back", False)
            and any(getattr(w, "purpose", None) in ("replicas", "hpa_min_replicas") for w in applied.writes))


def _finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def bitrate_scope(policy: Policy, index: int) -> Policy:
    """The policy as workload `index` plans with: bitrate caps are ONE document per cluster,
    planned with `bitrate.workload` (default: the first workload; its demand drives the cap
    rules); the others plan replicas only. Planning the document once per workload would move the
    caps `step_rungs` per workload per tick (each plan starting from the caps the previous one wrote)."""
    if policy.bitrate is None or policy.workloads[index].name == policy.bitrate_workload:
        return policy
    return policy.model_copy(update={"bitrate": None})


class Controller:
    """Runs ticks. Stateless across ticks except the planner memory per workload.

    `metrics` and `audit` are optional (tests); `planner` defaults to scaler.planning.plan.
    `query_concurrency` > 1: a tick's queries run first on a thread pool with at most that many
    in flight (scaler.fitting.prefetch_tick_queries); 1 keeps them sequential. `memory_store`:
    where the planner memory is kept across processes (None: in this process only).
    """

    def __init__(
        self,
        clock: Clock,
        source: MetricsSource,
        cluster: Cluster,
        forecasters: ForecasterCache,
        *,
        metrics: ControllerMetrics | None = None,
        audit: AuditLog | None = None,
        planner: Planner | None = None,
        query_concurrency: int = 1,
        memory_store: MemoryStore | None = None,
    ):
        self.clock = clock
        self.query_concurrency = query_concurrency
        self.source = source
        self.cluster = cluster
        self.forecasters = forecasters
        self.metrics = metrics
        self.audit = audit
        if planner is None:
            from scaler.planning import plan as planner
        self.planner = planner
        self.memory: dict[str, PlannerMemory] = {}
        self.memory_store = memory_store
        # What the store holds, as far as this replica knows: workload -> memory (None: a key
        # that could not be read). A memory equal to its entry here is not written again.
        self._stored: dict[str, PlannerMemory | None] = {}
        self._memory_loaded = False
        self._was_leader = False
        # Set by the loop on SIGTERM: the running tick ends after the workload it is on, the
        # running refit after the fit it is on (the loop keeps the Lease meanwhile).
        self.stopping = threading.Event()
        # Asked before each workload of a leader's tick (the loop's view of its Lease, renewed on
        # its own thread): a renewal that fails mid-tick makes the rest of the tick dry-run.
        self.still_leader: Callable[[], bool] | None = None
        # Called after each workload of a tick (the loop's Health.progress): a long tick over many
        # workloads is progress, not a wedged loop for the liveness probe to kill mid-apply.
        self.on_progress: Callable[[], None] | None = None
        # Failed saves in a row: (first failure, when last warned, failures); None when the last
        # save went through. A store refused for good (RBAC) warns once per SAVE_WARN_EVERY.
        self._save_failing: tuple[datetime, datetime, int] | None = None

    # ------------------------------------------------------------------ entry points
    def tick(self, policy: Policy, *, dry_run: bool, leader: bool = True, fit: bool = False) -> TickReport:
        """One tick over every workload. `dry_run`: plan and record, write nothing (the adapter
        is still called with dry_run=True, so it can say what it would do). `leader` False (a
        follower) forces dry_run. `fit`: refit due models inline (--once); the loop refits apart."""
        t0 = time.perf_counter()
        now = self.clock.now()
        effective_dry_run = dry_run or not leader
        if self.memory_store is not None and (not self._memory_loaded or (leader and not self._was_leader)):
            self.load_memory(policy, now)  # at start, and when this replica takes over as leader
        self._was_leader = leader
        queries = _Queries(self.source, self.metrics)
        if self.query_concurrency > 1:
            from scaler.fitting import prefetch_tick_queries

            prefetch_tick_queries(queries, policy, now, self.query_concurrency)
        outcomes = []
        refits = []
        batch = getattr(self.forecasters, "refit_due_batch", None)
        if fit and callable(batch):  # a parallel engine (scaler.fitting) fits every due model at once first
            refits.extend(batch(policy, now, lambda w: self._read_history(w, now, queries), self.metrics,
                                should_stop=self.stopping.is_set))
            fit = False
        lost_lead = False
        for i, workload in enumerate(policy.workloads):
            if self.stopping.is_set():
                log.warning("stopping: %d of %d workloads not planned this tick (from %s on)",
                            len(policy.workloads) - i, len(policy.workloads), workload.name)
                break
            if not effective_dry_run and not lost_lead and self.still_leader is not None and not self.still_leader():
                lost_lead = True
                log.warning("leadership lost mid-tick: %s and the %d workloads after it are planned without writes",
                            workload.name, len(policy.workloads) - i - 1)
            try:
                outcome, refit = self._tick_workload(bitrate_scope(policy, i), workload, now,
                                                     effective_dry_run or lost_lead, leader and not lost_lead, fit,
                                                     queries)
            except Exception as exc:  # noqa: BLE001 (a bug or an unforeseen answer stops this workload only)
                log.exception("%s: tick failed", workload.name)
                outcome, refit = self._failed(workload, now, "workload", f"tick failed: {type(exc).__name__}: "
                                              f"{exc} (an unexpected error: the traceback is in the log; the "
                                              "other workloads go on)", []), None
            outcomes.append(outcome)
            if refit is not None:
                refits.append(refit)
            if self.on_progress is not None:
                self.on_progress()
        self._forget_removed(policy)
        if self.memory_store is not None and not effective_dry_run and not lost_lead:
            self.save_memory(policy, now)  # only the leader, only live: dry-run writes nothing
        duration_s = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.tick_duration.observe(duration_s)
            self.metrics.last_tick.set(time.time())
        report = TickReport(now, effective_dry_run, leader, tuple(outcomes), duration_s, tuple(refits))
        log.info("%s", report.summary())
        return report

    def refit_due(self, policy: Policy) -> list[RefitOutcome]:
        """Refit every workload whose model is due (the loop's refit job). Reads its own history."""
        now = self.clock.now()
        queries = _Queries(self.source, self.metrics)
        batch = getattr(self.forecasters, "refit_due_batch", None)
        if callable(batch):  # a parallel engine (scaler.fitting): bounded concurrent reads and fits
            return batch(policy, now, lambda w: self._read_history(w, now, queries), self.metrics,
                         should_stop=self.stopping.is_set)
        out = []
        for workload in policy.workloads:
            if self.stopping.is_set():
                break
            if not self.forecasters.due(workload, policy.events, now):
                continue
            history, problem = self._read_history(workload, now, queries)
            if history is None:
                log.warning("refit of %s skipped: %s", workload.name, problem)
                continue
            out.append(self._refit(workload, policy.events, history, now))
        return out

    # ------------------------------------------------------------------ memory across processes
    def load_memory(self, policy: Policy, now: datetime) -> None:
        """Read the planner memories from the store (scaler.memories.restore_memory decides what
        of each is trusted at `now`). A workload with a usable saved memory takes it; one whose key
        is absent, unreadable or invalid keeps the memory this process has (empty at start: the
        planner's fresh-start behaviour). Keys of workloads not in `policy` are dropped (and
        removed from the store by the next save). Never raises: problems are logged, counted as
        ebbtide_errors_total{kind="state_load"} and leave the memories as they are."""
        store = self.memory_store
        assert store is not None
        self._memory_loaded = True
        try:
            texts = store.load()
        except EbbtideError as exc:
            self._state_problem("state_load", f"planner memory not loaded: {exc}; every workload keeps the "
                                              "memory this process has (empty at start)")
            return
        if texts is None:
            self._state_problem("state_load", f"planner memory not loaded: {store.where} does not exist "
                                              "(first start, or deleted); the leader's first save creates it")
            self._stored = {}
            return
        workloads = {w.name: w for w in policy.workloads}
        stored: dict[str, PlannerMemory | None] = {}
        restored = []
        for name, text in sorted(texts.items()):
            try:
                saved = decode_memory(text)
            except MemoryFormatError as exc:
                stored[name] = None
                if name in workloads:
                    self._state_problem("state_load", f"{store.where} key {name!r}: {exc}; workload {name} "
                                                      "starts with the memory this process has (empty at start)")
                continue
            stored[name] = saved.memory
            w = workloads.get(name)
            if w is None:
                log.info("%s key %r: no such workload in the policy; dropped", store.where, name)
                continue
            try:
                memory, notes = restore_memory(saved, w, now, policy.prometheus.max_staleness)
            except (ArithmeticError, ValueError) as exc:  # times at the edge of the calendar: one key only
                self._state_problem("state_load", f"{store.where} key {name!r}: cannot be restored ({exc}); "
                                                  f"workload {name} starts with the memory this process has")
                continue
            for note in notes:
                log.info("%s key %r: %s", store.where, name, note)
            self.memory[name] = memory
            restored.append(name)
        self._stored = stored
        log.info("planner memory loaded from %s: %s", store.where, ", ".join(restored) or "none usable")

    def save_memory(self, policy: Policy, now: datetime) -> bool:
        """Write to the store the memories that differ from what it holds (saved at `now`), and
        remove the keys of workloads no longer in `policy`: one store write, none when nothing
        changed. True when something was written. Never raises: a failed write is logged and
        counted as ebbtide_errors_total{kind="state_save"}, and retried by the next save."""
        store = self.memory_store
        assert store is not None
        names = {w.name for w in policy.workloads}
        changes: dict[str, str | None] = {
            name: encode_memory(for_saving(m), now) for name, m in self.memory.items()
            if name not in self._stored or self._stored[name] != m}
        changes.update({name: None for name in self._stored if name not in names})
        if not changes:
            return False
        try:
            store.save(changes)
        except EbbtideError as exc:
            names_said = sorted(changes)
            if len(names_said) > 5:
                names_said = names_said[:5] + [f"and {len(changes) - 5} more"]
            self._save_failed(now, f"planner memory not saved ({', '.join(names_said)}): {exc}; "
                                   "planning and applying go on, the next tick saves again")
            return False
        if self._save_failing is not None:
            since, _, failures = self._save_failing
            log.info("planner memory saved to %s again (%d failed saves since %s)", store.where, failures,
                     since.isoformat())
            self._save_failing = None
        for name in changes:
            if name in names:
                self._stored[name] = self.memory[name]
            else:
                self._stored.pop(name, None)
        return True

    def _save_failed(self, now: datetime, message: str) -> None:
        """Count every failed save; warn on the first of a run of failures and then once per
        SAVE_WARN_EVERY (DEBUG in between), so a store refused for good does not warn every tick."""
        since, warned, failures = self._save_failing or (now, now - SAVE_WARN_EVERY, 0)
        failures += 1
        if now - warned >= SAVE_WARN_EVERY:
            warned = now
            if failures > 1:
                message += f" (failing since {since.isoformat()}, {failures} saves; said again every " \
                           f"{SAVE_WARN_EVERY.total_seconds() / 60:g} minutes)"
            self._state_problem("state_save", message)
        else:
            log.debug("%s", message)
            if self.metrics is not None:
                self.metrics.error("state_save")
        self._save_failing = (since, warned, failures)

    def _state_problem(self, kind: str, message: str) -> None:
        log.warning("%s", message)
        if self.metrics is not None:
            self.metrics.error(kind)

    # ------------------------------------------------------------------ the steps
    def _tick_workload(self, policy: Policy, w: Workload, now: datetime, dry_run: bool, leader: bool,
                       fit: bool, queries: _Queries) -> tuple[WorkloadOutcome, RefitOutcome | None]:
        problems: list[str] = []
        history, problem = self._read_history(w, now, queries)
        if problem:
            problems.append(problem)
        observation = self._observe(policy, w, now, history, queries, problems)
        refit = None
        if fit and history is not None and self.forecasters.due(w, policy.events, now):
            refit = self._refit(w, policy.events, history, now)
            if not refit.ok:
                problems.append(refit.message)
        forecast = self.forecasters.forecast(w, now, observation.demand_at, policy.events)
        bitrate_target = policy.bitrate.target if policy.bitrate is not None else None
        planned_with = policy
        try:
            try:
                state = self.cluster.read(w, bitrate_target)
            except UnreadableDocumentError as exc:
                # Never overwritten, and no reason to leave the replicas unplanned: plan them alone.
                problems.append(f"bitrate not planned: {exc} (Ebbtide does not overwrite a document it cannot "
                                "read); replicas planned without it")
                bitrate_target, planned_with = None, policy.model_copy(update={"bitrate": None})
                state = self.cluster.read(w, None)
        except EbbtideError as exc:
            return self._failed(w, now, "cluster_read", f"cannot read the cluster: {exc}", problems), refit
        memory, notes = drop_future_times(self.memory.get(w.name, PlannerMemory()), now)
        for note in notes:
            log.warning("%s: planner memory: %s", w.name, note)
        try:
            plan = self.planner(forecast, observation, w, planned_with, PlanningState(state, memory), now)
        except (EbbtideError, ValueError, ArithmeticError) as exc:
            return self._failed(w, now, "plan", f"planning failed: {exc}", problems), refit
        error = None
        applied = None
        try:
            applied = self.cluster.apply(plan, w, bitrate_target, dry_run, state=state)
            failure = apply_failure(applied)
        except EbbtideError as exc:
            failure = str(exc)
        took = failure is None or _replicas_stayed(applied)  # the plan's action happened
        if took:
            self.memory[w.name] = plan.memory
        else:
            # A failed write starts no cooldown for an action that never happened; what the tick
            # observed (a breach's hold above all) is kept.
            self.memory[w.name] = after_failed_apply(memory, plan.memory)
        if failure is not None:
            error = f"apply failed: {failure}"
            problems.append(error)
            if self.metrics is not None:
                self.metrics.error("apply")
        wrote = (not dry_run) and took and applied is not None and applied.changed
        outcome = WorkloadOutcome(w.name, plan, held=not plan.data_ok, problems=tuple(problems),
                                  applied=applied, wrote=wrote, error=error)
        self._record(policy, w, plan, forecast, outcome, dry_run, leader, observation.demand_now)
        return outcome, refit

    def _read_history(self, w: Workload, now: datetime, queries: _Queries) -> tuple[Series | None, str | None]:
        start, end = demand_history_range(w, now)
        series, problem = queries.range(w.demand.query, start, end, w.forecast.step)
        if series is None:
            return None, f"demand history unavailable: {problem}"
        series = label_demand_history(series, w)
        if not series.values.notna().any():
            return None, (f"demand query {w.demand.query!r} returned no data over the last "
                          f"{format_duration(w.forecast.lookback)}")
        return series, None

    def _observe(self, policy: Policy, w: Workload, now: datetime, history: Series | None,
                 queries: _Queries, problems: list[str]) -> Observation:
        """Demand now, SLIs, tier viewers and weak-network loss. Anything missing stays None: the
        planner's guard then holds (no scale-in, no bitrate cut)."""
        demand, problem = queries.instant(w.demand.query, now)
        cause = None  # why there is no demand sample, for the plan's reasons (Observation.demand_problem)
        if problem:
            cause = problem
            problems.append(f"demand now unavailable: {problem}")
        elif demand is None:
            cause = f"query {w.demand.query!r} returned no current sample"
            problems.append(f"demand {cause}")
        elif not math.isfinite(demand.value):
            cause = f"query {w.demand.query!r} returned {demand.value} (not a finite number)"
            problems.append(f"demand {cause}: taken as no sample")
        if demand is not None and demand.warnings:  # reported, planned on as given (docs/history.md)
            problems.append(f"demand query {w.demand.query!r}: Prometheus warned the answer may be partial: "
                            f"{'; '.join(demand.warnings)}")
        slis = []
        for q in w.quality:
            v, problem = queries.instant(q.query, now)
            if problem:
                problems.append(f"SLI {q.name} unavailable: {problem}")
            elif v is not None and v.warnings:
                problems.append(f"SLI {q.name}: Prometheus warned the answer may be partial: {'; '.join(v.warnings)}")
            slis.append(SliReading(q.name, _finite_or_none(v.value) if v else None, v.timestamp if v else None))
        tier_viewers: list[tuple[str, float]] = []
        loss = loss_at = None
        if policy.bitrate is not None:
            for tier in policy.bitrate.tiers:
                if tier.viewers_query:
                    v, _ = queries.instant(tier.viewers_query, now)
                    if v is not None and _finite_or_none(v.value) is not None:
                        tier_viewers.append((tier.name, v.value))
            wn = policy.bitrate.weak_network
            if wn is not None and wn.loss_query:
                v, _ = queries.instant(wn.loss_query, now)
                loss = _finite_or_none(v.value) if v else None
                loss_at = v.timestamp if v else None
        peak = lookback_peak(history.values.to_numpy(dtype=float)) if history is not None else None
        # The demand returned is `demand.lag` old (scrape interval + rate window): the observation
        # is placed then, as the replay places it, and the burst allowance's history ends there.
        seen_at = (demand.timestamp if demand else now) - w.demand.lag
        return Observation(
            demand_now=_finite_or_none(demand.value) if demand else None,
            demand_at=seen_at if demand else None,
            slis=tuple(slis),
            tier_viewers=tuple(tier_viewers),
            weak_network_loss=loss,
            lookback_peak=peak,
            recent_demand=recent_demand(history, min(now, seen_at), w.scaling.burst_lookback),
            demand_problem=cause,
            weak_network_loss_at=loss_at,
        )

    def _refit(self, w: Workload, events: Sequence[Event], history: Series, now: datetime) -> RefitOutcome:
        outcome = self.forecasters.refit(w, events, history, now)
        if outcome.ok:
            log.info("refit %s in %.1fs: %s", w.name, outcome.fit_s, outcome.message)
        else:
            log.warning("refit %s failed: %s", w.name, outcome.message)
            if self.metrics is not None:
                self.metrics.error("forecast")
        return outcome

    def _failed(self, w: Workload, now: datetime, kind: str, message: str, problems: list[str]) -> WorkloadOutcome:
        """A workload left unplanned this tick: logged, counted, its plan gauges withdrawn (the
        last plan's guard and forecast state are no longer current; `ebbtide_data_ok` reads 0)."""
        log.error("%s: %s", w.name, message)
        if self.metrics is not None:
            self.metrics.error(kind)
            self.metrics.record_unplanned(w.name)
        outcome = WorkloadOutcome(w.name, None, held=True, problems=tuple(problems) + (message,), error=message)
        if self.audit is not None:
            self.audit.write({"kind": "error", "workload": w.name, "now": now.isoformat(),
                              "error": message, "problems": list(problems)})
        return outcome

    def _record(self, policy: Policy, w: Workload, plan: Plan, forecast: TrustedForecast,
                outcome: WorkloadOutcome, dry_run: bool, leader: bool, observed_demand: float | None) -> None:
        for p in outcome.problems:
            log.warning("%s: %s", w.name, p)
        if self.metrics is not None:
            fc_now = None
            fc = forecast.forecast
            if fc is not None and len(fc.index):
                fc_now = (float(fc.yhat.iloc[0]), float(fc.yhat_upper.iloc[0]))
            self.metrics.record_plan(plan, w.scaling.max_replicas, policy.schedule.tick, fc_now, outcome.wrote,
                                     observed_demand=observed_demand, at=plan.now)
        if self.audit is not None:
            record = {"kind": "plan", **plan.to_json(), "dry_run": dry_run, "leader": leader,
                      "applied": describe_apply(outcome.applied), "wrote": outcome.wrote,
                      "error": outcome.error, "problems": list(outcome.problems), "reasons": plan.reasons}
            self.audit.write(record)

    def _forget_removed(self, policy: Policy) -> None:
        names = {w.name for w in policy.workloads}
        for name in set(self.memory) - names:
            del self.memory[name]
        forget = getattr(self.forecasters, "forget_except", None)
        if forget is not None:
            forget(names)
        if self.metrics is not None:
            tiers = {t.name for t in policy.bitrate.tiers} if policy.bitrate is not None else set()
            self.metrics.forget_except(names, tiers)
