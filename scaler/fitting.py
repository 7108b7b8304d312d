"""The parallel fitting engine: cached compact models per workload, staggered refits, fits on
local processes or a Dask cluster, and bounded-concurrency Prometheus reads.

Thousands of workloads, one tick a minute (docs/scale.md):

- **Cache** (`ParallelForecasterCache`, a `scaler.controller.ForecasterCache`): per workload one
  `CompactForecast` (the refit's forecast over horizon + refit interval as float32 arrays, not a
  DataFrame), the model's Stan parameters (a small dict: the warm start of the next refit) and
  the few earlier forecasts the trust check scores, also compact. No Prophet object, no history
  frame is kept: a tick slices the arrays and builds a horizon-long Forecast on demand.
- **Staggered refits**: workload `name` refits once per `refit_interval`, at the phase
  `refit_phase(name, interval)` (a stable SHA-256 of the name, not Python's salted `hash`), so
  1,000 workloads on a 6 h interval spread to ~2.8 refits a minute instead of 1,000 at once.
  A workload with no fit yet, or whose settings or events changed, is due at once; a failed
  fit retries after min(FIT_RETRY, refit_interval), like `LiveForecasterCache`.
- **Executors** (`FitExecutor`): `InlineExecutor` (this process, one fit at a time: the
  baseline), `ProcessExecutor` (concurrent.futures, spawn-started workers that silence
  cmdstanpy/prophet like forecaster/model.py; the default) and `DaskExecutor`
  (dask.distributed: a scheduler address, or a LocalCluster). A fit is a pure function of its
  `FitJob` (history arrays, workload, events, warm start, earlier forecasts, `now`), and the
  models are seeded, so every executor gives equal results.
- **Bounded I/O**: history reads run on a thread pool with at most `query_concurrency` queries
  in flight; fits are fed to the executor with at most `max_in_flight` jobs pending, so at most
  query_concurrency + max_in_flight histories exist at any time (never one per workload).
  `prefetch_tick_queries` runs a tick's queries the same way before the tick's per-workload steps.

One refit (in a worker) follows `LiveForecasterCache.refit` step for step: too little history ->
no model (reactive); trust judged from the earlier issued forecasts (else one rolling-origin
backtest); fit warm-started from the previous parameters when the model's `fit` takes `init`;
predict horizon + refit interval once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import numpy as np
import pandas as pd

from forecaster.backtest import model_params, observed_span
from forecaster.series import Forecast, Series
from policies.errors import EbbtideError
from policies.events import Event
from policies.schema import Policy, Workload
from policies.units import format_duration
from scaler.plans import TrustedForecast, forecast_window

log = logging.getLogger("ebbtide.fitting")

#: Default bound of Prometheus queries in flight at once (history reads, a tick's prefetch).
DEFAULT_QUERY_CONCURRENCY = 8
#: Executors the CLI offers (`ebbtide run --executor`).
EXECUTORS = ("local", "dask", "inline")

_EPOCH = pd.Timestamp(0, tz="UTC")

ModelFactory = Callable[[Workload, Sequence[Event]], Callable[[], Any]]
HistoryReader = Callable[[Workload], "tuple[Series | None, str | None]"]


# --------------------------------------------------------------------------- compact forecasts
@dataclass(frozen=True, eq=False)
class CompactForecast:
    """A Forecast on a regular UTC grid held as float32 arrays (~12 bytes per point).

    Point i is at `start_s + i * step_s` (epoch seconds, left-labelled like every Series).
    `yhat`, `yhat_lower`, `yhat_upper` have equal length. float32 keeps ~7 significant digits:
    viewers and requests per second are far coarser than that.
    """

    start_s: int
    step_s: int
    yhat: np.ndarray
    yhat_lower: np.ndarray
    yhat_upper: np.ndarray
    model: str
    upper_quantile: float = 0.9
    lower_quantile: float = 0.1
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, fc: Forecast) -> "CompactForecast":
        idx = fc.index
        step_s = int((idx[1] - idx[0]).total_seconds()) if len(idx) > 1 else 1
        start_s = int((idx[0] - _EPOCH).total_seconds()) if len(idx) else 0
        expected = start_s + step_s * np.arange(len(idx), dtype=np.int64)
        got = (idx.as_unit("s").asi8 if len(idx) else np.zeros(0, dtype=np.int64))
        if not np.array_equal(got, expected):
            raise ValueError(f"forecast ({fc.model}): not on a regular grid of whole seconds; cannot store compactly")

        def arr(name: str) -> np.ndarray:
            return np.ascontiguousarray(fc.frame[name].to_numpy(dtype=np.float32))

        return cls(start_s, step_s, arr("yhat"), arr("yhat_lower"), arr("yhat_upper"), fc.model,
                   fc.upper_quantile, fc.lower_quantile, tuple(fc.notes))

    def __len__(self) -> int:
        return int(self.yhat.size)

    @property
    def end_s(self) -> int:
        """Epoch seconds of the last point (its interval ends one step later)."""
        return self.start_s + (len(self) - 1) * self.step_s

    @property
    def nbytes(self) -> int:
        return int(self.yhat.nbytes + self.yhat_lower.nbytes + self.yhat_upper.nbytes)

    def index(self, lo: int = 0, hi: int | None = None) -> pd.DatetimeIndex:
        """Timestamps of points [lo, hi), built like Series.future_index (pd.date_range)."""
        hi = len(self) if hi is None else hi
        first = pd.Timestamp(self.start_s + lo * self.step_s, unit="s", tz="UTC")
        return pd.date_range(first, periods=max(0, hi - lo), freq=pd.Timedelta(seconds=self.step_s))

    def to_forecast(self, lo: int = 0, hi: int | None = None) -> Forecast:
        """Points [lo, hi) as a Forecast (float64 frame)."""
        hi = len(self) if hi is None else hi
        frame = pd.DataFrame({"yhat": self.yhat[lo:hi].astype(float),
                              "yhat_lower": self.yhat_lower[lo:hi].astype(float),
                              "yhat_upper": self.yhat_upper[lo:hi].astype(float)}, index=self.index(lo, hi))
        return Forecast(frame, self.model, self.upper_quantile, self.lower_quantile, self.notes)

    def slice_at(self, now: datetime, horizon: timedelta, data_until: datetime | None = None) -> Forecast | None:
        """The points of `scaler.plans.forecast_window` (the buckets not over yet at `data_until`,
        up to now + horizon); None when no point is left (refit overdue)."""
        after, before = forecast_window(now, horizon, timedelta(seconds=self.step_s), data_until)
        # First point after `after`, first point at or after `before`, on the grid start + i * step.
        lo = max(0, math.floor((pd.Timestamp(after).timestamp() - self.start_s) / self.step_s) + 1)
        hi = min(len(self), math.ceil((pd.Timestamp(before).timestamp() - self.start_s) / self.step_s))
        if lo >= hi:
            return None
        return self.to_forecast(lo, hi)

    def equals(self, other: "CompactForecast") -> bool:
        """Same grid, same values (bit for bit), same labels."""
        return (self.start_s, self.step_s, self.model, self.upper_quantile, self.lower_quantile, self.notes) == (
            other.start_s, other.step_s, other.model, other.upper_quantile, other.lower_quantile, other.notes) and all(
            np.array_equal(a, b) for a, b in ((self.yhat, other.yhat), (self.yhat_lower, other.yhat_lower),
                                              (self.yhat_upper, other.yhat_upper)))


# --------------------------------------------------------------------------- jobs and results
@dataclass(frozen=True)
class FitJob:
    """Everything one refit needs, picklable and small: the history as arrays (float64 values
    on the grid `start_s + i * step_s`), the workload and events, the warm start and the
    forecasts issued earlier (trust), `now`, and the model factory (a module-level function)."""

    workload: Workload
    events: tuple[Event, ...]
    key: str
    now: datetime
    history_start_s: int
    history_step_s: int
    history_values: np.ndarray
    history_name: str
    factory: ModelFactory
    init: dict | None = None
    issued: tuple[CompactForecast, ...] = ()

    @classmethod
    def build(cls, workload: Workload, events: Sequence[Event], key: str, history: Series, now: datetime,
              factory: ModelFactory, init: dict | None, issued: Sequence[CompactForecast]) -> "FitJob":
        return cls(workload, tuple(events), key, now, int((history.start - _EPOCH).total_seconds()),
                   int(history.step.total_seconds()), history.values.to_numpy(dtype=np.float64),
                   history.name, factory, init, tuple(issued))

    def history(self) -> Series:
        idx = pd.date_range(pd.Timestamp(self.history_start_s, unit="s", tz="UTC"), periods=self.history_values.size,
                            freq=pd.Timedelta(seconds=self.history_step_s))
        return Series(pd.Series(self.history_values, index=idx, name="value"),
                      timedelta(seconds=self.history_step_s), self.history_name)


@dataclass(frozen=True)
class FitResult:
    """What a refit produced. `ok` False: the fit failed (`message` says why; the previous
    params and issued forecasts are kept). `forecast` None with ok True: too little history
    (reactive sizing). `warm_started`: the fit was given the previous params as `init`."""

    workload: str
    key: str
    attempted_at: datetime
    ok: bool
    message: str
    trusted: bool = False
    reasons: tuple[str, ...] = ()
    forecast: CompactForecast | None = None
    params: dict | None = None
    issued: tuple[CompactForecast, ...] = ()
    fit_s: float = 0.0
    warm_started: bool = False
    worker: str = ""
    level_trusted: bool = True  # TrustedForecast.level_trusted


def quiet_worker() -> None:
    """Silence cmdstanpy and prophet in a worker process, as forecaster/model.py does in its own
    (spawned workers start with fresh logging). Idempotent; cheap when already done."""
    logging.getLogger("prophet.plot").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    try:
        import cmdstanpy
    except ImportError:  # a fake model without Prophet installed: nothing to silence
        return
    cmdstanpy.disable_logging()


def run_fit_job(job: FitJob) -> FitResult:
    """One refit, anywhere (this process, a pool worker, a Dask worker). Never raises for a model
    failure (EbbtideError, ValueError, RuntimeError, ArithmeticError, KeyError): that becomes
    `ok` False. Mirrors LiveForecasterCache.refit."""
    from scaler.controller import TRUST_WINDOW, LiveForecasterCache, finite_forecast

    quiet_worker()
    w, fs, now = job.workload, job.workload.forecast, job.now
    worker = f"pid {os.getpid()}"
    history = job.history()
    prev_issued = tuple(job.issued)
    span = observed_span(history)
    if span < fs.min_history:
        why = (f"only {format_duration(span)} of history, need {format_duration(fs.min_history)}; "
               "sizing reactively")
        return FitResult(w.name, job.key, now, True, why, False, (why,), worker=worker)
    make_model = job.factory(w, job.events)
    step = pd.Timedelta(history.step)
    window = min(fs.horizon, TRUST_WINDOW)
    warm = False
    t0 = time.perf_counter()
    try:
        verdict, model, warm = LiveForecasterCache.judge_and_fit(
            history, make_model, [c.to_forecast() for c in prev_issued], window, span, fs, w.demand.per_replica,
            job.init)
        index = history.future_index(fs.horizon + fs.refit_interval, start=history.end + step, partial=True)
        fc = CompactForecast.of(finite_forecast(model.predict(index)))
    except (EbbtideError, ValueError, RuntimeError, ArithmeticError, KeyError) as exc:
        why = f"forecast failed: {exc}; sizing reactively"
        return FitResult(w.name, job.key, now, False, why, False, (why,), None, job.init, prev_issued,
                         time.perf_counter() - t0, warm, worker)
    fit_s = time.perf_counter() - t0
    params = model_params(model)
    cutoff_s = (pd.Timestamp(now) - pd.Timedelta(window) - pd.Timedelta(fs.horizon + fs.refit_interval)
                - _EPOCH).total_seconds()
    issued = tuple(c for c in prev_issued if c.end_s >= cutoff_s) + (fc,)
    judged = TrustedForecast.judged(None, verdict)  # the flags and reasons the cache rebuilds it from
    return FitResult(w.name, job.key, now, True, "; ".join(judged.reasons), judged.trusted, judged.reasons, fc,
                     params, issued[-8:], fit_s, warm, worker, judged.level_trusted)


def _failed_result(job: FitJob, exc: BaseException) -> FitResult:
    """A job whose worker crashed or raised something unexpected: a failed fit, reported."""
    why = f"forecast failed: the fit worker failed ({type(exc).__name__}: {exc}); sizing reactively"
    return FitResult(job.workload.name, job.key, job.now, False, why, False, (why,), None, job.init, job.issued)


# --------------------------------------------------------------------------- executors
class FitExecutor(Protocol):
    """Runs FitJobs somewhere. `run(jobs, max_in_flight)` yields one FitResult per job, in
    completion order, pulling from `jobs` only while fewer than `max_in_flight` are pending
    (so a lazy `jobs` iterator bounds memory). A job that crashes its worker yields a failed
    result; `run` itself raises only when the executor cannot start (EbbtideError)."""

    name: str
    workers: int

    def run(self, jobs: Iterable[FitJob], max_in_flight: int | None = None) -> Iterator[FitResult]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Fits in this process, one at a time: the sequential baseline, and tests."""

    name = "inline"
    workers = 1

    def run(self, jobs: Iterable[FitJob], max_in_flight: int | None = None) -> Iterator[FitResult]:
        for job in jobs:
            try:
                yield run_fit_job(job)
            except Exception as exc:  # noqa: BLE001 (a bug in one model must not stop the others)
                yield _failed_result(job, exc)

    def close(self) -> None:
        pass


