"""The parallel fitting engine (scaler/fitting.py) with a cheap fake model.

Cases:
- refit_phase: equals the SHA-256 of the name mod the interval (hand-computed), stable, in
  [0, interval); 1,000 names spread over a 6 h interval (every half-hour bin holds 5-13% of
  them, expected 8.3%);
- schedule: 41 workloads ticked every 5 minutes for 12 h: each refits at start and then exactly
  once per interval, at its own phase (next_scheduled_refit), never more than 4 in one tick;
- a failed fit keeps the warm start and is retried after FIT_RETRY, not at its slot;
- a forecast whose points are all over (refits stopped: a wedged executor) is not used: the
  verdict is untrusted, says "refit overdue", and the planner sizes reactively;
- warm start: the second refit passes the first fit's params as `init` (the model saw them) and
  the result says warm_started; changed settings drop the warm start;
- CompactForecast: float32 arrays, 12 bytes per point, slice_at agrees with the pandas slicing
  of LiveForecasterCache for several `now`s, an exhausted forecast gives None;
- the cache's forecasts equal LiveForecasterCache's on the same history (same model, same now);
- bounded concurrency: bounded_map and the batch refit's history reads never exceed the bound
  and do reach it (a source that blocks until `bound` calls are in flight); a tick with
  query_concurrency=4 plans exactly like a sequential one and hits Prometheus once per query;
- a dead Prometheus costs a bounded number of calls in a prefetched tick, and the tick holds;
- ProcessExecutor: same entries as inline (slow: spawns workers), and a worker that dies gives a
  failed outcome, after which the pool is replaced and fits again;
- Controller integration: refit_due and tick(fit=True) go through refit_due_batch; no fit job
  runs during a tick with cached models;
- forecaster_cache (what `ebbtide run` builds): each bad value raises an error naming its flag,
  including a scheduler with an executor other than dask.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from controller_fakes import (
    DEMAND_Q,
    NOW,
    Clock,
    ConstantModel,
    DownSource,
    FailingModel,
    FakeCluster,
    flat_source,
    load_policy_text,
    policy_yaml,
    series,
)

from forecaster.series import Forecast
from policies.events import Event
from scaler.controller import FIT_RETRY, Controller, LiveForecasterCache
from scaler.fitting import (
    CompactForecast,
    InlineExecutor,
    ParallelForecasterCache,
    ProcessExecutor,
    bounded_map,
    next_scheduled_refit,
    refit_phase,
    tick_queries,
)

SIX_H = timedelta(hours=6)


# --------------------------------------------------------------------------- model factories
# Module-level (picklable by reference): spawned workers import this module to find them.
def constant_factory(workload, events):
    return ConstantModel


def failing_factory(workload, events):
    return FailingModel


class _DyingModel(ConstantModel):
    def fit(self, history, init=None):
        os._exit(3)  # the worker process dies mid-fit


def dying_factory(workload, events):
    return _DyingModel


class _SlowModel(ConstantModel):
    def fit(self, history, init=None):
        time.sleep(0.3)  # still in flight, or not yet sent, when another worker dies
        return super().fit(history, init)


def first_dies_factory(workload, events):
    return _DyingModel if workload.name == "w000" else _SlowModel


def many_workloads_policy(n: int, *, refit: str = "6h") -> object:
    extra = "".join(
        f"""  - name: w{i:03d}
    target: {{kind: Deployment, namespace: live, name: w{i:03d}}}
    demand: {{query: 'sum(viewers{{w="{i}"}})', per_replica: 100}}
    scaling: {{min_replicas: 1, max_replicas: 50}}
    forecast: {{lookback: 8d, step: 5m, horizon: 6h, refit_interval: {refit}, min_history: 7d}}
