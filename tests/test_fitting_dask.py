"""The fitting engine on a Dask cluster (dask.distributed LocalCluster), against the local paths.

Cases:
- Dask (in-process LocalCluster, processes=False) gives the inline results with a fake model,
  warm start included (the second refit says warm_started and stores the new params);
- the real EbbtideForecaster on 3 seeded synthetic series: local processes and a Dask
  LocalCluster of 2 worker processes store bit-identical forecasts and params, and a tick plans
  the same replicas with each (slow; inline = local is tested in test_fitting.py);
- an unreachable scheduler address is an error for people naming the address; a closed client
  (a scheduler restart) connects again; without dask.distributed, a message saying what to install.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest
from controller_fakes import ConstantModel, FakeCluster

pytest.importorskip("distributed", reason="dask[distributed] is in the test extra")

from forecaster.history import StaticMetricsSource  # noqa: E402
from forecaster.series import Series  # noqa: E402
from forecaster.synthetic import generate  # noqa: E402
from policies.errors import EbbtideError  # noqa: E402
from policies.loading import load_policy_text  # noqa: E402
from scaler.controller import Controller, demand_history_range, label_demand_history  # noqa: E402
from scaler.fitting import DaskExecutor, InlineExecutor, ParallelForecasterCache, ProcessExecutor  # noqa: E402

START = datetime(2026, 9, 1, tzinfo=timezone.utc)
DAYS = 11
STEP = timedelta(hours=1)


def constant_factory(workload, events):
    return ConstantModel


def _policy(n: int):
    lines = ["apiVersion: ebbtide/v1", "dry_run: true", "schedule: {tick: 1m}",
             "prometheus: {url: 'http://prometheus.invalid:9090', max_staleness: 2h}", "workloads:"]
    for i in range(n):
        lines += [f"  - name: w{i}",
                  f"    target: {{kind: Deployment, namespace: live, name: w{i}}}",
                  f"    demand: {{query: 'sum(viewers{{w=\"{i}\"}})', per_replica: 500}}",
                  "    scaling: {min_replicas: 1, max_replicas: 400, headroom: 0.1}",
                  "    forecast: {lookback: 10d, step: 1h, horizon: 6h, refit_interval: 6h, min_history: 7d}"]
    return load_policy_text("\n".join(lines) + "\n")


def _setup(n: int):
    policy = _policy(n)
    data = {}
    for i, w in enumerate(policy.workloads):
        tr = generate(START, DAYS, STEP, seed=10 + i, sale=None, outages=0, base_level=5000.0 * (i + 1))
        data[w.demand.query] = Series(tr.series.values, STEP, w.demand.query)
    now = (tr.series.end + STEP).to_pydatetime()  # the last point is the newest sample
    return policy, StaticMetricsSource(data), now


class _Clock:
    def __init__(self, t):
        self.t = t

    def now(self):
        return self.t


def _run(policy, source, now, executor, factory=None):
    cache = ParallelForecasterCache(executor, factory, query_concurrency=4)
    controller = Controller(_Clock(now), source, FakeCluster({w.name: 40 for w in policy.workloads}), cache,
                            query_concurrency=4)
    try:
        outcomes = controller.refit_due(policy)
        assert len(outcomes) == len(policy.workloads) and all(o.ok for o in outcomes), outcomes
        report = controller.tick(policy, dry_run=True)
    finally:
        cache.close()
    return cache, report


def _same(a, b, names):
    for name in names:
        ea, eb = a.entry(name), b.entry(name)
        assert (ea.ok, ea.verdict.trusted, ea.verdict.reasons, ea.params) == \
               (eb.ok, eb.verdict.trusted, eb.verdict.reasons, eb.params), name
        assert ea.forecast.equals(eb.forecast), name


def _plans(report):
    return [(o.workload, o.plan.target_replicas, o.plan.forecast_trusted) for o in report.outcomes]


def test_dask_in_process_cluster_equals_inline_with_warm_start():
    policy, source, now = _setup(3)
    names = [w.name for w in policy.workloads]
    inline, r_inline = _run(policy, source, now, InlineExecutor(), constant_factory)
    dask_ex = DaskExecutor(workers=1, processes=False)
    cache = ParallelForecasterCache(dask_ex, constant_factory)
    def read(w):  # as the controller reads it
        start, end = demand_history_range(w, now)
        return label_demand_history(source.range(w.demand.query, start, end, STEP), w), None

    try:
        cache.refit_due_batch(policy, now, read)
        w = policy.workloads[0]
        job = cache._job(w, policy.events, read(w)[0], now + timedelta(hours=6))
        assert job.init == inline.entry(w.name).params
        (second,) = list(dask_ex.run([job]))
        assert second.ok and second.warm_started
    finally:
        cache.close()
    _same(inline, cache, names)


@pytest.mark.slow
def test_real_model_same_results_on_local_processes_and_a_dask_cluster():
    policy, source, now = _setup(3)
    names = [w.name for w in policy.workloads]
    local, r_local = _run(policy, source, now, ProcessExecutor(2))
    dask, r_dask = _run(policy, source, now, DaskExecutor(workers=2, processes=True))
    _same(local, dask, names)
    assert _plans(r_local) == _plans(r_dask)
    assert all(o.plan is not None for o in r_dask.outcomes)


def test_unreachable_scheduler_is_an_error_naming_it():
    ex = DaskExecutor("tcp://127.0.0.1:1", connect_timeout_s=2)
    with pytest.raises(EbbtideError, match="tcp://127.0.0.1:1"):
        list(ex.run([]))
    ex.close()


def test_a_closed_client_connects_again_and_a_missing_dask_says_how_to_install_it(monkeypatch):
    """A scheduler restart closes the client for good: every later refit failed on it ("Client
    is closed", a traceback each tick) until the controller restarted. Without dask.distributed
    the run raised ModuleNotFoundError before the message saying what to install."""
    policy, source, now = _setup(1)
    w = policy.workloads[0]
    start, end = demand_history_range(w, now)
    history = label_demand_history(source.range(w.demand.query, start, end, STEP), w)
    ex = DaskExecutor(workers=1, processes=False)
    cache = ParallelForecasterCache(ex, constant_factory)
    try:
        job = cache._job(w, policy.events, history, now)
        (first,) = list(ex.run([job]))
        ex._client.close()  # what a scheduler restart leaves behind
        (again,) = list(ex.run([job]))
        assert first.ok and again.ok and ex._client.status == "running"
    finally:
        cache.close()
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    with pytest.raises(EbbtideError, match=r"pip install 'dask\[distributed\]'"):
        list(DaskExecutor(workers=1, processes=False).run([]))
