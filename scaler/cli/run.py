"""`ebbtide run`: the controller.

    ebbtide run --policy POLICY.yaml [--once] [--dry-run] [--kubeconfig PATH] [--context NAME]
                [--prometheus-url URL] [--metrics-port 8080] [--audit-log FILE]
                [--leader-elect --lease-name NAME --lease-namespace NS --identity ID]

Every tick: read demand and quality SLIs from Prometheus, forecast, read the cluster, plan,
apply (or only record, with --dry-run or `dry_run: true` in the policy), and write one JSON
audit line per plan (stdout, or --audit-log FILE). Logs go to stderr. See docs/controller.md.

The Prometheus URL is the policy's `prometheus.url`; `--prometheus-url` or the environment
variable EBBTIDE_PROMETHEUS_URL override it. `--once` runs one tick, fit included, and exits 0
when the tick completed, even when it held state because data was missing (that is reported, not
an error); 1 when a workload could not be read or its apply failed; 2 for input errors.
Without --once the controller runs until SIGTERM/SIGINT, serving /metrics, /healthz and /readyz
on --metrics-port, reloading the policy file when it changes.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from policies.errors import EbbtideError


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run",
        help="run the controller (one tick with --once)",
        description=__doc__.split("\n\n", 1)[0],
    )
    p.add_argument("--policy", required=True, metavar="POLICY.yaml", help="Ebbtide policy (reloaded on change)")
    p.add_argument("--once", action="store_true", help="run one tick (fit included) and exit")
    p.add_argument("--dry-run", action="store_true", help="plan and record, write nothing (also `dry_run: true` "
                   "in the policy)")
    p.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: in-cluster service account, "
                   "else $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    p.add_argument("--prometheus-url", metavar="URL", help="override the policy's prometheus.url (also "
                   "$EBBTIDE_PROMETHEUS_URL)")
    p.add_argument("--metrics-port", type=int, default=int(os.environ.get("EBBTIDE_METRICS_PORT", 8080)),
                   metavar="PORT", help="port of /metrics, /healthz, /readyz (default 8080; 0: any free port; "
                   "not served with --once)")
    p.add_argument("--metrics-host", default="0.0.0.0", metavar="HOST", help="address to serve on (default 0.0.0.0)")
    p.add_argument("--audit-log", default="-", metavar="FILE", help="append one JSON line per plan to FILE "
                   "(default -: stdout)")
    p.add_argument("--leader-elect", action="store_true", help="Lease-based leader election: only the leader "
                   "writes, followers plan in dry-run")
    p.add_argument("--lease-name", default="ebbtide", metavar="NAME", help="Lease name (default ebbtide)")
    p.add_argument("--lease-namespace", default=None, metavar="NS",
                   help="Lease namespace (default $POD_NAMESPACE, else the service account's, else default)")
    p.add_argument("--lease-duration", type=int, default=15, metavar="SECONDS", help="Lease duration (default 15)")
    p.add_argument("--identity", default=None, metavar="ID", help="this replica's name in the Lease (default "
                   "$POD_NAME, else the host name)")
    p.add_argument("--at", metavar="ISO", help="pretend the clock reads ISO at start and runs on from there "
                   "(what-if runs and tests against stored history; never for a live cluster)")
    p.add_argument("--log-level", default=os.environ.get("EBBTIDE_LOG_LEVEL", "INFO"),
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level (default INFO)")
    return p


_SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _lease_namespace(flag: str | None) -> str:
    if flag:
        return flag
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        with open(_SA_NAMESPACE, encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def _cluster(args):
    from scaler.kube import KubeCluster, KubeError

    identity = args.identity or os.environ.get("POD_NAME") or socket.gethostname()
    if args.kubeconfig or args.context:
        return KubeCluster.from_kubeconfig(args.kubeconfig, args.context, identity=identity)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return KubeCluster.in_cluster(identity=identity)
    try:
        return KubeCluster.from_kubeconfig(None, None, identity=identity)
    except KubeError as exc:
        raise EbbtideError(f"no Kubernetes connection: not in a pod, and {exc}; pass --kubeconfig") from None


def run(args) -> int:
    from policies.units import parse_time
    from scaler.controller import AuditLog, Controller, LiveForecasterCache, ShiftedClock, SystemClock
    from scaler.loop import ControllerLoop, PolicyStore, prometheus_source, resolve_prometheus_url
    from scaler.metrics import ControllerMetrics, Health, MetricsServer

    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    clock = SystemClock()
    if args.at:
        try:
            clock = ShiftedClock(parse_time(args.at))
        except ValueError as exc:
            raise EbbtideError(f"--at: {exc}") from None

    metrics = ControllerMetrics()
    store = PolicyStore(args.policy, metrics)
    for w in store.loaded.warnings:
        print(f"warning: {w}", file=sys.stderr)
    policy = store.current()
    url = resolve_prometheus_url(policy, args.prometheus_url)
    source = prometheus_source(policy.prometheus, url)
    cluster = _cluster(args)
    audit = AuditLog(args.audit_log)
    controller = Controller(clock, source, cluster, LiveForecasterCache(), metrics=metrics, audit=audit)
    dry_run = args.dry_run or policy.dry_run
    identity = args.identity or os.environ.get("POD_NAME") or socket.gethostname()
    logging.getLogger("ebbtide").info(
        "ebbtide run: policy %s (digest %s), prometheus %s, %s, %s", args.policy, store.loaded.digest[:12],
        source.display_url, "dry-run" if dry_run else "live", f"identity {identity}")

    elector = None
    if args.leader_elect:
        from scaler.kube import LeaderElector

        elector = LeaderElector(cluster, _lease_namespace(args.lease_namespace), args.lease_name, identity,
                                lease_duration_s=args.lease_duration)

    try:
        if args.once:
            leader = True
            if elector is not None:
                leader = elector.try_acquire_or_renew(clock.now())
                metrics.leader.set(1 if leader else 0)
            report = controller.tick(policy, dry_run=dry_run, leader=leader, fit=True)
            print(report.summary(), file=sys.stderr)
            for o in report.outcomes:
                for p in o.problems:
                    print(f"{o.workload}: {p}", file=sys.stderr)
            return 0 if report.ok else 1

        health = Health()

        def rebuild_source(new_policy) -> None:
            controller.source = prometheus_source(
                new_policy.prometheus, resolve_prometheus_url(new_policy, args.prometheus_url))

        loop = ControllerLoop(store, controller, metrics=metrics, health=health, elector=elector,
                              dry_run=args.dry_run, on_policy_change=rebuild_source, now=clock.now)
        server = None
        if args.metrics_port is not None and args.metrics_port >= 0:
            try:
                server = MetricsServer(metrics, health, args.metrics_host, args.metrics_port).start()
            except OSError as exc:
                raise EbbtideError(f"--metrics-port {args.metrics_port}: cannot listen on "
                                   f"{args.metrics_host}: {exc.strerror or exc}") from None
            logging.getLogger("ebbtide").info("serving /metrics, /healthz, /readyz on %s:%d",
                                              args.metrics_host, server.port)
        try:
            return loop.run()
        finally:
            if server is not None:
                server.stop()
    finally:
        audit.close()