""" for i in range(n))
    return load_policy_text(policy_yaml(sli=False, extra_workload=extra))


def history_of(level: float = 500.0, days: float = 8):
    n = int(timedelta(days=days) / timedelta(minutes=5))
    return series([level] * n, end=NOW - timedelta(minutes=5), name=DEMAND_Q)


# --------------------------------------------------------------------------- stagger
def test_refit_phase_is_the_sha256_of_the_name():
    h = int.from_bytes(hashlib.sha256(b"edge").digest()[:8], "big")
    assert refit_phase("edge", SIX_H) == timedelta(seconds=h % 21600)
    assert refit_phase("edge", SIX_H) == refit_phase("edge", SIX_H)
    assert refit_phase("edge", SIX_H) != refit_phase("edge-2", SIX_H)


def test_refit_phases_spread_over_the_interval():
    phases = [refit_phase(f"team-{i}/edge", SIX_H).total_seconds() for i in range(1000)]
    assert all(0 <= p < 21600 for p in phases)
    counts = np.bincount(np.array(phases, dtype=int) // 1800, minlength=12)
    assert len(counts) == 12
    assert counts.min() >= 50 and counts.max() <= 130, counts


@pytest.mark.slow
def test_each_workload_refits_once_per_interval_at_its_own_phase():
    policy = many_workloads_policy(40)
    cache = ParallelForecasterCache(InlineExecutor(), constant_factory)
    history = history_of()
    refit_times: dict[str, list] = {w.name: [] for w in policy.workloads}
    per_tick = []
    t = NOW
    for _ in range(12 * 12 + 1):
        outcomes = cache.refit_due_batch(policy, t, lambda w: (history, None))
        per_tick.append(len(outcomes))
        for o in outcomes:
            refit_times[o.workload].append(t)
        t += timedelta(minutes=5)
    assert per_tick[0] == len(policy.workloads)  # the first fit: everything at once
    assert max(per_tick[1:]) <= 4  # 41 workloads over 72 five-minute ticks: spread, not bunched
    for w in policy.workloads:
        times = refit_times[w.name]
        assert len(times) == 3, (w.name, times)  # start, then once in each 6 h interval
        first = next_scheduled_refit(w.name, w.forecast.refit_interval, NOW)
        # Ticks are 5 minutes apart: the refit happens at the first tick at/after its moment.
        assert first <= times[1] < first + timedelta(minutes=5)
        assert times[2] - times[1] == w.forecast.refit_interval


def test_a_failed_fit_is_retried_after_fit_retry_with_the_warm_start_kept():
    policy = many_workloads_policy(0)
    w = policy.workloads[0]
    cache = ParallelForecasterCache(InlineExecutor(), constant_factory)
    cache.refit(w, policy.events, history_of(), NOW)
    params = cache.entry(w.name).params
    cache.factory = failing_factory
    later = next_scheduled_refit(w.name, w.forecast.refit_interval, NOW)
    outcome = cache.refit(w, policy.events, history_of(), later)
    assert not outcome.ok and "Stan optimizer failed" in outcome.message
    entry = cache.entry(w.name)
    assert entry.params == params and entry.forecast is None
    assert cache.forecast(w, later).forecast is None  # reactive, and says why
    assert not cache.due(w, policy.events, later + FIT_RETRY - timedelta(seconds=1))
    assert cache.due(w, policy.events, later + FIT_RETRY)


def test_an_exhausted_forecast_is_not_trusted_and_says_the_refit_is_overdue():
    policy = many_workloads_policy(0)
    w = policy.workloads[0]
    cache = ParallelForecasterCache(InlineExecutor(), constant_factory)
    cache.refit(w, policy.events, history_of(), NOW)
    reach = w.forecast.horizon + w.forecast.refit_interval  # what one refit predicts
    inside = cache.forecast(w, NOW + reach - timedelta(hours=1))
    assert inside.trusted and inside.forecast is not None
    over = cache.forecast(w, NOW + reach + timedelta(hours=1))
    assert not over.trusted and over.forecast is None
    assert over.reasons == (f"forecast from {NOW.isoformat()} has no point at or after now (refit overdue)",)


class _NaNModel(ConstantModel):
    """Predicts NaN (a numerical failure inside a fit that raised nothing)."""

    def predict(self, index):
        fc = super().predict(index)
        fc.frame.loc[:, :] = np.nan
        return fc


def nan_factory(workload, events):
    return _NaNModel


def test_a_refit_predicting_nan_fails_and_leaves_nothing_behind():
    """A warm refit is judged on the forecasts issued before it, not on its own: one predicting
    NaN was stored ok and trusted (ebbtide_forecast_demand NaN) and, kept among the forecasts
    issued, failed every later refit's trust check for 18 h (the fitting-engine sweep)."""
    policy = load_policy_text(policy_yaml(sli=True))
    clock = Clock(NOW)
    cache = ParallelForecasterCache(InlineExecutor(), constant_factory)
    controller = Controller(clock, flat_source(500.0, days=9, end=NOW + timedelta(hours=14)),
                            FakeCluster({"edge": 10}), cache)
    assert [o.ok for o in controller.refit_due(policy)] == [True]
    clock.t = NOW + timedelta(hours=6, minutes=1)
    cache.factory = nan_factory
    (bad,) = controller.refit_due(policy)
    assert not bad.ok and "points that are not finite (NaN or infinite)" in bad.message
    assert not cache.forecast(policy.workloads[0], clock.t).trusted
    assert all(np.isfinite(c.to_forecast().frame.to_numpy()).all() for c in cache.entry("edge").issued)
    clock.t = NOW + timedelta(hours=12, minutes=1)
    cache.factory = constant_factory
    (good,) = controller.refit_due(policy)  # the next refit is not failed by what the bad one left
    assert good.ok and good.trusted


