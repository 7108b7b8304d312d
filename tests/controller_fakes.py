"""Small fakes for controller and loop tests (test_controller, test_loop): a settable clock, a
cluster that records apply calls, metrics sources that fail like a dead Prometheus, a fake
forecaster (no Prophet) and a shared in-memory Lease. Policies are built from YAML text."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from forecaster.history import MetricsError, StaticMetricsSource
from forecaster.series import Forecast, Series
from policies.loading import load_policy_text
from policies.schema import Policy
from scaler.plans import WorkloadState

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STEP = timedelta(minutes=5)
DEMAND_Q = "sum(edge_viewers)"
SLI_Q = "rebuffer_ratio"


def policy_yaml(*, tick: str = "1m", dry_run: bool = False, per_replica: float = 100, max_replicas: int = 50,
                min_replicas: int = 1, sli: bool = True, extra_workload: str = "") -> str:
    quality = f"    quality:\n      - {{name: rebuffering, query: '{SLI_Q}', threshold: 0.02}}\n" if sli else ""
    return textwrap.dedent(f"""\
    apiVersion: ebbtide/v1
    dry_run: {str(dry_run).lower()}
    schedule: {{tick: {tick}}}
    prometheus: {{url: 'http://prometheus.invalid:9090', max_staleness: 5m}}
    workloads:
      - name: edge
        target: {{kind: Deployment, namespace: live, name: edge}}
        demand: {{query: '{DEMAND_Q}', per_replica: {per_replica}}}
        pod_startup: 60s
        scaling: {{min_replicas: {min_replicas}, max_replicas: {max_replicas}, headroom: 0.1,
                   max_scale_down_fraction: 0.1, scale_down_cooldown: 0s, stabilization: 0s}}
        forecast: {{lookback: 8d, step: 5m, horizon: 6h, refit_interval: 6h, min_history: 7d,
                    trust_bound: 0.35}}
    """) + quality + extra_workload


def wait_for(cond, timeout_s: float = 20.0) -> bool:
    """True once `cond()` is (polled every 50 ms), False after `timeout_s` seconds: for the
    scheduler's threads in the loop tests."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def more_workloads(*names: str) -> str:
    """`extra_workload` text: one workload per name, each like `edge` (same demand query, per
    replica 100, no quality SLI), for ticks over several workloads."""
    return "".join(
        f"  - name: {n}\n    target: {{kind: Deployment, namespace: live, name: {n}}}\n"
        f"    demand: {{query: '{DEMAND_Q}', per_replica: 100}}\n    pod_startup: 60s\n"
        f"    scaling: {{min_replicas: 1, max_replicas: 50, headroom: 0.1}}\n" for n in names)


def make_policy(**kw) -> Policy:
    return load_policy_text(policy_yaml(**kw))


def series(values, *, end: datetime = NOW, step: timedelta = STEP, name: str = "") -> Series:
    """A Series whose LAST point is at `end`."""
    values = np.asarray(values, dtype=float)
    idx = pd.date_range(end=pd.Timestamp(end), periods=len(values), freq=pd.Timedelta(step))
    return Series(pd.Series(values, index=idx, name="value"), step, name)


def flat_source(demand: float, *, days: float = 8, sli: float = 0.005, end: datetime = NOW) -> StaticMetricsSource:
    n = int(timedelta(days=days) / STEP) + 1
    return StaticMetricsSource({DEMAND_Q: series([demand] * n, end=end, name=DEMAND_Q),
                                SLI_Q: series([sli] * n, end=end, name=SLI_Q)})


class Clock:
    def __init__(self, now: datetime = NOW):
        self.t = now

    def now(self) -> datetime:
        return self.t

    def advance(self, td: timedelta) -> None:
        self.t += td


class DownSource:
    """A Prometheus that refuses connections: every query raises, and is counted."""

    def __init__(self):
        self.calls = 0

    def _fail(self, query: str) -> None:
        self.calls += 1
        raise MetricsError(f"prometheus http://127.0.0.1:1: query {query!r} failed: connection refused",
                           url="http://127.0.0.1:1", query=query)

    def range(self, query, start, end, step):
        self._fail(query)

    def instant(self, query, at):
        self._fail(query)