def _bounded(jobs: Iterable[FitJob], submit: Callable[[FitJob], Any], wait_some: Callable[[set], tuple[set, set]],
             outcome: Callable[[Any, FitJob], FitResult], max_in_flight: int) -> Iterator[FitResult]:
    """Submit jobs while fewer than `max_in_flight` are pending; yield results as they finish."""
    pending: dict[Any, FitJob] = {}
    it = iter(jobs)
    exhausted = False
    while True:
        while not exhausted and len(pending) < max_in_flight:
            job = next(it, None)
            if job is None:
                exhausted = True
                break
            pending[submit(job)] = job
        if not pending:
            return
        done, _ = wait_some(set(pending))
        for fut in done:
            job = pending.pop(fut)
            yield outcome(fut, job)


POOL_RESTARTS = 3
"""New process pools one ProcessExecutor.run may start after workers died."""


class ProcessExecutor:
    """Fits on `workers` local processes (spawn start: no forked locks, workers import Prophet
    once and silence it in `quiet_worker`). The pool starts on first use and is kept; a pool
    broken by a dead worker is replaced at once: the jobs in flight with it fail, the rest run
    on the new one (at most POOL_RESTARTS new pools a run)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        self._pool: Any = None
        self._lock = threading.Lock()

    def _get_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=quiet_worker)
            return self._pool

    def run(self, jobs: Iterable[FitJob], max_in_flight: int | None = None) -> Iterator[FitResult]:
        from concurrent.futures.process import BrokenProcessPool

        restarts = 0

        def outcome(fut: Future, job: FitJob) -> FitResult:
            try:
                return fut.result()
            except Exception as exc:  # noqa: BLE001 (one job's surprise must not stop the batch)
                return _failed_result(job, exc)  # a dead worker: the jobs it took down with it

        def submit(job: FitJob) -> Any:
            # A worker that died (killed for memory) breaks the whole pool: the jobs in flight
            # fail with it, the rest go to a new pool (every pending one failed with it before,
            # 40 of 40), at most POOL_RESTARTS times a run (a job that kills every pool).
            nonlocal restarts
            while True:
                pool = self._get_pool()
                try:
                    return pool.submit(run_fit_job, job)
                except BrokenProcessPool as exc:
                    if restarts >= POOL_RESTARTS:  # the broken pool stays: the next run replaces it
                        failed: Future = Future()
                        failed.set_exception(exc)
                        return failed
                    with self._lock:
                        if self._pool is pool:
                            self._pool = None
                    pool.shutdown(wait=False, cancel_futures=True)
                    restarts += 1
                    log.warning("fit worker pool broken (a worker died): starting a new one (%d of %d this refit)",
                                restarts, POOL_RESTARTS)

        yield from _bounded(jobs, submit, lambda s: wait(s, return_when=FIRST_COMPLETED), outcome,
                            max_in_flight or 2 * self.workers)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Fits on a Dask cluster (dask.distributed): `address` of a running scheduler
    (tcp://host:8786), or None for a LocalCluster of `workers` single-threaded worker processes
    on this machine (`processes=False`: threads in this process, for tests). Connects on first
    use; an unreachable scheduler raises EbbtideError naming the address."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, *, processes: bool = True,
                 connect_timeout_s: float = 30.0):
        self.address = address
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        self.processes = processes
        self.connect_timeout_s = connect_timeout_s
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()

    def _get_client(self):
        with self._lock:
            if self._client is not None:
                if getattr(self._client, "status", "running") not in ("closed", "closing"):
                    return self._client
                # a scheduler restart closes the client for good: every later refit failed on it
                log.warning("Dask client %s (scheduler %s): connecting again", self._client.status,
                            self.address or "local")
                self._client = None
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise EbbtideError("--executor dask needs dask.distributed: pip install 'dask[distributed]'") from None
            if self.address:
                try:
                    self._client = Client(self.address, timeout=self.connect_timeout_s, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise EbbtideError(f"Dask scheduler {self.address}: cannot connect ({exc})") from None
            else:
                if self._cluster is None:
                    self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                 processes=self.processes, dashboard_address=None)
                self._client = Client(self._cluster, set_as_default=False)
            n = len(self._client.scheduler_info().get("workers", {}))
            if n:
                self.workers = n
            return self._client

    def run(self, jobs: Iterable[FitJob], max_in_flight: int | None = None) -> Iterator[FitResult]:
        client = self._get_client()  # first: without dask.distributed, its message, not an ImportError
        from distributed import as_completed

        limit = max(1, max_in_flight or 2 * self.workers)
        pending: dict[str, FitJob] = {}
        done = as_completed(loop=client.loop, raise_errors=False)
        it = iter(jobs)

        def submit_next() -> bool:
            job = next(it, None)
            if job is None:
                return False
            # pure=False: equal jobs at different times must each run (and no result is cached).
            fut = client.submit(run_fit_job, job, pure=False)
            pending[fut.key] = job
            done.add(fut)
            return True

        while len(pending) < limit and submit_next():
            pass
        for fut in done:
            job = pending.pop(fut.key)
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 (a lost worker or a surprise in one job)
                result = _failed_result(job, exc)
            finally:
                fut.release()
            while len(pending) < limit and submit_next():
                pass
            yield result

    def close(self) -> None:
        with self._lock:
            client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def make_executor(kind: str, *, workers: int | None = None, scheduler: str | None = None) -> FitExecutor:
    """`kind` is one of EXECUTORS: "local" (processes, the default), "dask" (`scheduler`
    address, or a LocalCluster of `workers`), "inline" (this process, sequential)."""
    if scheduler and kind != "dask":
        raise EbbtideError(f"--scheduler is for --executor dask, not {kind}")
    if kind == "local":
        return ProcessExecutor(workers)
    if kind == "dask":
        return DaskExecutor(scheduler, workers)
    if kind == "inline":
        return InlineExecutor()
    raise EbbtideError(f"--executor: unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")


# --------------------------------------------------------------------------- the stagger
def refit_phase(name: str, interval: timedelta) -> timedelta:
    """Where in each refit interval workload `name` refits: a stable hash of the name (SHA-256,
    the same in every process and release), in whole seconds, uniform over [0, interval)."""
    interval_s = max(1, int(interval.total_seconds()))
    h = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")
    return timedelta(seconds=h % interval_s)


def refit_slot(name: str, interval: timedelta, t: datetime) -> int:
    """Index of the refit interval holding `t` for workload `name`: slot k spans
    [epoch + phase + k * interval, epoch + phase + (k + 1) * interval)."""
    interval_s = max(1, int(interval.total_seconds()))
    phase_s = int(refit_phase(name, interval).total_seconds())
    return math.floor((t.timestamp() - phase_s) / interval_s)


def next_scheduled_refit(name: str, interval: timedelta, after: datetime) -> datetime:
    """First staggered refit time strictly after `after` (UTC)."""
    interval_s = max(1, int(interval.total_seconds()))
    phase_s = int(refit_phase(name, interval).total_seconds())
    k = refit_slot(name, interval, after) + 1
    return datetime.fromtimestamp(phase_s + k * interval_s, tz=timezone.utc)


# --------------------------------------------------------------------------- the cache
@dataclass(frozen=True)
class _Entry:
    """One workload's cache entry (immutable: replaced whole, readers need no lock)."""

    key: str
    attempted_at: datetime
    ok: bool
    verdict: TrustedForecast                 # forecast None: the verdict's reasons say why
    forecast: CompactForecast | None = None  # horizon + refit interval, from the refit
    params: dict | None = None               # warm start for the next fit
    issued: tuple[CompactForecast, ...] = field(default=())

    @property
    def nbytes(self) -> int:
        n = self.forecast.nbytes if self.forecast is not None else 0
        return n + sum(c.nbytes for c in self.issued if c is not self.forecast)