# --------------------------------------------------------------------------- warm start
def test_the_second_refit_is_warm_started_from_the_first_params():
    made: list[ConstantModel] = []

    def factory(workload, events):
        def make():
            m = ConstantModel()
            made.append(m)
            return m
        return make

    policy = many_workloads_policy(0)
    w = policy.workloads[0]
    cache = ParallelForecasterCache(InlineExecutor(), factory)
    first = list(cache.executor.run([cache._job(w, policy.events, history_of(500), NOW)]))[0]
    cache._store(first)
    assert not first.warm_started and first.params == {"level": 500.0}
    job = cache._job(w, policy.events, history_of(700), NOW + SIX_H)
    assert job.init == {"level": 500.0}
    second = list(cache.executor.run([job]))[0]
    assert second.warm_started
    assert made[-1].init_seen == {"level": 500.0}  # the model of the fit (not the trust check's)
    assert second.params == {"level": 700.0}
    # New settings (here a new horizon): the old params do not fit the new model -> cold.
    changed = w.model_copy(update={"forecast": w.forecast.model_copy(update={"horizon": timedelta(hours=3)})})
    assert cache._job(changed, policy.events, history_of(), NOW + SIX_H).init is None


# --------------------------------------------------------------------------- compact forecasts
def _forecast(n: int = 30, start=NOW, step=timedelta(minutes=5)) -> Forecast:
    idx = pd.date_range(pd.Timestamp(start), periods=n, freq=pd.Timedelta(step))
    y = np.linspace(100.0, 400.0, n)
    return Forecast(pd.DataFrame({"yhat": y, "yhat_lower": 0.8 * y, "yhat_upper": 1.2 * y}, index=idx),
                    "m", 0.9, 0.1, ("note",))


def test_compact_forecast_is_float32_and_slices_like_the_live_cache():
    fc = _forecast()
    c = CompactForecast.of(fc)
    assert c.yhat.dtype == np.float32 and c.nbytes == 30 * 3 * 4
    assert np.allclose(c.to_forecast().frame.to_numpy(), fc.frame.to_numpy(), rtol=1e-6)
    horizon = timedelta(minutes=37)
    for offset_s in (-600, 0, 1, 299, 300, 301, 3600, 30 * 300 - 1):
        now = NOW + timedelta(seconds=offset_s)
        step = pd.Timedelta(minutes=5)
        lo = fc.index.searchsorted(pd.Timestamp(now) - step, side="right")
        hi = fc.index.searchsorted(pd.Timestamp(now) + pd.Timedelta(horizon), side="left")
        got = c.slice_at(now, horizon)
        assert got is not None and got.index.equals(fc.index[lo:hi]), offset_s
    assert c.slice_at(NOW + timedelta(minutes=5 * 30), horizon) is None


def test_cache_forecasts_equal_the_live_cache_on_the_same_history():
    policy = load_policy_text(policy_yaml())
    w = policy.workloads[0]
    live = LiveForecasterCache(constant_factory)
    mine = ParallelForecasterCache(InlineExecutor(), constant_factory)
    h = history_of(432.5)
    a, b = live.refit(w, policy.events, h, NOW), mine.refit(w, policy.events, h, NOW)
    assert (a.ok, a.trusted, a.message) == (b.ok, b.trusted, b.message)
    for minutes in (0, 7, 120):
        now = NOW + timedelta(minutes=minutes)
        fa, fb = live.forecast(w, now), mine.forecast(w, now)
        assert fa.trusted == fb.trusted and fa.reasons == fb.reasons
        pd.testing.assert_frame_equal(fa.forecast.frame, fb.forecast.frame, check_freq=False)