class SwitchableSource:
    """Wraps a source; `down = True` makes it behave like DownSource."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False
        self.failed = 0

    def range(self, query, start, end, step):
        if self.down:
            self.failed += 1
            raise MetricsError(f"query {query!r} failed: timed out after 1s", query=query)
        return self.inner.range(query, start, end, step)

    def instant(self, query, at):
        if self.down:
            self.failed += 1
            raise MetricsError(f"query {query!r} failed: timed out after 1s", query=query)
        return self.inner.instant(query, at)


@dataclass(frozen=True)
class FakeApply:
    workload: str
    ok: bool
    dry_run: bool
    changed: bool
    writes: tuple = ()
    error: str | None = None


@dataclass
class FakeCluster:
    """One Deployment per workload name; apply sets replicas unless dry_run. Records calls."""

    replicas: dict[str, int]
    applies: list = field(default_factory=list)
    fail_apply: bool = False
    fail_read: bool = False

    def read(self, workload, bitrate_target):
        if self.fail_read:
            from policies.errors import EbbtideError

            raise EbbtideError("Deployment live/edge: connection refused")
        n = self.replicas[workload.name]
        return WorkloadState(n, n)

    def apply(self, plan, workload, bitrate_target, dry_run, *, state=None):
        self.applies.append((plan.workload, plan.target_replicas, dry_run))
        if self.fail_apply:
            return FakeApply(plan.workload, False, dry_run, True, (), "HTTP 500 after 4 attempts")
        changed = plan.target_replicas != self.replicas[workload.name]
        writes = ()
        if changed:
            writes = (("patch", f"Deployment live/{workload.target.name}/scale", plan.target_replicas),)
            if not dry_run:
                self.replicas[workload.name] = plan.target_replicas
        return FakeApply(plan.workload, True, dry_run, changed, writes)

    def writes(self) -> list:
        """Apply calls that were real writes (not dry-run) and changed the replicas."""
        return [a for a in self.applies if not a[2]]


class ConstantModel:
    """A forecaster predicting the mean of the last day (yhat) and +10% (yhat_upper)."""

    name = "constant"

    def __init__(self, upper_factor: float = 1.1):
        self.upper_factor = upper_factor
        self.fits = 0
        self.init_seen = None

    def fit(self, history: Series, init=None):
        self.fits += 1
        self.init_seen = init
        v = history.values.dropna()
        self.level = float(v[v.index > history.end - pd.Timedelta(days=1)].mean())
        return self

    @property
    def params(self):
        return {"level": self.level}

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        y = np.full(len(index), self.level)
        frame = pd.DataFrame({"yhat": y, "yhat_lower": 0.9 * y, "yhat_upper": self.upper_factor * y}, index=index)
        return Forecast(frame, self.name, upper_quantile=0.9)


class FailingModel:
    name = "failing"

    def fit(self, history: Series):
        raise RuntimeError("Stan optimizer failed to converge")

    def predict(self, index):  # pragma: no cover (never reached)
        raise AssertionError("predict after a failed fit")


def factory_of(model_cls, log: list | None = None):
    """A LiveForecasterCache model factory making `model_cls()`; records made models in `log`."""

    def factory(workload, events):
        def make():
            m = model_cls()
            if log is not None:
                log.append(m)
            return m

        return make

    return factory


class SharedLease:
    """An in-memory Lease with the semantics of coordination.k8s.io/v1 leader election."""

    def __init__(self, duration: timedelta = timedelta(seconds=15)):
        self.holder: str | None = None
        self.renewed: datetime | None = None
        self.duration = duration


class LeaseElector:
    """try_acquire_or_renew on a SharedLease: the holder renews; others take it once expired."""

    def __init__(self, lease: SharedLease, identity: str):
        self.lease, self.identity = lease, identity

    def try_acquire_or_renew(self, now: datetime) -> bool:
        lease = self.lease
        expired = lease.renewed is None or now - lease.renewed >= lease.duration
        if lease.holder in (None, self.identity) or expired:
            lease.holder, lease.renewed = self.identity, now
            return True
        return False

    def release(self, now: datetime) -> bool:
        if self.lease.holder == self.identity:
            self.lease.holder = None
            return True
        return False
