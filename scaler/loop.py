"""The running controller: schedules, policy hot reload, leader election, clean shutdown.

Jobs (APScheduler 3.x BackgroundScheduler, two worker threads and one more for `leader` alone,
every job max_instances=1 and coalesce=True: a late or overrunning job never piles up, it runs
once when it can):

- `tick`   every `schedule.tick` of the policy: Controller.tick (no fit inside: fits are slow).
- `refit`  every `schedule.tick` too, but it only fits the workloads whose model is due
           (each workload's own `forecast.refit_interval`), so ticks keep their pace while a
           Prophet fit runs. Until a workload's first fit ends its plans are reactive (said so).
- `reload` every `reload_interval` (5 s): re-reads the policy file when its mtime, size,
           inode or ctime changed; a file that does not validate keeps the last good policy, logs every problem
           and counts ebbtide_policy_reload_errors_total. A new tick length reschedules `tick`.
- `leader` every `renew_interval` (5 s) with leader election on: acquire or renew the Lease,
           on its own thread, so a long refit and a long tick cannot hold it past the Lease's
           duration. The tick asks once more right before it runs; a follower plans and serves
           metrics but its apply runs with dry_run=True.

SIGTERM/SIGINT set a stop event. `stop()` then takes `tick`, `refit` and `reload` off the
schedule and tells the controller to stop: the running tick ends after the workload it is on
(its apply completes; the later workloads wait for the next leader's tick) and the running refit
after the fit it is on. The `leader` job goes on renewing the Lease meanwhile, so no other
replica leads while this one may still write; after that the scheduler shuts down, the Lease is
released when the elector offers `release()`, and `run()` returns 0. Each workload of a tick
asks the loop's view of the Lease first: a renewal that fails mid-tick makes the rest of that
tick dry-run ("the leader stops writing at its first failed renewal").
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.jobstores.base import JobLookupError

from policies.errors import EbbtideError, InputFileError
from policies.loading import LoadedPolicy, read_policy
from policies.schema import Policy, PrometheusSettings
from scaler.controller import Controller, TickReport
from scaler.metrics import ControllerMetrics, Health

log = logging.getLogger("ebbtide.loop")

#: How often the policy file is checked for changes, seconds.
RELOAD_INTERVAL_S = 5.0
#: How often the Lease is acquired or renewed, seconds (well under a usual 15 s lease).
RENEW_INTERVAL_S = 5.0
#: How long stop() waits for the running tick and refit to reach a stopping point, seconds,
#: before it shuts the scheduler down anyway (within Kubernetes' 30 s default grace period).
STOP_WAIT_S = 20.0
#: A wall clock that falls behind the monotonic clock by more than this (seconds) between two
#: looks has been stepped back: every job is set to run now (APScheduler 3.x sleeps until wall
#: times, so it would otherwise wait out the step: no tick, no Lease renewal).
CLOCK_STEP_S = 2.0


class LeaderElector(Protocol):
    """scaler.kube.LeaderElector's contract: True while this replica holds the Lease."""

    def try_acquire_or_renew(self, now: datetime) -> bool: ...


class AlwaysLeader:
    """Leader election off: this replica is the only writer."""

    def try_acquire_or_renew(self, now: datetime) -> bool:
        return True


# --------------------------------------------------------------------------- policy store
class PolicyStore:
    """The policy in force, reloaded from its file when the file changes.

    The first load raises (InputFileError: nothing to fall back on). Later reloads never raise:
    a bad file keeps the last good policy; the problems go to the log and `last_error`, and
    ebbtide_policy_reload_errors_total counts the refusal (once per change of the file, not per
    poll). A file whose validated content is unchanged (digest equal: comments, key order)
    does not count as a change.
    """

    def __init__(self, path: str | Path, metrics: ControllerMetrics | None = None):
        self.path = Path(path)
        self.metrics = metrics
        self._lock = threading.Lock()
        self._stat = self._stat_key()
        self._loaded = read_policy(self.path)
        self.last_error: str | None = None
        self.reloads = 0
        for w in self._loaded.warnings:
            log.warning("policy: %s", w)

    @property
    def loaded(self) -> LoadedPolicy:
        return self._loaded

    def current(self) -> Policy:
        return self._loaded.policy

    def _stat_key(self) -> tuple[int, ...] | None:
        # The inode and ctime too: a file replaced by one of the same size with its mtime kept
        # (cp -p, rsync -t, tar) has a new inode (rename) or ctime (written in place); a
        # ConfigMap volume swaps a symlink, which stat() follows to the new file.
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns

    def poll(self) -> bool:
        """Reload if the file changed; True when a different valid policy is now in force."""
        key = self._stat_key()
        if key == self._stat:
            return False
        self._stat = key
        try:
            loaded = read_policy(self.path)
        except InputFileError as exc:
            return self._refuse("\n".join(exc.problems))
        except (EbbtideError, OSError) as exc:
            return self._refuse(f"{self.path}: {exc}")
        self.last_error = None
        if loaded.digest == self._loaded.digest:
            return False
        with self._lock:
            self._loaded = loaded
            self.reloads += 1
        log.info("policy %s reloaded (digest %s)", self.path, loaded.digest[:12])
        for w in loaded.warnings:
            log.warning("policy: %s", w)
        return True

    def _refuse(self, why: str) -> bool:
        self.last_error = why
        if self.metrics is not None:
            self.metrics.policy_reload_error()
        log.error("policy reload refused, keeping the last good policy (digest %s):\n%s",
                  self._loaded.digest[:12], why)
        return False