def test_a_forecast_fitted_before_a_reload_changed_the_workload_or_events_is_not_trusted():
    """After a reload adds an event (or changes per_replica), the cached forecast was served as
    trusted until the workload's refit (minutes at 1,000 workloads): a scale-in a minute before
    the new event's ramp (a sweep of the fitting engine). Both caches now answer untrusted, so the
    planner holds near the event's start and sizes reactively until the refit."""
    policy = load_policy_text(policy_yaml())
    w = policy.workloads[0]
    sale = Event(name="flash", kind="sale", start=NOW + timedelta(minutes=1), peak=NOW + timedelta(hours=1),
                 end=NOW + timedelta(hours=2))
    other = w.model_copy(update={"demand": w.demand.model_copy(update={"per_replica": w.demand.per_replica * 2})})
    for cache in (LiveForecasterCache(constant_factory), ParallelForecasterCache(InlineExecutor(), constant_factory)):
        assert cache.refit(w, policy.events, history_of(432.5), NOW).trusted
        assert cache.forecast(w, NOW, events=policy.events).trusted
        assert cache.forecast(w, NOW).trusted  # no events given: as before
        for changed_w, changed_events in ((w, [*policy.events, sale]), (other, policy.events)):
            stale = cache.forecast(changed_w, NOW, events=changed_events)
            assert not stale.trusted and stale.forecast is None
            assert "changed (reload): sized reactively until its refit" in stale.reasons[0]
            assert cache.due(changed_w, changed_events, NOW)
        cache.refit(w, [*policy.events, sale], history_of(432.5), NOW)
        assert cache.forecast(w, NOW, events=[*policy.events, sale]).trusted


# --------------------------------------------------------------------------- bounded concurrency
class BlockingSource:
    """A MetricsSource over `inner` that records calls in flight; the first `bound` calls wait
    until `bound` are in flight at once (or 5 s), so reaching the bound is not left to chance."""

    def __init__(self, inner, bound: int):
        self.inner, self.bound = inner, bound
        self.in_flight = self.max_in_flight = self.calls = 0
        self.lock = threading.Lock()
        self.reached = threading.Event()

    def reset(self):
        self.in_flight = self.max_in_flight = self.calls = 0
        self.reached.clear()

    def _enter(self):
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.in_flight >= self.bound:
                self.reached.set()
        self.reached.wait(5.0)

    def _leave(self):
        with self.lock:
            self.in_flight -= 1

    def range(self, *a):
        self._enter()
        try:
            return self.inner.range(*a)
        finally:
            self._leave()

    def instant(self, *a):
        self._enter()
        try:
            return self.inner.instant(*a)
        finally:
            self._leave()


def test_bounded_map_keeps_order_and_never_exceeds_the_bound():
    src = BlockingSource(None, 3)

    def call(i):
        src._enter()
        src._leave()
        return i * i

    assert list(bounded_map(call, list(range(20)), 3)) == [(i, i * i) for i in range(20)]
    assert src.max_in_flight == 3


def test_batch_refit_reads_histories_with_at_most_the_bound_in_flight():
    policy = many_workloads_policy(12)
    inner = flat_source(500)
    from forecaster.history import StaticMetricsSource

    data = {w.demand.query: inner.range(DEMAND_Q, NOW - timedelta(days=8), NOW, timedelta(minutes=5))
            for w in policy.workloads}
    src = BlockingSource(StaticMetricsSource(data), 4)
    cache = ParallelForecasterCache(InlineExecutor(), constant_factory, query_concurrency=4)
    controller = Controller(Clock(), src, FakeCluster({w.name: 5 for w in policy.workloads}), cache)
    outcomes = controller.refit_due(policy)
    assert len(outcomes) == len(policy.workloads) and all(o.ok for o in outcomes)
    assert src.max_in_flight == 4 and src.calls == len(policy.workloads)