def _settings_key(workload: Workload, events: Sequence[Event]) -> str:
    from scaler.controller import _settings_key as key

    return key(workload, events)


class ParallelForecasterCache:
    """ForecasterCache with compact entries, staggered refits and a parallel fitting engine.

    `executor`: where fits run (ProcessExecutor by default). `model_factory`: a module-level
    function (it is pickled to the workers), default scaler.controller.default_model_factory.
    `query_concurrency`: history reads in flight at once. `max_in_flight`: fit jobs pending at
    once (default twice the executor's workers). Thread-safe: entries are replaced whole.
    """

    def __init__(self, executor: FitExecutor | None = None, model_factory: ModelFactory | None = None, *,
                 query_concurrency: int = DEFAULT_QUERY_CONCURRENCY, max_in_flight: int | None = None):
        if model_factory is None:
            from scaler.controller import default_model_factory as model_factory
        self.executor = executor if executor is not None else ProcessExecutor()
        self.factory = model_factory
        self.query_concurrency = max(1, query_concurrency)
        self.max_in_flight = max_in_flight
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ ForecasterCache
    def due(self, workload: Workload, events: Sequence[Event], now: datetime) -> bool:
        """No entry, settings/events changed, a failed fit min(FIT_RETRY, interval) old, or the
        workload's staggered slot moved on since the last attempt."""
        from scaler.controller import FIT_RETRY

        e = self._entries.get(workload.name)
        if e is None or e.key != _settings_key(workload, events):
            return True
        interval = workload.forecast.refit_interval
        if not e.ok:
            return now - e.attempted_at >= min(FIT_RETRY, interval)
        return refit_slot(workload.name, interval, now) > refit_slot(workload.name, interval, e.attempted_at)

    def refit(self, workload: Workload, events: Sequence[Event], history: Series, now: datetime):
        """Refit one workload (on the executor) and store the result."""
        return self.refit_many([(workload, events, history)], now)[0]

    def forecast(self, workload: Workload, now: datetime, data_until: datetime | None = None,
                 events: Sequence[Event] | None = None) -> TrustedForecast:
        from scaler.controller import fitted_for_other_settings

        e = self._entries.get(workload.name)
        if e is None:
            return TrustedForecast.not_fitted()
        if (changed := fitted_for_other_settings(e.key, workload, events)) is not None:
            return changed
        if e.forecast is None:
            return e.verdict
        return e.verdict.sliced(e.forecast.slice_at(now, workload.forecast.horizon, data_until), e.attempted_at)

    def forget_except(self, names: set[str]) -> None:
        with self._lock:
            for name in set(self._entries) - names:
                del self._entries[name]

    # ------------------------------------------------------------------ batches
    def refit_many(self, items: Iterable[tuple[Workload, Sequence[Event], Series]], now: datetime) -> list:
        """Refit every (workload, events, history) on the executor; results stored as they come.
        Returns RefitOutcomes in completion order."""
        return [self._store(r) for r in self.executor.run(
            (self._job(w, evs, h, now) for w, evs, h in items), self.max_in_flight)]

    def refit_due_batch(self, policy: Policy, now: datetime, read_history: HistoryReader,
                        metrics: Any = None, *, should_stop: Callable[[], bool] | None = None) -> list:
        """The loop's refit job at scale: every due workload's history is read (at most
        `query_concurrency` reads in flight) and fitted on the executor (at most
        `max_in_flight` fits pending); a workload whose history cannot be read is skipped and
        logged (the next refit job tries again). Returns RefitOutcomes in completion order.
        `should_stop` true (the controller is stopping): no further fit is submitted; those
        pending end."""
        due = [w for w in policy.workloads if self.due(w, policy.events, now)]
        if not due:
            return []
        out = []

        def jobs() -> Iterator[FitJob]:
            for w, (history, problem) in bounded_map(read_history, due, self.query_concurrency):
                if should_stop is not None and should_stop():
                    log.info("stopping: refits not submitted from %s on", w.name)
                    return
                if history is None:
                    log.warning("refit of %s skipped: %s", w.name, problem)
                    continue
                yield self._job(w, policy.events, history, now)

        t0 = time.perf_counter()
        for result in self.executor.run(jobs(), self.max_in_flight):
            outcome = self._store(result)
            if outcome.ok:
                log.info("refit %s in %.1fs: %s", outcome.workload, outcome.fit_s, outcome.message)
            else:
                log.warning("refit %s failed: %s", outcome.workload, outcome.message)
                if metrics is not None:
                    metrics.error("forecast")
            out.append(outcome)
        log.info("refitted %d of %d due workloads in %.1fs on %s (%d workers)", len(out), len(due),
                 time.perf_counter() - t0, self.executor.name, self.executor.workers)
        return out

    # ------------------------------------------------------------------ inspection
    def entry(self, name: str) -> _Entry | None:
        return self._entries.get(name)

    def nbytes(self) -> int:
        """Bytes of forecast arrays held (all workloads; params and notes not counted)."""
        return sum(e.nbytes for e in list(self._entries.values()))

    def close(self) -> None:
        self.executor.close()

    # ------------------------------------------------------------------ internals
    def _job(self, w: Workload, events: Sequence[Event], history: Series, now: datetime) -> FitJob:
        key = _settings_key(w, events)
        prev = self._entries.get(w.name)
        prev = prev if prev is not None and prev.key == key else None
        return FitJob.build(w, events, key, history, now, self.factory, prev.params if prev else None,
                            prev.issued if prev else ())

    def _store(self, r: FitResult):
        from scaler.controller import RefitOutcome

        if not r.ok:
            # Keep the previous warm start and track record; the forecast goes (reactive).
            entry = _Entry(r.key, r.attempted_at, False, TrustedForecast(None, False, r.reasons), None,
                           r.params, r.issued)
        else:
            verdict = TrustedForecast(None, r.trusted, r.reasons, r.level_trusted)
            entry = _Entry(r.key, r.attempted_at, True, verdict, r.forecast, r.params, r.issued)
        with self._lock:
            self._entries[r.workload] = entry
        return RefitOutcome(r.workload, r.ok, r.message, r.fit_s, r.trusted)


