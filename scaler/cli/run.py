"""`ebbtide run`: the controller.

    ebbtide run --policy POLICY.yaml [--once] [--dry-run] [--kubeconfig PATH] [--context NAME]
                [--prometheus-url URL] [--http-port 8080] [--audit-log FILE]
                [--leader-elect --lease-name NAME --lease-namespace NS --identity ID]
                [--executor {local,dask,inline}] [--scheduler ADDRESS] [--fit-workers N]
                [--query-concurrency N] [--state-configmap NAME [--state-namespace NS]]

Every tick: read demand and quality SLIs from Prometheus, forecast, read the cluster, plan,
apply (or only record, with --dry-run or `dry_run: true` in the policy), and write one JSON
audit line per plan (stdout, or --audit-log FILE). Logs go to stderr. See docs/controller.md.

Every flag has an environment fallback: `--lease-name` <- EBBTIDE_LEASE_NAME, and so on
(EBBTIDE_ + the flag's name in capitals, dashes as underscores; `ENV_VARS` lists them). A flag
on the command line wins over its variable; switches read `true`/`false` (`--no-leader-elect`
turns an inherited EBBTIDE_LEADER_ELECT=true off); durations read `15s`, `1m30s`. The Helm chart
configures the controller through these variables (charts/ebbtide/README.md).

The Prometheus URL is the policy's `prometheus.url`; `--prometheus-url` or the environment
variable EBBTIDE_PROMETHEUS_URL override it. `--once` runs one tick, fit included, and exits 0
when the tick completed, even when it held state because data was missing (that is reported, not
an error); 1 when a workload could not be read or its apply failed; 2 for input errors.
Model fits run on the parallel fitting engine (scaler/fitting.py, docs/scale.md): `--executor
local` (worker processes, the default), `dask` (a Dask scheduler at `--scheduler`) or `inline`
(this process, one fit at a time); every executor gives the same forecasts.
Without --once the controller runs until SIGTERM/SIGINT, serving /metrics, /healthz and /readyz
on --http-port, reloading the policy file when it changes.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from policies.errors import EbbtideError

#: Prefix of every flag's environment fallback.
ENV_PREFIX = "EBBTIDE_"

#: Log levels accepted by --log-level / EBBTIDE_LOG_LEVEL, in any case (`info`, `INFO`).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Where a pod's service account names its namespace (default of --lease-namespace in a pod).
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def env_var(dest: str) -> str:
    """The environment fallback of the flag whose argparse dest is `dest` (`lease_name` ->
    `EBBTIDE_LEASE_NAME`)."""
    return ENV_PREFIX + dest.upper()


#: argparse dest of every flag -> its environment variable (the chart sets a subset of these).
ENV_VARS: dict[str, str] = {d: env_var(d) for d in (
    "policy", "once", "dry_run", "kubeconfig", "context", "prometheus_url", "http_port", "http_host",
    "audit_log", "leader_elect", "lease_name", "lease_namespace", "lease_duration", "lease_retry_period",
    "identity", "at", "log_level", "executor", "scheduler", "fit_workers", "query_concurrency",
    "state_configmap", "state_namespace")}


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run",
        help="run the controller (one tick with --once)",
        description=__doc__.split("\n\n", 1)[0],
        epilog="Every flag falls back to EBBTIDE_<FLAG> in the environment (e.g. EBBTIDE_LEASE_NAME).",
    )
    flag = argparse.BooleanOptionalAction
    # Every default is None: settings_from_args fills in the environment variable, then the default.
    p.add_argument("--policy", metavar="POLICY.yaml", help="Ebbtide policy (reloaded on change; required)")
    p.add_argument("--once", action=flag, help="run one tick (fit included) and exit")
    p.add_argument("--dry-run", action=flag, help="plan and record, write nothing (also `dry_run: true` "
                   "in the policy)")
    p.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: in-cluster service account, "
                   "else $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    p.add_argument("--prometheus-url", metavar="URL", help="override the policy's prometheus.url")
    p.add_argument("--http-port", metavar="PORT", help="port of /metrics, /healthz, /readyz (default 8080; "
                   "0: any free port; not served with --once)")
    p.add_argument("--http-host", metavar="HOST", help="address to serve on (default 0.0.0.0)")
    p.add_argument("--audit-log", metavar="FILE", help="append one JSON line per plan to FILE "
                   "(default -: stdout)")
    p.add_argument("--leader-elect", action=flag, help="Lease-based leader election: only the leader "
                   "writes, followers plan in dry-run")
    p.add_argument("--lease-name", metavar="NAME", help="Lease name (default ebbtide)")
    p.add_argument("--lease-namespace", metavar="NS",
                   help="Lease namespace (default: the pod's service account's, else default)")
    p.add_argument("--lease-duration", metavar="DURATION", help="how long a Lease holds without renewal "
                   "(whole seconds, default 15s); followers take over after it")
    p.add_argument("--lease-retry-period", metavar="DURATION", help="how often the Lease is acquired or "
                   "renewed (default 5s; shorter than --lease-duration)")
    p.add_argument("--identity", metavar="ID", help="this replica's name in the Lease (default: the host "
                   "name, which is the pod name in a pod)")
    p.add_argument("--at", metavar="ISO", help="pretend the clock reads ISO at start and runs on from there "
                   "(what-if runs and tests against stored history; never for a live cluster)")
    p.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning or error, any case (default info)")
    p.add_argument("--executor", metavar="{local,dask,inline}", help="where model fits run: local worker "
                   "processes (default), a Dask cluster (needs --scheduler), or inline in this process")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://dask-scheduler:8786 "
                   "(--executor dask only, and required by it)")
    p.add_argument("--fit-workers", metavar="N", help="fit worker processes of --executor local "
                   "(default min(2, CPUs)); inline fits one at a time, a Dask cluster has its own workers")
    p.add_argument("--query-concurrency", metavar="N", help="Prometheus queries in flight at once "
                   "(tick prefetch and history reads; default 8; 1: one at a time)")
    p.add_argument("--state-configmap", metavar="NAME", help="keep the planner memory (guard holds, "
                   "stabilisation window, cooldowns) in this ConfigMap, so a restart or a new leader goes "
                   "on from it; created when absent, written by the leader only (default: not kept)")
    p.add_argument("--state-namespace", metavar="NS", help="namespace of --state-configmap (default: the "
                   "pod's service account's, else default)")
    return p


# --------------------------------------------------------------------------- effective settings
@dataclass(frozen=True)
class RunSettings:
    """What `ebbtide run` does, from flags, then EBBTIDE_* variables, then defaults.

    Built by `settings_from_args` without side effects other than reading the service account's
    namespace file (only when no Lease namespace is given), so the chart's wiring is testable.
    """

    policy: str
    """Policy file path."""
    once: bool = False
    """One tick (fit included), then exit."""
    dry_run: bool = False
    """Plan and record, write nothing (or-ed with the policy's `dry_run`)."""
    kubeconfig: str | None = None
    """kubeconfig path; None: in-cluster, else $KUBECONFIG or ~/.kube/config."""
    context: str | None = None
    """kubeconfig context; None: the current one."""
    prometheus_url: str | None = None
    """Overrides the policy's prometheus.url; None: the policy's."""
    http_port: int = 8080
    """Port of /metrics, /healthz, /readyz (0: any free port)."""
    http_host: str = "0.0.0.0"
    """Address the HTTP server binds."""
    audit_log: str = "-"
    """Audit log file; `-`: stdout."""
    leader_elect: bool = False
    """Lease-based leader election: only the holder writes."""
    lease_name: str = "ebbtide"
    """Name of the Lease."""
    lease_namespace: str = "default"
    """Namespace of the Lease."""
    lease_duration_s: int = 15
    """leaseDurationSeconds written to the Lease, whole seconds >= 1."""
    lease_retry_period_s: float = 5.0
    """Seconds between acquire/renew attempts (< lease_duration_s)."""
    identity: str = ""
    """This replica's holder identity in the Lease."""
    at: datetime | None = None
    """Start time of a shifted clock (what-if runs); None: the wall clock."""
    log_level: str = "INFO"
    """One of LOG_LEVELS."""
    executor: str = "local"
    """Where fits run: one of scaler.fitting.EXECUTORS (`local` processes, `dask`, `inline`)."""
    scheduler: str | None = None
    """Dask scheduler address (set exactly when executor is `dask`)."""
    fit_workers: int | None = None
    """Fit worker processes (>= 1) of the local executor; None: min(2, CPUs). Ignored by `inline`;
    with `dask` the cluster's own worker count wins once connected."""
    query_concurrency: int = 8
    """Prometheus queries in flight at once (>= 1; 1: sequential), scaler.fitting.DEFAULT_QUERY_CONCURRENCY."""
    state_configmap: str | None = None
    """ConfigMap keeping the planner memory across restarts (scaler.memory_store); None: not kept."""
    state_namespace: str = "default"
    """Namespace of `state_configmap`."""


_TRUE = {"1", "true", "yes", "on"}
#: A Kubernetes object name (RFC 1123 subdomain), e.g. of --state-configmap.
_DNS_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_FALSE = {"0", "false", "no", "off"}


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> RunSettings:
    """The effective settings: each flag given on the command line, else its EBBTIDE_* variable
    in `env` (empty counts as unset), else the default. Raises EbbtideError naming the flag or
    the variable for a value that does not parse, and for a missing policy."""
    from policies.units import parse_duration, parse_time

    def raw(dest: str) -> tuple[object | None, str]:
        value = getattr(args, dest, None)
        if value is not None:
            return value, "--" + dest.replace("_", "-")
        text = env.get(ENV_VARS[dest], "").strip()
        return (text or None), ENV_VARS[dest]

    def text(dest: str, default: str | None) -> str | None:
        value, _ = raw(dest)
        return default if value is None else str(value)

    def switch(dest: str) -> bool:
        value, where = raw(dest)
        if value is None or isinstance(value, bool):
            return bool(value)
        word = str(value).lower()
        if word not in _TRUE | _FALSE:
            raise EbbtideError(f"{where}: {value!r} is not true or false")
        return word in _TRUE

    def seconds(dest: str, default_s: float) -> tuple[float, str]:
        value, where = raw(dest)
        if value is None:
            return default_s, where
        try:
            return parse_duration(str(value)).total_seconds(), where
        except ValueError as exc:
            raise EbbtideError(f"{where}: {exc}") from None

    policy = text("policy", None)
    if not policy:
        raise EbbtideError(f"--policy (or {ENV_VARS['policy']}) is required: the policy file to run")

    port_value, port_where = raw("http_port")
    try:
        http_port = 8080 if port_value is None else int(str(port_value))
    except ValueError:
        raise EbbtideError(f"{port_where}: {port_value!r} is not a port number") from None
    if not 0 <= http_port <= 65535:
        raise EbbtideError(f"{port_where}: {http_port} is not a port number (0-65535; 0: any free port)")

    level_value, level_where = raw("log_level")
    log_level = "INFO" if level_value is None else str(level_value).upper()
    if log_level == "WARN":
        log_level = "WARNING"
    if log_level not in LOG_LEVELS:
        raise EbbtideError(f"{level_where}: {level_value!r} is not a log level "
                           f"({', '.join(v.lower() for v in LOG_LEVELS)}; any case)")

    lease_s, lease_where = seconds("lease_duration", 15.0)
    if lease_s < 1 or lease_s != int(lease_s):
        raise EbbtideError(f"{lease_where}: the Lease's duration is whole seconds >= 1 "
                           f"(leaseDurationSeconds), got {lease_s:g}s")
    retry_s, retry_where = seconds("lease_retry_period", 5.0)
    leader_elect = switch("leader_elect")
    if leader_elect and not 0 < retry_s < lease_s:
        raise EbbtideError(f"{retry_where}: {retry_s:g}s must be above 0 and shorter than the lease duration "
                           f"({lease_s:g}s), or the Lease expires between renewals")

    def count(dest: str, default: int | None, what: str) -> int | None:
        value, where = raw(dest)
        if value is None:
            return default
        try:
            n = int(str(value))
        except ValueError:
            raise EbbtideError(f"{where}: {value!r} is not a whole number ({what})") from None
        if n < 1:
            raise EbbtideError(f"{where}: must be >= 1 ({what}), got {n}")
        return n

    from scaler.fitting import DEFAULT_QUERY_CONCURRENCY, EXECUTORS

    executor_value, executor_where = raw("executor")
    executor = "local" if executor_value is None else str(executor_value).strip().lower()
    if executor not in EXECUTORS:
        raise EbbtideError(f"{executor_where}: {executor_value!r} is not an executor "
                           f"(one of {', '.join(EXECUTORS)})")
    scheduler_value, scheduler_where = raw("scheduler")
    scheduler = None if scheduler_value is None else (str(scheduler_value).strip() or None)  # "": none
    if scheduler is not None and executor != "dask":
        given = "the default" if executor_value is None else f"from {executor_where}"
        raise EbbtideError(f"{scheduler_where}: a Dask scheduler address is only used with --executor dask "
                           f"(the executor is {executor!r}, {given})")
    if executor == "dask" and scheduler is None:
        raise EbbtideError(f"{executor_where}: the dask executor needs --scheduler (or {ENV_VARS['scheduler']}), "
                           "the address of a running Dask scheduler, e.g. tcp://dask-scheduler:8786; "
                           "for fits on this machine use the local executor")
    if scheduler is not None and any(c.isspace() for c in scheduler):
        raise EbbtideError(f"{scheduler_where}: {scheduler!r} is not a scheduler address "
                           "(e.g. tcp://dask-scheduler:8786)")
    fit_workers = count("fit_workers", None, "fit worker processes")
    query_concurrency = count("query_concurrency", DEFAULT_QUERY_CONCURRENCY, "Prometheus queries in flight")

    state_configmap = text("state_configmap", None)
    if state_configmap is not None:
        state_configmap = state_configmap.strip() or None  # "": off
    if state_configmap is not None and not _DNS_NAME.fullmatch(state_configmap):
        _, where = raw("state_configmap")
        raise EbbtideError(f"{where}: {state_configmap!r} is not a ConfigMap name (lowercase a-z, 0-9, '-' "
                           "and '.', at most 253 characters, starting and ending with a letter or digit)")

    at_value, at_where = raw("at")
    at = None
    if at_value is not None:
        try:
            at = parse_time(str(at_value))
        except ValueError as exc:
            raise EbbtideError(f"{at_where}: {exc}") from None

    return RunSettings(
        policy=policy,
        once=switch("once"),
        dry_run=switch("dry_run"),
        kubeconfig=text("kubeconfig", None),
        context=text("context", None),
        prometheus_url=text("prometheus_url", None),
        http_port=http_port,
        http_host=text("http_host", "0.0.0.0") or "0.0.0.0",
        audit_log=text("audit_log", "-") or "-",
        leader_elect=leader_elect,
        lease_name=text("lease_name", "ebbtide") or "ebbtide",
        lease_namespace=text("lease_namespace", None) or _service_account_namespace(),
        lease_duration_s=int(lease_s),
        lease_retry_period_s=retry_s,
        identity=text("identity", None) or socket.gethostname(),
        at=at,
        log_level=log_level,
        executor=executor,
        scheduler=scheduler,
        fit_workers=fit_workers,
        query_concurrency=query_concurrency,
        state_configmap=state_configmap,
        state_namespace=(text("state_namespace", None) or _service_account_namespace()
                         if state_configmap is not None else "default"),
    )


def parse_settings(argv: Sequence[str], env: Mapping[str, str]) -> RunSettings:
    """Settings of `ebbtide <argv>` (argv starts with `run`, as a container's args do) under `env`."""
    from scaler.cli import build_parser

    args = build_parser().parse_args(list(argv))
    if args.command != "run":
        raise EbbtideError(f"not an `ebbtide run` command line: {' '.join(argv)}")
    return settings_from_args(args, env)


def _service_account_namespace() -> str:
    try:
        with open(SA_NAMESPACE_FILE, encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def _cluster(settings: RunSettings):
    from scaler.kube import KubeCluster, KubeError

    identity = settings.identity
    if settings.kubeconfig or settings.context:
        return KubeCluster.from_kubeconfig(settings.kubeconfig, settings.context, identity=identity)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return KubeCluster.in_cluster(identity=identity)
    try:
        return KubeCluster.from_kubeconfig(None, None, identity=identity)
    except KubeError as exc:
        raise EbbtideError(f"no Kubernetes connection: not in a pod, and {exc}; pass --kubeconfig") from None


def run(args) -> int:
    from scaler.controller import AuditLog, Controller, ShiftedClock, SystemClock
    from scaler.fitting import forecaster_cache
    from scaler.loop import ControllerLoop, PolicyStore, prometheus_source, resolve_prometheus_url, stopping_on_signals
    from scaler.metrics import ControllerMetrics, Health, MetricsServer

    s = settings_from_args(args, os.environ)
    logging.basicConfig(level=getattr(logging, s.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if s.log_level != "DEBUG":  # APScheduler says "Running job ..." for every run of every job
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    clock = SystemClock() if s.at is None else ShiftedClock(s.at)

    metrics = ControllerMetrics()
    store = PolicyStore(s.policy, metrics)
    for w in store.loaded.warnings:
        print(f"warning: {w}", file=sys.stderr)
    policy = store.current()
    url = resolve_prometheus_url(policy, s.prometheus_url, env={})
    source = prometheus_source(policy.prometheus, url)
    cluster = _cluster(s)
    # Nothing is started here: the pool or the Dask connection opens at the first refit.
    cache = forecaster_cache(s.executor, scheduler=s.scheduler, fit_workers=s.fit_workers,
                             query_concurrency=s.query_concurrency)
    audit = AuditLog(s.audit_log)
    memory_store = None
    if s.state_configmap is not None:
        from scaler.memory_store import ConfigMapMemoryStore

        memory_store = ConfigMapMemoryStore(cluster, s.state_namespace, s.state_configmap)
    controller = Controller(clock, source, cluster, cache, metrics=metrics, audit=audit,
                            query_concurrency=s.query_concurrency, memory_store=memory_store)
    dry_run = s.dry_run or policy.dry_run
    log = logging.getLogger("ebbtide")
    log.info("ebbtide run: policy %s (digest %s), prometheus %s, %s, identity %s", s.policy,
             store.loaded.digest[:12], source.display_url, "dry-run" if dry_run else "live", s.identity)
    where = {"local": f"{cache.executor.workers} worker processes", "dask": f"the Dask scheduler at {s.scheduler}",
             "inline": "this process, one at a time"}[s.executor]
    log.info("fits on the %s executor (%s); %d Prometheus queries in flight", s.executor, where, s.query_concurrency)
    if memory_store is not None:
        log.info("planner memory kept in %s (loaded at start and on becoming leader, saved by the leader)",
                 memory_store.where)
    else:
        log.info("planner memory kept in this process only: a restart starts it empty (--state-configmap)")

    elector = None
    if s.leader_elect:
        from scaler.kube import LeaderElector

        elector = LeaderElector(cluster, s.lease_namespace, s.lease_name, s.identity,
                                lease_duration_s=s.lease_duration_s)
        log.info("leader election on: Lease %s/%s, duration %ds, renewed every %gs", s.lease_namespace,
                 s.lease_name, s.lease_duration_s, s.lease_retry_period_s)
    else:
        log.info("leader election off: this replica writes (run one replica only)")

    try:
        if s.once:
            leader = True
            if elector is not None:
                leader = elector.try_acquire_or_renew(clock.now())
                metrics.leader.set(1 if leader else 0)
            with stopping_on_signals(controller.stopping):  # SIGTERM: end after the workload under way
                report = controller.tick(policy, dry_run=dry_run, leader=leader, fit=True)
            print(report.summary(), file=sys.stderr)
            for o in report.outcomes:
                for p in o.problems:
                    print(f"{o.workload}: {p}", file=sys.stderr)
            left = len(policy.workloads) - len(report.outcomes)
            if left:
                print(f"stopped by a signal: {left} of {len(policy.workloads)} workloads not planned", file=sys.stderr)
            return 0 if report.ok and not left else 1

        health = Health()

        def rebuild_source(new_policy) -> None:
            controller.source = prometheus_source(
                new_policy.prometheus, resolve_prometheus_url(new_policy, s.prometheus_url, env={}))

        loop = ControllerLoop(store, controller, metrics=metrics, health=health, elector=elector,
                              dry_run=s.dry_run, renew_interval_s=s.lease_retry_period_s,
                              on_policy_change=rebuild_source, now=clock.now)
        server = None
        try:
            server = MetricsServer(metrics, health, s.http_host, s.http_port).start()
        except OSError as exc:
            raise EbbtideError(f"--http-port {s.http_port}: cannot listen on "
                               f"{s.http_host}: {exc.strerror or exc}") from None
        log.info("serving /metrics, /healthz, /readyz on %s:%d", s.http_host, server.port)
        try:
            return loop.run()
        finally:
            server.stop()
    finally:
        try:
            cache.close()  # stops the worker pool / disconnects from Dask
        finally:
            audit.close()