# --------------------------------------------------------------------------- Prometheus source
def prometheus_source(settings: PrometheusSettings, url: str | None = None):
    """A PrometheusSource from the policy's `prometheus` settings; `url` overrides settings.url.

    Token and password files are read when the source is built (at start-up and on every policy
    reload) and again by the source whenever they change on disk (a rotated service-account token).
    Raises EbbtideError naming the field and the file when one cannot be read or used.
    """
    from forecaster.history import PrometheusSource, SecretFile
    from policies.tls import ca_bundle_problem

    if settings.ca_file and (problem := ca_bundle_problem(settings.ca_file)) is not None:
        raise EbbtideError(f"prometheus.ca_file: {settings.ca_file}: {problem}")
    token = None
    if settings.bearer_token_file:
        token = SecretFile(settings.bearer_token_file, "prometheus.bearer_token_file")
    basic = None
    if settings.basic_auth is not None:
        basic = (settings.basic_auth.username,
                 SecretFile(settings.basic_auth.password_file, "prometheus.basic_auth.password_file"))
    return PrometheusSource(
        url or settings.url,
        timeout_s=settings.timeout.total_seconds(),
        bearer_token=token,
        basic_auth=basic,
        ca_bundle=settings.ca_file,
        insecure_skip_verify=settings.insecure_skip_verify,
    )


def resolve_prometheus_url(policy: Policy, flag: str | None, env: dict[str, str] | None = None) -> str:
    """`--prometheus-url`, else $EBBTIDE_PROMETHEUS_URL, else the policy's prometheus.url."""
    env = os.environ if env is None else env
    return flag or env.get("EBBTIDE_PROMETHEUS_URL") or policy.prometheus.url


def stop_on_signals(stop: threading.Event, after: str, level: int) -> dict[int, Any] | None:
    """Make SIGTERM and SIGINT set `stop` (logged at `level`: "stopping after `after`") instead
    of killing the process; the handlers they had before, or None outside the main thread (where
    Python cannot install handlers: nothing is done)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):  # noqa: ARG001
        log.log(level, "received %s: stopping after %s", signal.Signals(signum).name, after)
        stop.set()

    return {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}


@contextlib.contextmanager
def stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set `stop` (a controller's `stopping`: the tick under way
    ends after the workload it is on) instead of killing the process mid-apply; the previous
    handlers come back on exit. In the main thread only; elsewhere it does nothing."""
    previous = stop_on_signals(stop, "the workload under way", logging.WARNING)
    try:
        yield
    finally:
        for s, h in (previous or {}).items():
            signal.signal(s, h)