def test_prefetched_tick_plans_like_a_sequential_one():
    policy = many_workloads_policy(6)
    reports = []
    for concurrency in (1, 4):
        src = BlockingSource(flat_source(900), concurrency)
        cache = ParallelForecasterCache(InlineExecutor(), constant_factory)
        controller = Controller(Clock(), src, FakeCluster({w.name: 20 for w in policy.workloads}), cache,
                                query_concurrency=concurrency)
        controller.refit_due(policy)
        src.reset()
        reports.append(controller.tick(policy, dry_run=True))
        assert src.max_in_flight == concurrency
        assert src.calls == len(tick_queries(policy, NOW))  # each query once (memoised)
    a, b = reports
    assert [(o.workload, o.plan.target_replicas, o.plan.reasons) for o in a.outcomes] == \
           [(o.workload, o.plan.target_replicas, o.plan.reasons) for o in b.outcomes]


def test_a_dead_prometheus_costs_at_most_the_bound_in_a_prefetched_tick():
    policy = many_workloads_policy(20)
    src = DownSource()
    cache = ParallelForecasterCache(InlineExecutor(), constant_factory)
    controller = Controller(Clock(), src, FakeCluster({w.name: 20 for w in policy.workloads}), cache,
                            query_concurrency=4)
    report = controller.tick(policy, dry_run=True)
    assert src.calls <= 4  # only those already in flight when the first refusal came back
    assert all(o.held for o in report.outcomes)
    assert all(o.plan.target_replicas == 20 for o in report.outcomes)  # no scale-in blind


# --------------------------------------------------------------------------- controller integration
def test_a_reload_declaring_an_event_a_minute_away_scales_nothing_in_before_the_refit():
    """The sweep's reproducer: fitted at 12:00 without the event; at 18:00 a reload declares a
    sale whose ramp starts at 18:01. The tick before the refit planned 10 -> 9 on the old forecast
    (served as trusted); now it holds 10, as with no forecast at all."""
    event = ("events:\n  - {name: flash-sale, kind: sale, start: '2026-11-20T18:01:00Z', "
             "peak: '2026-11-20T19:00:00Z', end: '2026-11-20T21:00:00Z'}\n")
    before, after = load_policy_text(policy_yaml(sli=True)), load_policy_text(event + policy_yaml(sli=True))
    clock = Clock(NOW)
    controller = Controller(clock, flat_source(500.0, days=9, end=NOW + timedelta(hours=7)),
                            FakeCluster({"edge": 10}), ParallelForecasterCache(InlineExecutor(), constant_factory))
    controller.refit_due(before)
    clock.t = NOW + timedelta(hours=6)
    plan = controller.tick(after, dry_run=False).outcomes[0].plan
    assert not plan.forecast_trusted and plan.target_replicas == 10
    assert "no scale-in within 2m of the start of event flash-sale" in next(
        s.reason for s in plan.steps if s.name == "event")


def test_controller_refits_through_the_batch_and_ticks_without_fitting():
    policy = load_policy_text(policy_yaml())
    src = flat_source(900)
    ex = InlineExecutor()
    jobs = []
    run = ex.run

    def counting(js, max_in_flight=None):
        for r in run(js, max_in_flight):
            jobs.append(r.workload)
            yield r

    ex.run = counting
    cache = ParallelForecasterCache(ex, constant_factory)
    clock = Clock()
    controller = Controller(clock, src, FakeCluster({"edge": 20}), cache)
    report = controller.tick(policy, dry_run=True, fit=True)  # --once: fit included
    assert [r.workload for r in report.refits] == ["edge"] and jobs == ["edge"]
    assert report.outcomes[0].plan.forecast_trusted
    for _ in range(5):
        clock.advance(timedelta(minutes=1))
        controller.tick(policy, dry_run=True)
    assert jobs == ["edge"]  # cached: no fit during ticks
    assert controller.refit_due(policy) == []  # not due yet


# --------------------------------------------------------------------------- local processes
def _entries_equal(a: ParallelForecasterCache, b: ParallelForecasterCache, names) -> None:
    for name in names:
        ea, eb = a.entry(name), b.entry(name)
        assert (ea.ok, ea.verdict.trusted, ea.verdict.reasons, ea.params) == \
               (eb.ok, eb.verdict.trusted, eb.verdict.reasons, eb.params)
        assert ea.forecast.equals(eb.forecast)


