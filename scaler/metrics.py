"""The controller's own metrics and health endpoints (prometheus-client, one registry per process).

`ControllerMetrics` owns a private `CollectorRegistry` (so tests can build several without the
"duplicated timeseries" error of the global one) and the metric families below; the controller
and the loop call its small `record_*` methods. `serve_http(metrics, health, host, port)` starts a
threaded HTTP server answering:

- `/metrics`  the registry in the Prometheus text format;
- `/healthz`  200 while the process is alive and the loop is not wedged (the last tick started
  or ended within `Health.wedged_after_s`), else 503 with the reason;
- `/readyz`   200 once a policy is loaded and at least one tick has completed (planning done),
  else 503. Followers are ready too: readiness never depends on holding the Lease, so with two
  replicas and a PodDisruptionBudget a rolling update never waits for the follower to lead.

Metrics (units in names; labels in braces):

    ebbtide_up                                   1 while the controller runs
    ebbtide_leader                               1 when this replica holds the Lease (writes)
    ebbtide_planned_replicas{workload}           target replicas of the last plan, pods
    ebbtide_current_replicas{workload}           replicas read from the cluster, pods
    ebbtide_observed_demand{workload}            the demand sample the tick planned with (instant query
                                                 at now), demand units; absent while the tick had none
    ebbtide_forecast_demand{workload,quantile}   forecast demand at now (quantile: yhat, upper), demand units;
                                                 absent while the plan had no forecast
    ebbtide_forecast_trusted{workload}           1 when the last plan used a trusted forecast
    ebbtide_quality_guard_active{workload}       1 while the quality guard holds scale-in
    ebbtide_data_ok{workload}                    1 when demand and every SLI were fresh this tick
    ebbtide_bitrate_cap_kbps{tier}               kbps cap of the tier in the last plan
    ebbtide_estimated_savings_replica_hours_total{workload}
                                                 (max replicas - planned) x time since the workload's last
                                                 plan (at most 4 ticks), replica-hours, summed over ticks:
                                                 capacity not held against the peak setting
    ebbtide_errors_total{kind}                   errors by kind: prometheus, forecast, cluster_read,
                                                 apply, plan, workload (an unforeseen error in one
                                                 workload's tick), policy_reload, tick, leader, state_load
                                                 (saved planner memory missing, unreadable or invalid),
                                                 state_save (planner memory not saved)
    ebbtide_prometheus_errors_total              failed Prometheus queries
    ebbtide_policy_reload_errors_total           policy reloads refused (the last good policy stays)
    ebbtide_tick_duration_seconds                histogram of tick wall time, seconds
    ebbtide_last_tick_timestamp_seconds          Unix time the last tick ended
    ebbtide_ticks_skipped_total                  scheduled ticks not run: the previous one still ran
    ebbtide_writes_total{workload}               plans that changed the cluster (not dry-run)
    ebbtide_last_plan_timestamp_seconds{workload}  Unix time of the workload's last plan

A workload a tick could not plan has `ebbtide_data_ok` 0 and no current_replicas, observed or
forecast demand, trust or guard series until it is planned again (`record_unplanned`).

Series of a workload or tier the policy no longer has are removed (`forget_except`, each tick).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from scaler.plans import Plan

#: Error kinds counted in ebbtide_errors_total (label values are fixed: bounded cardinality).
ERROR_KINDS = ("prometheus", "forecast", "cluster_read", "apply", "plan", "workload", "policy_reload", "tick",
               "leader", "state_load", "state_save")

#: The savings estimate counts at most this many ticks since a workload's previous plan: a gap
#: longer than that (a follower's pause, a wedged loop) is not claimed as capacity not held.
SAVINGS_SPAN_TICKS = 4

#: Tick duration buckets, seconds (a tick is a few Prometheus queries and API calls; a tick
#: that includes a Prophet fit takes seconds to a minute).
TICK_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class ControllerMetrics:
    """Every metric family of the controller, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.up = Gauge("ebbtide_up", "1 while the Ebbtide controller runs.", registry=r)
        self.leader = Gauge("ebbtide_leader", "1 when this replica holds the leader Lease and writes.",
                            registry=r)
        self.planned_replicas = Gauge("ebbtide_planned_replicas", "Target replicas of the last plan, pods.",
                                      ["workload"], registry=r)
        self.current_replicas = Gauge("ebbtide_current_replicas", "Replicas read from the cluster "
                                      "(HPA minReplicas when an HPA owns the workload), pods.",
                                      ["workload"], registry=r)
        self.observed_demand = Gauge("ebbtide_observed_demand", "Demand sample the last tick planned with "
                                     "(instant query at the tick), in the demand query's unit; absent while "
                                     "the tick had none.", ["workload"], registry=r)
        self.forecast_demand = Gauge("ebbtide_forecast_demand", "Forecast demand at the tick, in the demand "
                                     "query's unit; quantile=yhat (median) or upper (sizing bound).",
                                     ["workload", "quantile"], registry=r)
        self.forecast_trusted = Gauge("ebbtide_forecast_trusted", "1 when the last plan used a trusted "
                                      "forecast, 0 when it sized reactively.", ["workload"], registry=r)
        self.guard_active = Gauge("ebbtide_quality_guard_active", "1 while the quality guard blocks "
                                  "scale-in and bitrate cuts.", ["workload"], registry=r)
        self.data_ok = Gauge("ebbtide_data_ok", "1 when demand and every quality SLI were fresh this tick.",
                             ["workload"], registry=r)
        self.bitrate_cap_kbps = Gauge("ebbtide_bitrate_cap_kbps", "Bitrate cap of the tier in the last "
                                      "plan, kbit/s.", ["tier"], registry=r)
        self.savings = Counter("ebbtide_estimated_savings_replica_hours", "Replica-hours not held against "
                               "max_replicas: (max - planned) x tick length, summed over ticks.",
                               ["workload"], registry=r)
        self.errors = Counter("ebbtide_errors", "Errors by kind.", ["kind"], registry=r)
        self.prometheus_errors = Counter("ebbtide_prometheus_errors", "Failed Prometheus queries.",
                                         registry=r)
        self.policy_reload_errors = Counter("ebbtide_policy_reload_errors", "Policy reloads refused; the "
                                            "last good policy stays in force.", registry=r)
        self.tick_duration = Histogram("ebbtide_tick_duration_seconds", "Wall time of one tick, seconds.",
                                       buckets=TICK_BUCKETS_S, registry=r)
        self.last_tick = Gauge("ebbtide_last_tick_timestamp_seconds", "Unix time the last tick ended.",
                               registry=r)
        self.ticks_skipped = Counter("ebbtide_ticks_skipped", "Scheduled ticks not run because the previous "
                                     "tick was still running (a tick longer than schedule.tick).", registry=r)
        self.writes = Counter("ebbtide_writes", "Plans that changed the cluster (not dry-run).",
                              ["workload"], registry=r)
        self.last_plan = Gauge("ebbtide_last_plan_timestamp_seconds", "Unix time of the workload's last plan "
                               "(a tick that left it unplanned does not move it).", ["workload"], registry=r)
        for kind in ERROR_KINDS:  # export zeros, so rate() and alerts work from the start
            self.errors.labels(kind=kind)
        self._last_plan_at: dict[str, datetime] = {}  # tick time of each workload's last plan (savings span)

    # ------------------------------------------------------------------ recording
    def error(self, kind: str) -> None:
        """Count one error of `kind` (one of ERROR_KINDS)."""
        self.errors.labels(kind=kind).inc()

    def prometheus_error(self) -> None:
        self.prometheus_errors.inc()
        self.error("prometheus")

    def policy_reload_error(self) -> None:
        self.policy_reload_errors.inc()
        self.error("policy_reload")

    def record_plan(self, plan: Plan, max_replicas: int, tick: timedelta,
                    forecast_now: tuple[float, float] | None, wrote: bool,
                    observed_demand: float | None = None, at: datetime | None = None) -> None:
        """Gauges of one workload's plan. `forecast_now`: (yhat, yhat_upper) at the tick, if any;
        `max_replicas`: the policy's ceiling, the reference of the savings estimate;
        `observed_demand`: the demand sample the tick used (demand units), None when it had none
        (the series is then removed, so a graph shows a gap rather than a stale value).
        `at`: the tick's time; the savings estimate counts the time since the workload's previous
        plan (ticks skipped while a tick overran its interval included), at most SAVINGS_SPAN_TICKS
        ticks, and one tick for a first plan or without `at`."""
        w = plan.workload
        if observed_demand is not None and math.isfinite(observed_demand):
            self.observed_demand.labels(workload=w).set(observed_demand)
        else:
            self.observed_demand.remove(w)  # a no-op when never set
        self.planned_replicas.labels(workload=w).set(plan.target_replicas)
        self.current_replicas.labels(workload=w).set(plan.current_replicas)
        self.forecast_trusted.labels(workload=w).set(1 if plan.forecast_trusted else 0)
        self.guard_active.labels(workload=w).set(1 if plan.guard_active else 0)
        self.data_ok.labels(workload=w).set(1 if plan.data_ok else 0)
        for i, quantile in enumerate(("yhat", "upper")):
            if forecast_now is not None:
                self.forecast_demand.labels(workload=w, quantile=quantile).set(forecast_now[i])
            else:  # no forecast this tick: no series, not the last forecast held as if current
                self.forecast_demand.remove(w, quantile)
        for cap in plan.bitrate or ():
            self.bitrate_cap_kbps.labels(tier=cap.tier).set(cap.max_kbps)
        span = tick
        last = self._last_plan_at.get(w)
        if at is not None:
            if last is not None and at > last:
                span = min(at - last, SAVINGS_SPAN_TICKS * tick)
            self._last_plan_at[w] = at
        saved = max(0, max_replicas - plan.target_replicas) * span.total_seconds() / 3600.0
        self.savings.labels(workload=w).inc(saved)
        if wrote:
            self.writes.labels(workload=w).inc()
        self.last_plan.labels(workload=w).set(time.time())

    def record_unplanned(self, workload: str) -> None:
        """A tick that could not plan `workload` (cluster unreadable, planning failed, a bug):
        `ebbtide_data_ok` reads 0, and the gauges that describe the last plan's state as current
        (guard, trust, demand, forecast, replicas read) are removed rather than left at the values
        of a plan that no longer holds. `ebbtide_planned_replicas` keeps the last plan's target and
        `ebbtide_last_plan_timestamp_seconds` says when that was."""
        self.data_ok.labels(workload=workload).set(0)
        for family in (self.current_replicas, self.observed_demand, self.forecast_trusted, self.guard_active):
            family.remove(workload)
        for quantile in ("yhat", "upper"):
            self.forecast_demand.remove(workload, quantile)

    def forget_except(self, workloads: set[str], tiers: set[str]) -> None:
        """Remove the series of workloads and bitrate tiers no longer in the policy (a reload
        dropped or renamed them): a gauge left behind would keep its last value for ever, e.g.
        `ebbtide_quality_guard_active` 1 and its alert firing for a workload nobody runs."""
        families = (self.planned_replicas, self.current_replicas, self.observed_demand, self.forecast_trusted,
                    self.guard_active, self.data_ok, self.savings, self.writes, self.last_plan)
        # Every plan and every unplanned tick sets ebbtide_data_ok: its series name every workload
        # recorded (one family collected per tick, not nine: ~2 ms, not ~36 ms, at 1,000 workloads).
        for w in _label_values(self.data_ok, "workload") - workloads:
            self._last_plan_at.pop(w, None)
            for family in families:
                family.remove(w)  # a no-op where absent
            for quantile in ("yhat", "upper"):
                self.forecast_demand.remove(w, quantile)
        for tier in _label_values(self.bitrate_cap_kbps, "tier") - tiers:
            self.bitrate_cap_kbps.remove(tier)

    def text(self) -> str:
        """The registry in the Prometheus text format (what /metrics serves)."""
        return generate_latest(self.registry).decode("utf-8")

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """Current value of one sample (tests, status lines); None when absent."""
        return self.registry.get_sample_value(name, labels or {})


