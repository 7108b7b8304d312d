"""The running loop: policy hot reload, leader election wiring, scheduler, signals, /metrics.

Cases:
- policy reload: a malformed file keeps the last good policy, counts one reload error per change
  of the file (not per poll) and says why in one ERROR log line (figures printed); the fixed file
  is taken; a comment-only edit is no reload;
- the loop ticks with the old policy while the file is broken;
- two loops, one Lease: exactly one writer; the follower's applies are dry-run; when the leader
  releases the Lease, the other takes over (an in-memory Lease, and the real LeaderElector and
  KubeCluster on the kmock emulator, where demand rises every round and the writes per controller
  are counted and printed: the leader writes every tick, the follower never); an elector that
  raises makes a follower;
- a follower is ready (/readyz 200) after its first tick, without ever leading;
- a tick that raises (a bug) is logged and counted, the loop goes on; an input or dependency
  problem (EbbtideError) is one ERROR line without a traceback; a failing refit (either kind) is
  counted as a forecast error and the next tick runs;
- the APScheduler loop ticks on the policy's interval and picks up a new tick length on reload;
- SIGTERM stops `run()` cleanly (returns 0, ebbtide_up 0, Lease released);
- /metrics, /healthz (503 when wedged) and /readyz (503 before the first tick).
- stop() while a reload job reschedules the tick does not deadlock (APScheduler lock order).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest

import controller_fakes as f
from support.kube import kube_env  # noqa: F401 (fixture)
from scaler.controller import Controller, LiveForecasterCache
from scaler.loop import ControllerLoop, PolicyStore
from scaler.metrics import ControllerMetrics, Health, MetricsServer


def write(path, text):
    path.write_text(text)
    # Make the change visible even when the file system's mtime granularity is coarse.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def make_loop(tmp_path, *, cluster=None, elector=None, clock=None, tick="1m", metrics=None):
    policy_file = tmp_path / "policy.yaml"
    if not policy_file.exists():
        policy_file.write_text(f.policy_yaml(tick=tick))
    metrics = metrics or ControllerMetrics()
    store = PolicyStore(policy_file, metrics)
    clock = clock or f.Clock()
    controller = Controller(clock, f.flat_source(3000, end=f.NOW + timedelta(hours=2)),
                            cluster or f.FakeCluster({"edge": 10}),
                            LiveForecasterCache(f.factory_of(f.ConstantModel)), metrics=metrics)
    loop = ControllerLoop(store, controller, metrics=metrics, health=Health(), elector=elector, now=clock.now)
    return loop, store, metrics, policy_file


def test_malformed_policy_keeps_the_last_good_one_and_counts_the_error(tmp_path, caplog, capsys):
    loop, store, metrics, path = make_loop(tmp_path)
    good = store.loaded.digest
    write(path, f.policy_yaml(max_replicas=0))  # max_replicas must be >= 1 and >= min_replicas
    assert store.poll() is False
    assert store.loaded.digest == good
    assert "max_replicas" in store.last_error and "policy.yaml:" in store.last_error
    assert metrics.value("ebbtide_policy_reload_errors_total") == 1
    assert metrics.value("ebbtide_errors_total", {"kind": "policy_reload"}) == 1
    refusals = [r for r in caplog.records
                if r.levelname == "ERROR" and "keeping the last good policy" in r.getMessage()]
    assert len(refusals) == 1 and "max_replicas" in refusals[0].getMessage()
    with capsys.disabled():
        print(f"\n[malformed policy on reload] policy in force: digest {store.loaded.digest[:12]} (the old one: "
              f"{store.loaded.digest == good}); ebbtide_policy_reload_errors_total "
              f"{metrics.value('ebbtide_policy_reload_errors_total'):g}; log: {len(refusals)} ERROR line naming "
              f"{os.path.basename(store.last_error.splitlines()[0].split(' ', 1)[0])}")
    assert store.poll() is False  # same broken file: not counted again
    assert metrics.value("ebbtide_policy_reload_errors_total") == 1
    write(path, "apiVersion: ebbtide/v1\nworkloads: [")  # YAML syntax error
    assert store.poll() is False
    assert metrics.value("ebbtide_policy_reload_errors_total") == 2
    write(path, f.policy_yaml(max_replicas=80))
    assert store.poll() is True
    assert store.current().workloads[0].scaling.max_replicas == 80 and store.last_error is None
    write(path, "# a comment changes nothing\n" + f.policy_yaml(max_replicas=80))
    assert store.poll() is False and store.reloads == 1


def test_the_loop_ticks_on_the_old_policy_while_the_file_is_broken(tmp_path):
    cluster = f.FakeCluster({"edge": 10})
    loop, store, metrics, path = make_loop(tmp_path, cluster=cluster)
    write(path, f.policy_yaml(per_replica=-5))
    assert loop.reload_job() is False
    loop.refit_job()  # the loop fits apart from ticks
    report = loop.tick_job()
    assert report is not None and report.ok
    assert cluster.applies[-1][1] == 33  # ceil(3000 x 1.1 / 100): per_replica 100, the last good value
    assert metrics.value("ebbtide_errors_total", {"kind": "policy_reload"}) == 1


def test_two_loops_one_lease_one_writer(tmp_path):
    lease = f.SharedLease(duration=timedelta(seconds=15))
    cluster = f.FakeCluster({"edge": 10})
    clock = f.Clock()
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a, *_ = make_loop(a_dir, cluster=cluster, elector=f.LeaseElector(lease, "pod-a"), clock=clock)
    b, _, b_metrics, _ = make_loop(b_dir, cluster=cluster, elector=f.LeaseElector(lease, "pod-b"), clock=clock)
    for _ in range(4):
        a.tick_job()
        b.tick_job()
        clock.advance(timedelta(seconds=10))
    live = [x for x in cluster.applies if not x[2]]
    dry = [x for x in cluster.applies if x[2]]
    assert len(cluster.applies) == 8
    assert len(live) == 4 and len(dry) == 4  # a wrote every tick, b only planned
    assert (a.is_leader, b.is_leader) == (True, False)
    assert b_metrics.value("ebbtide_leader") == 0
    a.stop()  # releases the Lease
    n = len(cluster.applies)
    b.tick_job()
    assert b.is_leader and cluster.applies[n][2] is False
    assert b_metrics.value("ebbtide_leader") == 1


def test_a_follower_is_ready_after_its_first_tick(tmp_path):
    """With 2 replicas and a PDB a follower that never became ready would stall rolling updates:
    ready = policy loaded and one tick planned, whether this replica leads or not."""
    lease = f.SharedLease(duration=timedelta(seconds=15))
    clock = f.Clock()
    loops = {}
    for who in ("pod-a", "pod-b"):
        d = tmp_path / who
        d.mkdir()
        loops[who] = make_loop(d, cluster=f.FakeCluster({"edge": 10}), elector=f.LeaseElector(lease, who),
                               clock=clock)[0]
    follower = loops["pod-b"]
    server = MetricsServer(follower.metrics, follower.health, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{server.port}/readyz"
        assert get(url) == (503, "no tick completed yet\n")
        loops["pod-a"].tick_job()
        report = follower.tick_job()
        assert report is not None and not report.leader and report.dry_run  # a follower: planned, wrote nothing
        assert (loops["pod-a"].is_leader, follower.is_leader) == (True, False)
        assert get(url) == (200, "ok\n")
        assert follower.metrics.value("ebbtide_leader") == 0
    finally:
        server.stop()


class RecordingCluster:
    """A real KubeCluster that also records (identity, dry_run, wrote) of each apply."""

    def __init__(self, inner, identity, log):
        self.inner, self.identity, self.log = inner, identity, log

    def read(self, workload, bitrate_target):
        return self.inner.read(workload, bitrate_target)

    def apply(self, plan, workload, bitrate_target, dry_run, *, state=None):
        result = self.inner.apply(plan, workload, bitrate_target, dry_run, state=state)
        self.log.append((self.identity, dry_run, result.ok and result.changed and not dry_run))
        return result


def rising_source(rounds: int, step: timedelta):
    """Demand 3000 now, +200 every `step` for `rounds` steps (8 days of history before): every
    round of ticks sizes more replicas (below max_replicas 50), so every leader tick has something to write."""
    from forecaster.history import StaticMetricsSource

    n_past = int(timedelta(days=8) / step)
    values = [3000.0] * n_past + [3000.0 + 200 * k for k in range(rounds + 1)]
    end = f.NOW + rounds * step
    return StaticMetricsSource({f.DEMAND_Q: f.series(values, end=end, step=step, name=f.DEMAND_Q),
                                f.SLI_Q: f.series([0.005] * len(values), end=end, step=step, name=f.SLI_Q)})


@pytest.mark.slow
def test_two_loops_one_kmock_lease_one_writer(tmp_path, kube_env, capsys):
    from scaler.kube import LeaderElector
    from support.kube import deployment

    kube_env.server.seed(deployment("live", "edge", replicas=10, ready=10))
    clock = f.Clock()
    rounds, step = 6, timedelta(minutes=5)
    log: list = []
    loops = {}
    for who in ("pod-a", "pod-b"):
        d = tmp_path / who
        d.mkdir()
        kc = kube_env.cluster(identity=who)
        elector = LeaderElector(kc, "live", "ebbtide", who, lease_duration_s=15)
        loops[who] = make_loop(d, cluster=RecordingCluster(kc, who, log), elector=elector, clock=clock)[0]
        loops[who].controller.source = rising_source(rounds, step)
    planned = []
    for _ in range(rounds):
        for who in ("pod-a", "pod-b"):
            report = loops[who].tick_job()
            planned.append((who, report.outcomes[0].plan.target_replicas))
        clock.advance(step)
    writes = {who: sum(wrote for w, _, wrote in log if w == who) for who in ("pod-a", "pod-b")}
    assert [d for who, d, _ in log if who == "pod-a"] == [False] * rounds
    assert [d for who, d, _ in log if who == "pod-b"] == [True] * rounds
    assert writes == {"pod-a": rounds, "pod-b": 0}  # demand rose every round: the leader wrote every tick
    assert kube_env.server.get("Lease", "live", "ebbtide")["spec"]["holderIdentity"] == "pod-a"
    assert kube_env.server.get("Deployment", "live", "edge")["spec"]["replicas"] == planned[-2][1]  # pod-a's last
    scale_writes = [w for w in kube_env.transport.writes() if w.path.endswith("/scale")]
    assert len(scale_writes) == rounds
    lease_writers = {w.body.get("spec", {}).get("holderIdentity") for w in kube_env.transport.writes()
                     if "/leases" in w.path}
    assert lease_writers == {"pod-a"}
    with capsys.disabled():
        print(f"\n[two controllers, one kmock Lease] writes over {rounds} ticks each: pod-a {writes['pod-a']}, "
              f"pod-b {writes['pod-b']} (pod-b planned {rounds} times in dry-run); Lease written only by pod-a")
    loops["pod-a"].stop()  # releases the Lease
    loops["pod-b"].tick_job()
    assert log[-1][:2] == ("pod-b", False)
    assert kube_env.server.get("Lease", "live", "ebbtide")["spec"]["holderIdentity"] == "pod-b"


def test_an_elector_that_raises_makes_a_follower(tmp_path):
    class Broken:
        def try_acquire_or_renew(self, now):
            raise ConnectionError("apiserver unreachable")

    cluster = f.FakeCluster({"edge": 10})
    loop, _, metrics, _ = make_loop(tmp_path, cluster=cluster, elector=Broken())
    loop.tick_job()
    assert cluster.applies == [("edge", 33, True)]  # reactive (no fit yet): ceil(3000 x 1.1 / 100)
    assert metrics.value("ebbtide_errors_total", {"kind": "leader"}) == 1


def test_a_refused_lease_is_logged_once_per_new_error(tmp_path, caplog):
    # an RBAC refusal made a silent follower: nothing was written and nothing said why
    class Refused:
        last_error = "Lease live/ebbtide: HTTP 403 Forbidden"

        def try_acquire_or_renew(self, now):
            return False

    loop, _, metrics, _ = make_loop(tmp_path, elector=Refused())
    for _ in range(3):
        assert loop.leader_job() is False
    warned = [r.getMessage() for r in caplog.records if "leader election" in r.getMessage()]
    assert warned == ["leader election: Lease live/ebbtide: HTTP 403 Forbidden; acting as follower (planning "
                      "only, no writes)"]
    assert metrics.value("ebbtide_errors_total", {"kind": "leader"}) == 1
    Refused.last_error = "Lease live/ebbtide: no answer (ReadTimeoutError)"
    loop.leader_job()
    assert metrics.value("ebbtide_errors_total", {"kind": "leader"}) == 2


def test_a_tick_that_raises_is_counted_and_the_loop_goes_on(tmp_path, caplog):
    loop, _, metrics, _ = make_loop(tmp_path)
    real_tick = loop.controller.tick
    loop.controller.tick = lambda *a, **k: 1 / 0
    assert loop.tick_job() is None
    assert metrics.value("ebbtide_errors_total", {"kind": "tick"}) == 1
    assert "ZeroDivisionError" in caplog.text
    loop.controller.tick = real_tick
    assert loop.tick_job() is not None and loop.health.ticks_done == 1


def test_input_problems_and_failing_refits_are_counted_and_the_loop_goes_on(tmp_path, caplog):
    from policies.errors import EbbtideError

    loop, _, metrics, _ = make_loop(tmp_path)

    def unreachable(*a, **k):
        raise EbbtideError("prometheus http://prom:9090: query 'viewers' failed: connection refused")

    real_tick = loop.controller.tick
    loop.controller.tick = unreachable
    assert loop.tick_job() is None
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "tick failed: prometheus http://prom:9090: query 'viewers' failed: connection refused"]
    assert errors[0].exc_info is None  # a message for people, no traceback
    assert metrics.value("ebbtide_errors_total", {"kind": "tick"}) == 1
    loop.controller.tick = real_tick

    caplog.clear()
    loop.controller.refit_due = unreachable
    loop.refit_job()  # never raises
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "refit failed: prometheus http://prom:9090: query 'viewers' failed: connection refused"]
    loop.controller.refit_due = lambda *a, **k: 1 / 0
    loop.refit_job()
    assert "ZeroDivisionError" in caplog.text  # a bug keeps its traceback
    assert metrics.value("ebbtide_errors_total", {"kind": "forecast"}) == 2
    assert loop.tick_job() is not None and loop.health.ticks_done == 1




def test_scheduler_ticks_and_reschedules_on_a_new_tick_length(tmp_path):
    loop, store, metrics, path = make_loop(tmp_path, tick="1s")
    loop.reload_interval_s = 0.2
    loop.start()
    try:
        assert f.wait_for(lambda: loop.health.ticks_done >= 2)
        assert metrics.value("ebbtide_up") == 1
        write(path, f.policy_yaml(tick="2s"))
        assert f.wait_for(lambda: store.reloads == 1)
        # The reload job reschedules right after the reload counts: wait for it, not a race.
        assert f.wait_for(lambda: loop._scheduler.get_job("tick").trigger.interval == timedelta(seconds=2))
        job = loop._scheduler.get_job("tick")
        assert job.max_instances == 1 and job.coalesce is True
    finally:
        loop.stop()
    assert metrics.value("ebbtide_up") == 0


def test_the_lease_is_renewed_while_a_long_refit_and_a_long_tick_run(tmp_path):
    """A cold refit holds its job for minutes and a tick with many workloads (or a slow
    Prometheus) for seconds; the Lease must still be renewed every renew interval, or it lapses
    (15 s) and a second replica starts writing while this one's tick still does."""
    renewals = []

    class Counting:
        def try_acquire_or_renew(self, now):
            renewals.append(time.monotonic())
            return True

    loop, *_ = make_loop(tmp_path, tick="1s", elector=Counting())
    loop.renew_interval_s = 0.1
    release = threading.Event()
    busy = {"tick": threading.Event(), "refit": threading.Event()}

    def blocking(name):
        def job(*a, **k):
            busy[name].set()
            release.wait(20)
        return job

    loop.controller.tick = blocking("tick")
    loop.controller.refit_due = blocking("refit")
    loop.start()
    try:
        assert f.wait_for(lambda: busy["tick"].is_set() and busy["refit"].is_set())
        seen = len(renewals)
        # Both jobs are stuck: the renewals go on (the elector is called from its own thread).
        assert f.wait_for(lambda: len(renewals) >= seen + 5, timeout_s=10.0), len(renewals) - seen
    finally:
        release.set()
        loop.stop()