# --------------------------------------------------------------------------- bounded queries
def bounded_map(fn: Callable[[Any], Any], items: Sequence[Any], max_in_flight: int) -> Iterator[tuple[Any, Any]]:
    """Yield (item, fn(item)) in the order of `items`, with at most `max_in_flight` calls running
    at once on a thread pool, and at most that many results held ahead of the consumer."""
    max_in_flight = max(1, max_in_flight)
    if max_in_flight == 1:
        for item in items:
            yield item, fn(item)
        return
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="ebbtide-query") as pool:
        window: deque[tuple[Any, Future]] = deque()
        it = iter(items)
        for item in it:
            window.append((item, pool.submit(fn, item)))
            if len(window) >= max_in_flight:
                break
        while window:
            item, fut = window.popleft()
            result = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                window.append((nxt, pool.submit(fn, nxt)))
            yield item, result


def tick_queries(policy: Policy, now: datetime) -> list[tuple]:
    """The queries one tick makes, deduplicated: per workload the demand history
    (range, the window of scaler.controller.demand_history_range), demand now and each quality SLI
    (instant); with a bitrate policy, tier viewers and weak-network loss (instant). Each item is
    ("range", query, start, end, step) or ("instant", query, at)."""
    from scaler.controller import demand_history_range

    keys: dict[tuple, None] = {}
    for w in policy.workloads:
        start, end = demand_history_range(w, now)
        keys[("range", w.demand.query, start, end, w.forecast.step)] = None
        keys[("instant", w.demand.query, now)] = None
        for q in w.quality:
            keys[("instant", q.query, now)] = None
    if policy.bitrate is not None:
        for tier in policy.bitrate.tiers:
            if tier.viewers_query:
                keys[("instant", tier.viewers_query, now)] = None
        wn = policy.bitrate.weak_network
        if wn is not None and wn.loss_query:
            keys[("instant", wn.loss_query, now)] = None
    return list(keys)