@pytest.mark.slow
def test_process_executor_gives_the_inline_results_and_survives_a_dying_worker():
    policy = many_workloads_policy(4)
    h = {w.name: history_of(100.0 + 10 * i) for i, w in enumerate(policy.workloads)}
    inline = ParallelForecasterCache(InlineExecutor(), constant_factory)
    procs = ParallelForecasterCache(ProcessExecutor(2), constant_factory)
    try:
        for cache in (inline, procs):
            outs = cache.refit_due_batch(policy, NOW, lambda w: (h[w.name], None))
            assert sorted(o.workload for o in outs) == sorted(h)
        _entries_equal(inline, procs, h)
        w = policy.workloads[0]
        procs.factory = dying_factory
        died = procs.refit(w, policy.events, h[w.name], NOW + SIX_H)
        assert not died.ok and "worker failed" in died.message
        procs.factory = constant_factory
        again = procs.refit(w, policy.events, h[w.name], NOW + SIX_H)
        assert again.ok
    finally:
        procs.close()


def test_a_dying_worker_fails_the_jobs_in_flight_not_the_whole_batch():
    """A worker killed mid-fit (out of memory) broke the pool, and every pending workload of the
    batch failed with it (40 of 40 in the sweep), each sized reactively until its retry. Now the
    jobs in flight fail and the rest run on a new pool."""
    policy = many_workloads_policy(11)
    names = sorted(w.name for w in policy.workloads)
    dies = "w000"
    procs = ParallelForecasterCache(ProcessExecutor(2), first_dies_factory)
    try:
        outs = {o.workload: o for o in procs.refit_due_batch(policy, NOW, lambda w: (history_of(100.0), None))}
    finally:
        procs.close()
    assert sorted(outs) == names and not outs[dies].ok
    failed = [n for n, o in outs.items() if not o.ok]
    assert len(failed) <= 4, failed  # the dying job and those in flight with it (2 workers x 2)
    assert sum(o.ok for o in outs.values()) >= len(names) - 4


def test_a_job_that_kills_every_pool_starts_at_most_pool_restarts_new_ones(monkeypatch):
    """Every fit kills its worker: one run starts its first pool and at most POOL_RESTARTS more,
    then fails the rest at once (a new pool for every later job would start pools without end)."""
    import concurrent.futures

    from scaler.fitting import POOL_RESTARTS

    made = []

    class Counting(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *a, **k):
            made.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Counting)
    policy = many_workloads_policy(9)
    procs = ParallelForecasterCache(ProcessExecutor(1), dying_factory)
    try:
        outs = procs.refit_due_batch(policy, NOW, lambda w: (history_of(100.0), None))
    finally:
        procs.close()
    assert len(outs) == 10 and not any(o.ok for o in outs)
    assert len(made) == 1 + POOL_RESTARTS


def test_fit_result_of_too_little_history_is_reactive():
    policy = load_policy_text(policy_yaml())
    w = policy.workloads[0]
    cache = ParallelForecasterCache(InlineExecutor(), constant_factory)
    out = cache.refit(w, policy.events, history_of(days=2), NOW)
    assert out.ok
    fc = cache.forecast(w, NOW)
    assert fc.forecast is None and not fc.trusted and "need 7d" in fc.reasons[0]
    assert cache.entry(w.name).params is None and cache.entry(w.name).issued == ()


def test_forecaster_cache_flags_are_checked_with_their_names():
    from policies.errors import EbbtideError
    from scaler.fitting import DaskExecutor, forecaster_cache

    assert isinstance(forecaster_cache().executor, ProcessExecutor)
    assert isinstance(forecaster_cache("dask", scheduler="tcp://s:8786").executor, DaskExecutor)
    for kw, flag in (({"fit_workers": 0}, "--fit-workers"), ({"query_concurrency": 0}, "--query-concurrency"),
                     ({"scheduler": "tcp://s:8786"}, "--scheduler"), ({"executor": "spark"}, "--executor"),
                     ({"executor": "inline", "scheduler": "tcp://s:8786"}, "--scheduler is for --executor dask")):
        with pytest.raises(EbbtideError, match=flag):
            forecaster_cache(**kw)