def _label_values(family: Gauge, label: str) -> set[str]:
    """The values of `label` among the series `family` exports now."""
    return {s.labels[label] for m in family.collect() for s in m.samples}


@dataclass
class Health:
    """Liveness and readiness, updated by the loop (thread-safe: plain attribute writes).

    `wedged_after_s`: /healthz fails when no tick has started or ended for this long (seconds)
    while the loop runs; the loop sets it to a few tick lengths plus the fit allowance.
    """

    wedged_after_s: float = 300.0
    policy_loaded: bool = False
    ticks_done: int = 0
    last_progress_monotonic: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic

    def progress(self) -> None:
        """The loop moved (a tick started or ended)."""
        self.last_progress_monotonic = self.clock()

    def tick_done(self) -> None:
        self.ticks_done += 1
        self.progress()

    def healthy(self) -> tuple[bool, str]:
        idle_s = self.clock() - self.last_progress_monotonic
        if idle_s > self.wedged_after_s:
            return False, f"loop wedged: no tick progress for {idle_s:.0f}s (limit {self.wedged_after_s:.0f}s)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if not self.policy_loaded:
            return False, "no policy loaded"
        if self.ticks_done < 1:
            return False, "no tick completed yet"
        return True, "ok"


class MetricsServer:
    """The HTTP server of /metrics, /healthz and /readyz, in a daemon thread."""

    def __init__(self, metrics: ControllerMetrics, health: Health, host: str = "0.0.0.0", port: int = 8080):
        handler = _handler(metrics, health)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ebbtide-metrics", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0: a free one)."""
        return self._httpd.server_address[1]

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler(metrics: ControllerMetrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, why = health.healthy()
                self._send(200 if ok else 503, (why + "\n").encode())
            elif path == "/readyz":
                ok, why = health.ready()
                self._send(200 if ok else 503, (why + "\n").encode())
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
            pass  # probes every few seconds would drown the controller's own log

    return Handler
