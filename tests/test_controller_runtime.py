"""The running controller when the process, its clock or one workload misbehaves (a sweep of
scaler/loop.py, scaler/metrics.py and the planner memory, 2026-11-24).

Cases:
- one workload whose tick raises something unforeseen (a ValueError from a 200 answer that is
  not JSON) leaves the others planned, applied and saved; it is reported, counted as
  `ebbtide_errors_total{kind="workload"}`, and its plan gauges are withdrawn (`data_ok` 0, no
  guard or trust series) while `ebbtide_last_plan_timestamp_seconds` stays at its last plan;
- a Lease renewal that fails mid-tick: the workloads after it are planned in dry-run and the
  memory is not saved (the leader stops writing at its first failed renewal);
- stopping mid-tick: the tick ends after the workload it is on (also SIGTERM during `run --once`,
  which killed the process mid-apply); in the scheduled loop, SIGTERM's
  stop() keeps renewing the Lease until that workload's apply has ended, and the workloads
  after it are not applied;
- a wall clock stepped back an hour: check_clock() sets every job to run now (APScheduler 3.x
  would sleep the hour out: no tick, no Lease renewal), and the next tick runs;
- a policy replaced by one of the same size with its mtime kept (cp -p, rsync -t) is reloaded;
- planner memory dated after now (a leader whose clock ran an hour ahead, or a hand-edited
  `saved_at` in year 9999): restored without the future times (a breach scale-up goes ahead as
  on a fresh start, where it waited an hour "for the last scale-up's pods") and without a
  traceback (the year-9999 save raised OverflowError and stopped every tick);
- a saved memory with a field this release does not know (written by a later one) is read;
- the memory saved keeps only the recommendations stabilisation can still pick: any later
  decision is the same on them as on the whole window (hypothesis), and a steady workload at a
  15 s tick with a 10-minute window saves 1 of its 40; a save that would take the ConfigMap over
  1,000,000 bytes of data is refused before it is sent, with the sizes in the message;
- ticks longer than their interval: the savings estimate counts the time since the workload's
  last plan (2 ticks after a skipped one, at most 4 after a long gap), and
  `ebbtide_ticks_skipped_total` counts the scheduled ticks APScheduler did not start; each
  workload done moves /healthz's clock (a long tick was killed by the liveness probe mid-apply).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import apscheduler.schedulers.base as ap_base
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import controller_fakes as f
from policies.errors import EbbtideError
from policies.loading import load_policy_text
from scaler import loop as loop_module
from scaler.controller import Controller, LiveForecasterCache
from scaler.loop import ControllerLoop, PolicyStore, stopping_on_signals
from scaler.memories import decode_memory, encode_memory, for_saving, restore_memory
from scaler.memory_store import ConfigMapMemoryStore, InMemoryMemoryStore
from scaler.metrics import ControllerMetrics, Health
from scaler.plans import PlannerMemory
from scaler.safety import prune_recommendations, stabilise

THREE = ("edge", "a", "b")


def three_workloads(**kw):
    return f.make_policy(sli=False, extra_workload=f.more_workloads("a", "b"), **kw)


def make_controller(cluster, *, source=None, store=None, clock=None):
    metrics = ControllerMetrics()
    c = Controller(clock or f.Clock(), source or f.flat_source(3000), cluster,
                   LiveForecasterCache(f.factory_of(f.ConstantModel)), metrics=metrics, memory_store=store)
    return c, metrics




# --------------------------------------------------------------------------- one workload fails
class _RaisingOn(f.FakeCluster):
    raise_on: str = ""

    def read(self, workload, bitrate_target):
        if workload.name == self.raise_on:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")  # json.loads of an HTML 200 page
        return super().read(workload, bitrate_target)


def test_one_workload_that_raises_leaves_the_others_planned_applied_and_saved():
    cluster = _RaisingOn({n: 10 for n in THREE})
    cluster.raise_on = "a"
    store = InMemoryMemoryStore()
    c, metrics = make_controller(cluster, store=store)
    report = c.tick(three_workloads(), dry_run=False)
    # demand 3000 / 100 per pod x 1.1 headroom = 33 for each workload that could be planned
    assert cluster.replicas == {"edge": 33, "a": 10, "b": 33}
    failed = {o.workload: o for o in report.outcomes}["a"]
    assert failed.plan is None and "ValueError" in failed.error and "other workloads go on" in failed.error
    assert not report.ok
    assert metrics.value("ebbtide_errors_total", {"kind": "workload"}) == 1
    assert metrics.value("ebbtide_errors_total", {"kind": "tick"}) == 0
    assert sorted(store.texts) == ["b", "edge"]  # the tick saved the memories it made
    assert metrics.value("ebbtide_data_ok", {"workload": "a"}) == 0
    assert metrics.value("ebbtide_planned_replicas", {"workload": "b"}) == 33


def test_an_unplanned_workload_withdraws_its_plan_gauges():
    """The Deployment is gone: the last plan's guard (on: SLI in breach) must not stay exported
    as current, or EbbtideQualityGuardActive fires for ever."""
    cluster = f.FakeCluster({"edge": 30})
    c, metrics = make_controller(cluster, source=f.flat_source(3000, sli=0.05))
    policy = f.make_policy()
    c.tick(policy, dry_run=False)
    labels = {"workload": "edge"}
    assert metrics.value("ebbtide_quality_guard_active", labels) == 1
    assert metrics.value("ebbtide_data_ok", labels) == 1
    planned_at = metrics.value("ebbtide_last_plan_timestamp_seconds", labels)
    assert planned_at is not None
    cluster.fail_read = True
    c.clock.advance(timedelta(minutes=1))
    report = c.tick(policy, dry_run=False)
    assert report.outcomes[0].plan is None
    assert metrics.value("ebbtide_quality_guard_active", labels) is None
    assert metrics.value("ebbtide_forecast_trusted", labels) is None
    assert metrics.value("ebbtide_observed_demand", labels) is None
    assert metrics.value("ebbtide_current_replicas", labels) is None
    assert metrics.value("ebbtide_data_ok", labels) == 0
    assert metrics.value("ebbtide_planned_replicas", labels) == 33  # the last plan's target, as documented
    assert metrics.value("ebbtide_last_plan_timestamp_seconds", labels) == planned_at


# --------------------------------------------------------------------------- leadership and stopping
def test_a_renewal_lost_mid_tick_makes_the_rest_of_the_tick_dry_run():
    cluster = f.FakeCluster({n: 10 for n in THREE})
    store = InMemoryMemoryStore()
    c, _ = make_controller(cluster, store=store)
    c.still_leader = lambda: len(cluster.applies) < 1  # the renewal fails while edge is applied
    report = c.tick(three_workloads(), dry_run=False)
    assert [(w, dry) for w, _, dry in cluster.applies] == [("edge", False), ("a", True), ("b", True)]
    assert cluster.replicas == {"edge": 33, "a": 10, "b": 10}
    assert [o.wrote for o in report.outcomes] == [True, False, False]
    assert store.writes == 0  # the store now belongs to the new leader


def test_stopping_mid_tick_ends_the_tick_after_the_workload_it_is_on():
    class StopsOnFirstApply(f.FakeCluster):
        controller = None

        def apply(self, plan, workload, bitrate_target, dry_run, *, state=None):
            self.controller.stopping.set()  # SIGTERM arrives while edge is applied
            return super().apply(plan, workload, bitrate_target, dry_run, state=state)

    cluster = StopsOnFirstApply({n: 10 for n in THREE})
    c, _ = make_controller(cluster)
    cluster.controller = c
    report = c.tick(three_workloads(), dry_run=False)
    assert [o.workload for o in report.outcomes] == ["edge"]
    assert cluster.replicas == {"edge": 33, "a": 10, "b": 10}


def test_stop_keeps_the_lease_until_the_running_apply_ends(tmp_path):
    """SIGTERM during a slow tick (0.6 s per apply): stop() must not end the Lease renewals while
    the tick may still write (another replica would lead and write too), and the tick must not
    go on through every workload (the grace period would SIGKILL it mid-apply)."""
    renewals, writes = [], []
    started = threading.Event()

    class Counting:
        def try_acquire_or_renew(self, now):
            renewals.append(time.monotonic())
            return True

    class Slow(f.FakeCluster):
        def apply(self, plan, workload, bitrate_target, dry_run, *, state=None):
            started.set()
            time.sleep(0.6)
            out = super().apply(plan, workload, bitrate_target, dry_run, state=state)
            writes.append(time.monotonic())
            return out

    path = tmp_path / "policy.yaml"
    path.write_text(f.policy_yaml(tick="1m", sli=False, extra_workload=f.more_workloads("a", "b")))
    metrics = ControllerMetrics()
    cluster = Slow({n: 10 for n in THREE})
    c, _ = make_controller(cluster)
    loop = ControllerLoop(PolicyStore(path, metrics), c, metrics=metrics, health=Health(), elector=Counting(),
                          renew_interval_s=0.05)
    loop.start()
    assert started.wait(10)
    stop_called = time.monotonic()
    loop.stop()
    assert len(cluster.applies) == 1 and len(writes) == 1  # edge's apply ended; a and b were not applied
    assert any(stop_called < t < writes[0] for t in renewals)  # renewed while that apply ran out
    assert metrics.value("ebbtide_up") == 0


# --------------------------------------------------------------------------- the wall clock
def test_a_wall_clock_stepped_back_reschedules_every_job_to_now(tmp_path, monkeypatch):
    step = [timedelta(0)]

    class Stepped(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) - step[0]

    # The system clock as APScheduler and the loop read it, stepped as `date -s` would.
    monkeypatch.setattr(ap_base, "datetime", Stepped)
    monkeypatch.setattr(loop_module, "datetime", Stepped)
    path = tmp_path / "policy.yaml"
    path.write_text(f.policy_yaml(tick="1m"))
    metrics = ControllerMetrics()
    c, _ = make_controller(f.FakeCluster({"edge": 10}), clock=f.Clock())
    loop = ControllerLoop(PolicyStore(path, metrics), c, metrics=metrics, health=Health())
    loop._wall = lambda: time.time() - step[0].total_seconds()
    loop.start()
    try:
        assert f.wait_for(lambda: loop.health.ticks_done >= 1)
        assert loop.check_clock() is False  # the first look only takes the offset
        step[0] = timedelta(hours=1)
        job = loop._scheduler.get_job("tick")
        assert job.next_run_time - Stepped.now(timezone.utc) > timedelta(minutes=60)  # an hour of no ticks
        assert loop.check_clock() is True
        assert f.wait_for(lambda: loop.health.ticks_done >= 2)  # the tick ran at once, on the new wall time
        job = loop._scheduler.get_job("tick")
        assert job.next_run_time - Stepped.now(timezone.utc) <= timedelta(minutes=1)
        assert loop.check_clock() is False  # said once per step
    finally:
        loop.stop()


def test_a_policy_replaced_with_the_same_size_and_mtime_is_reloaded(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(f.policy_yaml(max_replicas=50))
    st = os.stat(path)
    store = PolicyStore(path)
    staged = tmp_path / "staged.yaml"
    staged.write_text(f.policy_yaml(max_replicas=90))  # the same length as 50
    assert staged.stat().st_size == st.st_size
    os.utime(staged, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p or rsync -t keep it
    os.replace(staged, path)
    assert store.poll() is True
    assert store.current().workloads[0].scaling.max_replicas == 90


# --------------------------------------------------------------------------- memory from the future
def _breach_scale_up(store):
    text = f.policy_yaml().replace("threshold: 0.02}", "threshold: 0.02, on_breach: [freeze_scale_in, scale_up]}")
    cluster = f.FakeCluster({"edge": 40})  # demand 3000 needs 33: only the guard adds pods
    c, metrics = make_controller(cluster, source=f.flat_source(3000, sli=0.05), store=store)
    plan = c.tick(load_policy_text(text), dry_run=False).outcomes[0].plan
    return plan.target_replicas, metrics


def test_a_memory_saved_by_a_clock_an_hour_ahead_does_not_hold_back_a_breach_scale_up():
    fresh, _ = _breach_scale_up(InMemoryMemoryStore())
    assert fresh > 40
    ahead = f.NOW + timedelta(hours=1)
    memory = PlannerMemory(last_scale_up_at=ahead - timedelta(minutes=2), last_scale_down_at=ahead,
                           recommendations=((ahead, 50), (f.NOW - timedelta(minutes=1), 40)))
    got, _ = _breach_scale_up(InMemoryMemoryStore({"edge": encode_memory(memory, ahead)}))
    assert got == fresh
    restored, notes = restore_memory(decode_memory(encode_memory(memory, ahead)), f.make_policy().workloads[0],
                                     f.NOW, timedelta(minutes=5))
    assert restored.last_scale_up_at is None and restored.last_scale_down_at is None
    assert restored.recommendations == ((f.NOW - timedelta(minutes=1), 40),)
    assert any("last_scale_up_at, last_scale_down_at, 1 recommendations dated after now" in n for n in notes)


def test_a_memory_saved_in_year_9999_is_restored_without_a_traceback():
    far = datetime(9999, 12, 31, 23, 0, tzinfo=timezone.utc)
    memory = PlannerMemory(guard_until=far, guard_actions=("freeze_scale_in",), last_scale_up_at=far)
    got, metrics = _breach_scale_up(InMemoryMemoryStore({"edge": encode_memory(memory, far)}))
    fresh, _ = _breach_scale_up(InMemoryMemoryStore())
    assert got == fresh
    assert metrics.value("ebbtide_errors_total", {"kind": "tick"}) == 0
    restored, _ = restore_memory(decode_memory(encode_memory(memory, far)), f.make_policy().workloads[0], f.NOW,
                                 timedelta(minutes=5))
    # the hold is cut from now, not from the save: now + the policy's longest SLI hold
    assert restored.guard_until == f.NOW + f.make_policy().workloads[0].quality[0].hold


def test_a_field_written_by_a_later_release_is_ignored_not_refused():
    doc = json.loads(encode_memory(PlannerMemory(guard_until=f.NOW, guard_actions=("freeze_scale_in",)), f.NOW))
    doc["memory"]["hold_reason_code"] = 7
    doc["written_by"] = "ebbtide 9"
    saved = decode_memory(json.dumps(doc))
    assert saved.memory.guard_until == f.NOW and saved.memory.guard_actions == ("freeze_scale_in",)


# --------------------------------------------------------------------------- the size of the saved memory
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 600), st.integers(0, 60)), max_size=45), st.integers(0, 700),
       st.integers(0, 60), st.integers(0, 80))
def test_saving_only_the_recommendations_stabilisation_can_pick_changes_no_decision(recs, later_s, x, current):
    """for_saving keeps the window's staircase; at any later time, with any new recommendation,
    stabilise() decides the same (target and reason) on it as on the whole window."""
    window = timedelta(minutes=10)
    memory = PlannerMemory(recommendations=tuple((f.NOW + timedelta(seconds=s), r) for s, r in sorted(recs)))
    saved = for_saving(memory)
    assert set(saved.recommendations) <= set(memory.recommendations)
    now = f.NOW + timedelta(seconds=max((s for s, _ in recs), default=0) + later_s)  # after the save
    full = stabilise(x, current, prune_recommendations(memory.recommendations + ((now, x),), now, window), window)
    kept = stabilise(x, current, prune_recommendations(saved.recommendations + ((now, x),), now, window), window)
    assert kept == full


def test_a_steady_workload_saves_one_recommendation_not_one_per_tick():
    policy = load_policy_text(f.policy_yaml(tick="15s").replace("stabilization: 0s", "stabilization: 10m"))
    store = InMemoryMemoryStore()
    c, _ = make_controller(f.FakeCluster({"edge": 40}), store=store, clock=f.Clock())
    for _ in range(41):  # ten minutes of 15 s ticks at a steady demand
        c.tick(policy, dry_run=False)
        c.clock.advance(timedelta(seconds=15))
    assert len(c.memory["edge"].recommendations) == 40
    saved = decode_memory(store.texts["edge"]).memory
    assert len(saved.recommendations) == 1 and saved.recommendations[0] == c.memory["edge"].recommendations[-1]
    assert len(store.texts["edge"]) < 500


def test_a_memory_over_the_configmap_limit_is_refused_before_it_is_sent():
    class Cluster:
        writes = 0

        def read_config_map_data(self, namespace, name):
            return {"old": "x" * 100}

        def write_config_map_data(self, namespace, name, changes, *, exists=None):
            self.writes += 1
            return True

    cluster = Cluster()
    store = ConfigMapMemoryStore(cluster, "ebbtide", "ebbtide-state")
    store.load()
    store.save({f"w{i:04d}": "y" * 900 for i in range(1000)})  # 905,100 bytes with the old key: fits
    assert cluster.writes == 1
    with pytest.raises(EbbtideError, match=r"would hold 1,005,\d+ bytes of planner memory for 1101 workloads, "
                                           r"over the 1,000,000 a ConfigMap can take"):
        store.save({f"v{i:03d}": "z" * 996 for i in range(100)})
    assert cluster.writes == 1  # nothing sent
    store.save({"old": None, "w0000": None})  # removing keys shrinks it
    assert cluster.writes == 2


# --------------------------------------------------------------------------- ticks longer than their interval
def test_the_savings_estimate_counts_the_time_since_the_last_plan():
    """Ticks that overran skip runs: each plan then stands for more than one tick. At 17 pods
    below max_replicas (50 - 33), a plan 2 ticks after the last adds 2 ticks of 17 pods; a plan
    an hour later adds at most 4 ticks."""
    c, metrics = make_controller(f.FakeCluster({"edge": 10}))
    policy = f.make_policy(sli=False)  # tick 1m, max_replicas 50; 3000 / 100 x 1.1 = 33
    labels = {"workload": "edge"}
    c.tick(policy, dry_run=False)
    first = metrics.value("ebbtide_estimated_savings_replica_hours_total", labels)
    assert first == pytest.approx(17 / 60)  # one tick for a first plan
    c.clock.advance(timedelta(minutes=2))
    c.tick(policy, dry_run=False)
    second = metrics.value("ebbtide_estimated_savings_replica_hours_total", labels)
    assert second - first == pytest.approx(2 * 17 / 60)
    c.clock.advance(timedelta(hours=1))
    c.tick(policy, dry_run=False)
    assert metrics.value("ebbtide_estimated_savings_replica_hours_total", labels) - second == pytest.approx(4 * 17 / 60)


def test_ticks_skipped_because_a_tick_overran_are_counted(tmp_path):
    class Slow(f.FakeCluster):
        def apply(self, *a, **kw):
            time.sleep(2.5)  # a tick of 2.5 s at a 1 s interval
            return super().apply(*a, **kw)

    path = tmp_path / "policy.yaml"
    path.write_text(f.policy_yaml(tick="1s", sli=False))
    metrics = ControllerMetrics()
    c, _ = make_controller(Slow({"edge": 10}))
    loop = ControllerLoop(PolicyStore(path, metrics), c, metrics=metrics, health=Health())
    assert metrics.value("ebbtide_ticks_skipped_total") == 0
    loop.start()
    try:
        assert f.wait_for(lambda: metrics.value("ebbtide_ticks_skipped_total") >= 1, timeout_s=20)
    finally:
        loop.stop()


def test_sigterm_during_a_single_tick_ends_it_after_the_workload_under_way():
    """`ebbtide run --once` has no loop: SIGTERM killed the process wherever it was, possibly
    between a workload's replicas and its bitrate write."""
    class TermOnFirstApply(f.FakeCluster):
        def apply(self, *a, **kw):
            if not self.applies:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().apply(*a, **kw)

    cluster = TermOnFirstApply({n: 10 for n in THREE})
    c, _ = make_controller(cluster)
    before = signal.getsignal(signal.SIGTERM)
    with stopping_on_signals(c.stopping):
        report = c.tick(three_workloads(), dry_run=False)
    assert [o.workload for o in report.outcomes] == ["edge"] and cluster.replicas["edge"] == 33
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_long_tick_moves_the_liveness_clock_at_each_workload(tmp_path):
    """/healthz failed when no tick started or ended for 3 ticks + 120 s: a tick over many
    workloads (or a slow API server) longer than that was killed by the kubelet mid-apply."""
    beats = []
    path = tmp_path / "policy.yaml"
    path.write_text(f.policy_yaml(sli=False, extra_workload=f.more_workloads("a", "b")))
    metrics = ControllerMetrics()
    c, _ = make_controller(f.FakeCluster({n: 10 for n in THREE}))
    health = Health(clock=lambda: beats.append(1) or float(len(beats)))
    loop = ControllerLoop(PolicyStore(path, metrics), c, metrics=metrics, health=health)
    before = len(beats)
    loop.tick_job()
    # tick started, three workloads done, tick ended
    assert len(beats) - before == 5