def test_the_tick_and_the_lease_thread_never_call_the_elector_at_once(tmp_path):
    """Two renewals racing on the Lease's resourceVersion: one gets a 409 and its caller (the
    tick, say) acts as a follower for nothing. The calls are serialised."""
    inside, overlaps = [0], []
    both = threading.Barrier(2)

    class Slow:
        def try_acquire_or_renew(self, now):
            inside[0] += 1
            overlaps.append(inside[0])
            time.sleep(0.05)
            inside[0] -= 1
            return True

    loop, *_ = make_loop(tmp_path, elector=Slow())

    def renew_together():
        for _ in range(5):
            both.wait(5)
            loop.leader_job()

    threads = [threading.Thread(target=renew_together) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(overlaps) == 10 and max(overlaps) == 1 and loop.is_leader


def test_sigterm_stops_run_cleanly_and_releases_the_lease(tmp_path):
    lease = f.SharedLease()
    loop, *_ = make_loop(tmp_path, tick="1s", elector=f.LeaseElector(lease, "pod-a"))
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def terminate_after_first_tick():
        f.wait_for(lambda: loop.health.ticks_done >= 1)
        os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=terminate_after_first_tick, daemon=True)
    t.start()
    try:
        assert loop.run(max_runtime_s=30) == 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    t.join(5)
    assert loop.health.ticks_done >= 1
    assert lease.holder is None
    assert loop.metrics.value("ebbtide_up") == 0


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_health_and_readiness_endpoints():
    now = [1000.0]
    metrics = ControllerMetrics()
    health = Health(wedged_after_s=180, clock=lambda: now[0])
    health.progress()
    server = MetricsServer(metrics, health, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        metrics.up.set(1)
        status, body = get(base + "/metrics")
        assert status == 200 and "ebbtide_up 1.0" in body and 'ebbtide_errors_total{kind="apply"} 0.0' in body
        assert get(base + "/readyz") == (503, "no policy loaded\n")
        health.policy_loaded = True
        assert get(base + "/readyz") == (503, "no tick completed yet\n")
        health.tick_done()
        assert get(base + "/readyz") == (200, "ok\n")
        assert get(base + "/healthz") == (200, "ok\n")
        now[0] += 181
        status, body = get(base + "/healthz")
        assert status == 503 and "wedged" in body
        assert get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_stop_while_a_reload_reschedules_does_not_deadlock(tmp_path):
    # APScheduler's shutdown(wait=True) holds its job-store lock while it waits for running jobs;
    # a reload job that reschedules the tick at that moment used to hang stop() for ever. Here the
    # reload job is held (in on_policy_change, just before it reschedules) until stop() has begun.
    loop, store, metrics, path = make_loop(tmp_path, tick="1s")
    loop.reload_interval_s = 0.05
    in_reload, go = threading.Event(), threading.Event()

    def hold(policy):
        in_reload.set()
        go.wait(10)

    loop.on_policy_change = hold
    loop.start()
    write(path, f.policy_yaml(tick="2s"))
    assert in_reload.wait(10)
    stopper = threading.Thread(target=loop.stop)
    stopper.start()
    time.sleep(0.3)  # stop() is now waiting for the running reload job
    go.set()
    stopper.join(timeout=15)
    assert not stopper.is_alive(), "stop() hung while a reload rescheduled the tick"