def prefetch_tick_queries(queries: Any, policy: Policy, now: datetime, max_in_flight: int) -> int:
    """Run a tick's queries (`tick_queries`) through `queries` (the tick's memoising query object:
    `range(query, start, end, step)` and `instant(query, at)`, each returning (value, problem)),
    at most `max_in_flight` at once, so the per-workload steps then read the memo. Failures are
    recorded by `queries` as usual (counted once; a dead server stops the rest). Returns the
    number of queries run."""
    keys = tick_queries(policy, now)

    def run(key: tuple) -> None:
        if key[0] == "range":
            queries.range(*key[1:])
        else:
            queries.instant(*key[1:])

    for _ in bounded_map(run, keys, max_in_flight):
        pass
    return len(keys)


# --------------------------------------------------------------------------- CLI wiring
def forecaster_cache(executor: str = "local", *, scheduler: str | None = None, fit_workers: int | None = None,
                     query_concurrency: int = DEFAULT_QUERY_CONCURRENCY) -> ParallelForecasterCache:
    """The cache `ebbtide run` uses, from its flags `--executor {local,dask,inline}`,
    `--scheduler ADDRESS` (dask only), `--fit-workers N`, `--query-concurrency N`
    (docs/scale.md). Raises EbbtideError naming the flag on a bad value."""
    if fit_workers is not None and fit_workers < 1:
        raise EbbtideError(f"--fit-workers: must be >= 1, got {fit_workers}")
    if query_concurrency < 1:
        raise EbbtideError(f"--query-concurrency: must be >= 1, got {query_concurrency}")
    return ParallelForecasterCache(make_executor(executor, workers=fit_workers, scheduler=scheduler),
                                   query_concurrency=query_concurrency)