# --------------------------------------------------------------------------- the loop
class ControllerLoop:
    """Wires the store, the controller, the elector, metrics and health into scheduled jobs.

    `dry_run` (the --dry-run flag) is or-ed with the policy's `dry_run`. `on_policy_change(policy)`
    runs after a successful reload (the CLI rebuilds the Prometheus source there).
    """

    def __init__(
        self,
        store: PolicyStore,
        controller: Controller,
        *,
        metrics: ControllerMetrics,
        health: Health,
        elector: LeaderElector | None = None,
        dry_run: bool = False,
        reload_interval_s: float = RELOAD_INTERVAL_S,
        renew_interval_s: float = RENEW_INTERVAL_S,
        on_policy_change: Callable[[Policy], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ):
        self.store = store
        self.controller = controller
        self.metrics = metrics
        self.health = health
        self.elector = elector or AlwaysLeader()
        self.dry_run = dry_run
        self.reload_interval_s = reload_interval_s
        self.renew_interval_s = renew_interval_s
        self.on_policy_change = on_policy_change
        self._now = now or controller.clock.now
        self.is_leader = False
        self.stop_event = threading.Event()
        self.last_report: TickReport | None = None
        self._scheduler: Any = None
        # Guards changes to the scheduler made from its own jobs (reschedule on reload) against
        # stop(): APScheduler's shutdown(wait=True) holds its job-store lock while it waits for
        # running jobs, so a job calling reschedule_job then would deadlock.
        self._sched_lock = threading.Lock()
        # One elector call at a time: the tick asks too, and two renewals racing on the same
        # resourceVersion would make one of them a 409, i.e. a follower for that tick.
        self._leader_lock = threading.Lock()
        self._lease_error: str | None = None  # the last Lease error logged (said once, not every beat)
        self._stopping = False
        self._busy = 0  # tick and refit jobs running now (stop() waits for them, the Lease renewed)
        self._idle = threading.Condition()
        controller.still_leader = lambda: self.is_leader
        controller.on_progress = health.progress  # each workload done moves /healthz's clock
        self._wall: Callable[[], float] = time.time  # the clocks check_clock compares (tests step them)
        self._mono: Callable[[], float] = time.monotonic
        self._wall_offset: float | None = None
        self._tick_s = store.current().schedule.tick.total_seconds()
        health.policy_loaded = True
        health.wedged_after_s = self._wedged_after(self._tick_s)

    @staticmethod
    def _wedged_after(tick_s: float) -> float:
        # Three missed ticks plus time for one slow Prometheus answer and API retries.
        return 3 * tick_s + 120.0

    # ------------------------------------------------------------------ jobs
    def leader_job(self) -> bool:
        """Acquire or renew the Lease; any failure makes this replica a follower (no writes)."""
        with self._leader_lock:
            try:
                leader = bool(self.elector.try_acquire_or_renew(self._now()))
            except Exception as exc:  # noqa: BLE001 (any failure of the elector must mean "not leader")
                log.warning("leader election failed, acting as follower: %s", exc)
                self.metrics.error("leader")
                leader = False
            error = None if leader else getattr(self.elector, "last_error", None)
            if error and error != self._lease_error:  # a refused Lease (RBAC) said once, not every beat
                log.warning("leader election: %s; acting as follower (planning only, no writes)", error)
                self.metrics.error("leader")
            self._lease_error = error
            if leader != self.is_leader:
                log.info("leadership %s", "acquired: this replica writes" if leader else
                         "not held: planning only (dry-run)")
            self.is_leader = leader
            self.metrics.leader.set(1 if leader else 0)
            return leader

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def tick_job(self) -> TickReport | None:
        """One tick; never raises (a failing tick is logged and counted, the next one runs)."""
        with self._running():
            return self._tick()

    def _tick(self) -> TickReport | None:
        self.health.progress()
        try:
            leader = self.leader_job()
            policy = self.store.current()
            report = self.controller.tick(policy, dry_run=self.dry_run or policy.dry_run, leader=leader)
        except EbbtideError as exc:  # an input or dependency problem: say it, no traceback
            log.error("tick failed: %s", exc)
            self.metrics.error("tick")
            self.health.progress()
            return None
        except Exception:  # noqa: BLE001 (the loop must survive a bug in one tick; it is logged)
            log.exception("tick failed")
            self.metrics.error("tick")
            self.health.progress()
            return None
        self.last_report = report
        self.health.tick_done()
        return report

    def refit_job(self) -> None:
        with self._running():
            self._refit()

    def _refit(self) -> None:
        try:
            self.controller.refit_due(self.store.current())
        except EbbtideError as exc:  # e.g. an unreachable Dask scheduler: a message, not a traceback
            log.error("refit failed: %s", exc)
            self.metrics.error("forecast")
        except Exception:  # noqa: BLE001 (a failing refit must not stop the schedule)
            log.exception("refit failed")
            self.metrics.error("forecast")

    def reload_job(self) -> bool:
        if not self.store.poll():
            return False
        policy = self.store.current()
        if self.on_policy_change is not None:
            try:
                self.on_policy_change(policy)
            except EbbtideError as exc:
                log.error("policy change not fully applied: %s", exc)
                self.metrics.policy_reload_error()
        tick_s = policy.schedule.tick.total_seconds()
        if tick_s != self._tick_s:
            self._tick_s = tick_s
            self.health.wedged_after_s = self._wedged_after(tick_s)
            with self._sched_lock:
                if self._scheduler is not None and not self._stopping:
                    for job_id in ("tick", "refit"):
                        self._scheduler.reschedule_job(job_id, trigger="interval", seconds=tick_s)
            log.info("tick interval now %ss", tick_s)
        return True

    # ------------------------------------------------------------------ running
    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop cleanly (main thread only; elsewhere a no-op)."""
        stop_on_signals(self.stop_event, "the running jobs", logging.INFO)

    def start(self) -> None:
        """Start the scheduler (background threads); the first tick and refit run at once."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        # The Lease has a thread of its own: in the shared pool a cold refit (minutes) and a tick
        # (seconds with many workloads or a slow Prometheus) held both threads, the renewal
        # waited behind them, and the Lease could lapse while this replica's tick still wrote.
        sched = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2), "lease": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone=timezone.utc,
        )
        first = datetime.now(timezone.utc)
        sched.add_job(self.refit_job, "interval", seconds=self._tick_s, id="refit", next_run_time=first)
        sched.add_job(self.tick_job, "interval", seconds=self._tick_s, id="tick", next_run_time=first)
        sched.add_job(self.reload_job, "interval", seconds=self.reload_interval_s, id="reload")
        if not isinstance(self.elector, AlwaysLeader):
            sched.add_job(self.leader_job, "interval", seconds=self.renew_interval_s, id="leader", executor="lease")
        sched.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        with self._sched_lock:
            self._scheduler, self._stopping = sched, False
        self.metrics.up.set(1)
        sched.start()

    def _skipped(self, event: Any) -> None:
        """APScheduler did not start a due job because the last run still ran (max_instances=1)."""
        if event.job_id == "tick":
            self.metrics.ticks_skipped.inc()

    def check_clock(self) -> bool:
        """Called every second by run(): when the wall clock was stepped back (NTP correcting a
        clock that ran fast, a VM restored from a snapshot, a hand-set date), set every job to
        run now, so ticks and Lease renewals go on at their pace from the new wall time. True
        when it did. A step forward needs nothing: the jobs are late and run at once."""
        offset = self._wall() - self._mono()
        last, self._wall_offset = self._wall_offset, offset
        if last is None or offset >= last - CLOCK_STEP_S:
            return False
        log.warning("the wall clock was stepped back %.0fs: every job rescheduled to run now", last - offset)
        with self._sched_lock:
            if self._scheduler is None or self._stopping:
                return False
            now = datetime.now(timezone.utc)
            for job in self._scheduler.get_jobs():
                job.modify(next_run_time=now)
        return True

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Stop: no new tick, refit or reload; the running ones end at their next workload or
        fit while the Lease is still renewed (up to `wait_s`); then the scheduler shuts down
        (waiting for what still runs) and the Lease is released if held."""
        with self._sched_lock:  # after this, no job touches the scheduler any more
            self._stopping = True
            sched, self._scheduler = self._scheduler, None
        self.controller.stopping.set()
        if sched is not None:
            for job_id in ("tick", "refit", "reload"):
                with contextlib.suppress(JobLookupError):
                    sched.remove_job(job_id)
            with self._idle:
                if not self._idle.wait_for(lambda: self._busy == 0, timeout=wait_s):
                    log.warning("stopping: the running tick or refit has not ended after %.0fs; the Lease is no "
                                "longer renewed", wait_s)
            sched.shutdown(wait=True)
        release = getattr(self.elector, "release", None)
        if self.is_leader and callable(release):
            try:
                release(self._now())
            except Exception as exc:  # noqa: BLE001 (shutting down: report, do not fail)
                log.warning("could not release the Lease: %s", exc)
        self.is_leader = False
        self.metrics.leader.set(0)
        self.metrics.up.set(0)

    def run(self, max_runtime_s: float | None = None) -> int:
        """Run until SIGTERM/SIGINT (or `stop_event`, or `max_runtime_s`); return 0."""
        self.install_signal_handlers()
        self.start()
        deadline = None if max_runtime_s is None else time.monotonic() + max_runtime_s
        try:
            while not self.stop_event.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self.stop_event.wait(1.0 if left is None else min(1.0, left))
                self.check_clock()
        finally:
            self.stop()
        log.info("stopped")
        return 0

