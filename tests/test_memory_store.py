"""The planner memory survives a restart: versioned JSON (scaler.memories), the stores
(scaler.memory_store), and the controller loading and saving it (scaler.controller), against the
kmock Kubernetes emulator with the real KubeCluster (tests/support/kube.py).

Cases:
- round trip: decode(encode(memory, t)) == (memory, t) exactly, offsets included, and encoding
  again gives the same text (hypothesis, 300 examples);
- documents that are not a memory (not JSON, unknown version, missing field, wrong types,
  negative counts, NaN demand, unknown guard action, naive time, an event after saved_at) are
  refused with the field named;
- the message starts with the dotted path of the first wrong field: a string "3" or a bool for
  burst_pods, a float 2.0 for replicas, a naive or Unix-seconds recommendation time, a late
  second recommendation, a raw NaN token and a string for last_demand, a string version, a
  version-2 document with other fields (the version is told first), a missing field (a field
  this release does not know is ignored: tests/test_controller_runtime.py);
- a document written by the previous release (fixed text, several zones, microseconds) reads
  back to the memory it was written from and encodes to the same bytes;
- restore rule, by hand: saved 10 min ago with max_staleness 5m -> last_demand, collapse_since,
  jump_since and burst_pods dropped, absolute times kept; 2 min ago -> all kept; a guard hold
  longer than the policy's longest SLI hold is cut to saved_at + hold; no SLIs left -> no hold;
- restart with a guard hold: a breach at 12:00 holds until 12:15; a new Controller at 12:05 with
  the same ConfigMap store holds 33 replicas (guard), where one without the store scales in
  33 -> 30; the ConfigMap is created with one key per workload, labelled, schema-valid;
- restart inside the stabilisation window (10m): demand 3000 then 1000 -> held at 33 by the
  window restored from the store, 30 without it;
- a corrupt key (not JSON / version 2 / burst_pods -1 / unknown action) or a missing ConfigMap:
  the workload starts empty (plans as a fresh start: 30 -> 27), a WARNING names the ConfigMap and
  the key, ebbtide_errors_total{kind="state_load"} counts it, and the next save repairs the key;
- a failed save (500 on every ConfigMap write, retries exhausted): the apply still happened, the
  tick is ok, state_save counted, nothing else; the next tick saves;
- writes only on change: 2 workloads over 6 ticks -> one ConfigMap write per tick that changed a
  memory (never one per workload), none on a tick whose cluster read or apply failed (memory not
  advanced), none in dry-run; the leader of a policy that lost a workload removes its key;
- a follower never writes; the follower that takes over as leader loads what the old leader saved
  (the old leader's scale-up time carries on), loading only at start and on becoming leader;
- `ebbtide run --state-configmap` / EBBTIDE_STATE_CONFIGMAP / --state-namespace settings; a bad
  name is an input error naming the flag.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import controller_fakes as f
from forecaster.history import StaticMetricsSource
from policies.errors import EbbtideError
from policies.loading import load_policy_text
from scaler.controller import Controller, LiveForecasterCache
from scaler.memories import MEMORY_FORMAT_VERSION, MemoryFormatError, SavedMemory, decode_memory, encode_memory, \
    restore_memory
from scaler.memory_store import ConfigMapMemoryStore, InMemoryMemoryStore
from scaler.metrics import ControllerMetrics
from scaler.plans import PlannerMemory
from support.kube import deployment, kube_env, validate_sent  # noqa: F401 (fixture)

NS, NAME = "ebbtide-system", "ebbtide-state"
STATE_PATH = f"/api/v1/namespaces/{NS}/configmaps"
UTC = timezone.utc


# --------------------------------------------------------------------------- helpers
def source(demand: list[float], sli: list[float]) -> StaticMetricsSource:
    """8 days of demand 3000 / SLI 0.005 at 5-minute steps, then `demand`/`sli` at NOW, NOW+5m, ..."""
    n = int(timedelta(days=8) / f.STEP)
    end = f.NOW + (len(demand) - 1) * f.STEP
    return StaticMetricsSource({f.DEMAND_Q: f.series([3000.0] * n + demand, end=end, name=f.DEMAND_Q),
                                f.SLI_Q: f.series([0.005] * n + sli, end=end, name=f.SLI_Q)})


def policy(*, stabilization: str = "0s", extra_workload: str = ""):
    text = f.policy_yaml(extra_workload=extra_workload).replace("stabilization: 0s", f"stabilization: {stabilization}")
    return load_policy_text(text)


API_WORKLOAD = f"""\
  - name: api
    target: {{kind: Deployment, namespace: live, name: api}}
    demand: {{query: '{f.DEMAND_Q}', per_replica: 200}}
    pod_startup: 60s
    scaling: {{min_replicas: 1, max_replicas: 50, headroom: 0.1, max_scale_down_fraction: 0.1,
               scale_down_cooldown: 0s, stabilization: 0s}}
    forecast: {{lookback: 8d, step: 5m, horizon: 6h, refit_interval: 6h, min_history: 7d, trust_bound: 0.35}}
"""


def make_controller(kube_env, src, clock, *, store=True, metrics=None, identity="pod-a"):
    """A Controller on the kmock API (real KubeCluster) with the ConfigMap store NS/NAME (or none)."""
    cluster = kube_env.cluster(identity=identity)
    memory_store = ConfigMapMemoryStore(cluster, NS, NAME) if store else None
    return Controller(clock, src, cluster, LiveForecasterCache(f.factory_of(f.ConstantModel)),
                      metrics=metrics or ControllerMetrics(), memory_store=memory_store)


def state_writes(kube_env) -> list:
    return [r for r in kube_env.transport.writes() if r.path.startswith(STATE_PATH) and not r.injected]


def stored(kube_env) -> dict[str, str]:
    cm = kube_env.server.get("ConfigMap", NS, NAME)
    return {k: v for k, v in ((cm or {}).get("data") or {}).items() if v is not None}


def errors(metrics: ControllerMetrics, kind: str) -> float:
    return metrics.value("ebbtide_errors_total", {"kind": kind})


# --------------------------------------------------------------------------- the JSON document
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
SAVED_AT = st.builds(lambda s, us, tz: (datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=s, microseconds=us))
                     .astimezone(tz),
                     st.integers(0, 20 * 365 * 86400), st.integers(0, 999_999), OFFSETS)


@st.composite
def saved_memories(draw) -> tuple[PlannerMemory, datetime]:
    saved_at = draw(SAVED_AT)

    def before() -> datetime:  # an event time at or before the save, in any zone
        back = timedelta(seconds=draw(st.integers(0, 30 * 86400)), microseconds=draw(st.integers(0, 999_999)))
        return (saved_at - back).astimezone(draw(OFFSETS))

    def maybe(make):
        return make() if draw(st.booleans()) else None

    memory = PlannerMemory(
        recommendations=tuple((before(), draw(st.integers(0, 10_000))) for _ in range(draw(st.integers(0, 6)))),
        last_scale_up_at=maybe(before),
        last_scale_down_at=maybe(before),
        guard_until=maybe(lambda: (saved_at + timedelta(seconds=draw(st.integers(-86400, 86400))))
                          .astimezone(draw(OFFSETS))),
        guard_actions=tuple(draw(st.lists(st.sampled_from(["freeze_scale_in", "restore_bitrate", "scale_up"]),
                                          unique=True))),
        last_demand=maybe(lambda: draw(st.floats(min_value=0, max_value=1e12, allow_nan=False))),
        burst_pods=draw(st.integers(0, 1000)),
        last_step_down_at=maybe(before),
        collapse_since=maybe(before),
        jump_since=maybe(before),
        guard_breach=draw(st.sampled_from(["", "SLI rebuffering 0.031 above 0.02 at 2026-11-20T11:00:00+00:00, "
                                               "hold 10m", "caf\u00e9 \"quoted\" \u53cc\u5341\u4e00"])),
    )
    return memory, saved_at


def _times(m: PlannerMemory) -> list[datetime | None]:
    return [t for t, _ in m.recommendations] + [m.last_scale_up_at, m.last_scale_down_at, m.guard_until,
                                                 m.last_step_down_at, m.collapse_since, m.jump_since]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(saved_memories())
def test_round_trip_is_exact(case):
    memory, saved_at = case
    text = encode_memory(memory, saved_at)
    back = decode_memory(text)
    assert back.memory == memory and back.saved_at == saved_at
    assert back.saved_at.utcoffset() == saved_at.utcoffset()
    for a, b in zip(_times(back.memory), _times(memory), strict=True):
        assert (a is None and b is None) or (a == b and a.utcoffset() == b.utcoffset())
    assert type(back.memory.last_demand) is type(memory.last_demand)
    assert encode_memory(back.memory, back.saved_at) == text


T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GOOD = {"version": 1, "saved_at": "2026-11-20T12:00:00+00:00",
        "memory": {"recommendations": [["2026-11-20T11:59:00+00:00", 12]], "last_scale_up_at": None,
                   "last_scale_down_at": None, "guard_until": "2026-11-20T12:15:00+00:00",
                   "guard_actions": ["freeze_scale_in"], "last_demand": 1200.0, "burst_pods": 0,
                   "last_step_down_at": None, "collapse_since": None}}


def _bad(**memory_changes) -> str:
    doc = json.loads(json.dumps(GOOD))
    doc["memory"].update(memory_changes)
    return json.dumps(doc)


@pytest.mark.parametrize("text, field", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({**GOOD, "version": 2}), "version"),
    (json.dumps({**GOOD, "version": True}), "version"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "saved_at"}), "saved_at: missing"),
    (json.dumps({**GOOD, "saved_at": "2026-11-20T12:00:00"}), "saved_at"),
    (_bad(burst_pods=-1), "memory.burst_pods"),
    (_bad(burst_pods=1.5), "memory.burst_pods"),
    (_bad(last_demand=float("nan")), "memory.last_demand"),
    (_bad(last_demand=-3), "memory.last_demand"),
    (_bad(guard_actions=["scale_down_faster"]), "memory.guard_actions"),
    (_bad(recommendations=[["2026-11-20T11:59:00+00:00"]]), "memory.recommendations[0]"),
    (_bad(recommendations=[["yesterday", 3]]), "memory.recommendations[0][0]"),
    (_bad(last_scale_down_at="2026-11-20T12:01:00+00:00"), "memory.last_scale_down_at: a time after saved_at"),
    (_bad(collapse_since=5), "memory.collapse_since"),
    (_bad(jump_since="2026-11-20T12:01:00+00:00"), "memory.jump_since: a time after saved_at"),
    (_bad(jump_since=None, xyz=1, burst_pods=-1), "memory.burst_pods"),
])
def test_decode_refuses_what_is_not_a_memory(text, field):
    with pytest.raises(MemoryFormatError, match=field.replace("[", r"\[").replace("]", r"\]")):
        decode_memory(text)


def test_decode_reads_the_documented_example():
    saved = decode_memory(json.dumps(GOOD))
    assert saved.saved_at == T0 and MEMORY_FORMAT_VERSION == 1
    assert saved.memory == PlannerMemory(recommendations=((T0 - timedelta(minutes=1), 12),),
                                         guard_until=T0 + timedelta(minutes=15), guard_actions=("freeze_scale_in",),
                                         last_demand=1200.0)


def _without(field: str) -> str:
    doc = json.loads(json.dumps(GOOD))
    del doc["memory"][field]
    return json.dumps(doc)


@pytest.mark.parametrize("text, start", [
    (_bad(burst_pods="3"), "memory.burst_pods: Input should be a valid integer (got '3')"),
    (_bad(burst_pods=True), "memory.burst_pods: Input should be a valid integer (got True)"),
    (_bad(recommendations=[["2026-11-20T11:59:00+00:00", 2.0]]), "memory.recommendations[0][1]: "),
    (_bad(recommendations=[["2026-11-20T11:59:00", 2]]),
     "memory.recommendations[0][0]: an ISO 8601 time without a zone"),
    (_bad(recommendations=[["1763640000", 2]]), "memory.recommendations[0][0]: not an ISO 8601 time"),
    (_bad(recommendations=[["2026-11-20T11:59:00+00:00", 2], ["2026-11-20T12:00:01+00:00", 3]]),
     "memory.recommendations[1][0]: a time after saved_at 2026-11-20T12:00:00+00:00"),
    (json.dumps(GOOD).replace("1200.0", "NaN"), "memory.last_demand: Input should be a finite number"),
    (_bad(last_demand="1200"), "memory.last_demand: "),
    (json.dumps({**GOOD, "version": "1"}), "version: not a known format version (this controller reads 1)"),
    (json.dumps({"memory": {"replicas": 3}, "version": 2, "saved_at": "soon"}), "version: not a known format"),
    (_without("guard_until"), "memory.guard_until: missing"),
    (json.dumps({**GOOD, "memory": []}), "memory: "),
    ("{not json", "not JSON: "),
    ('"memory"', "not a JSON object but str"),
])
def test_decode_tells_the_field_path_first(text, start):
    with pytest.raises(MemoryFormatError) as caught:
        decode_memory(text)
    assert str(caught.value).startswith(start), str(caught.value)


#: What the release before the pydantic model wrote (its encode_memory, unchanged) for PREVIOUS at T0.
PREVIOUS_TEXT = ('{"version":1,"saved_at":"2026-11-20T12:00:00+00:00","memory":{"recommendations":'
                 '[["2026-11-20T11:58:00+00:00",12],["2026-11-20T19:59:29.999750+08:00",11]],"last_scale_up_at":null,'
                 '"last_scale_down_at":"2026-11-20T11:58:00+00:00","guard_until":"2026-11-20T07:15:00-05:00",'
                 '"guard_actions":["freeze_scale_in","restore_bitrate"],"last_demand":2950.5,"burst_pods":3,'
                 '"last_step_down_at":null,"collapse_since":"2026-11-20T11:59:00+00:00"}}')
PREVIOUS = PlannerMemory(
    recommendations=((T0 - timedelta(minutes=2), 12),
                     ((T0 - timedelta(seconds=30, microseconds=250)).astimezone(timezone(timedelta(hours=8))), 11)),
    last_scale_down_at=T0 - timedelta(minutes=2),
    guard_until=(T0 + timedelta(minutes=15)).astimezone(timezone(timedelta(hours=-5))),
    guard_actions=("freeze_scale_in", "restore_bitrate"), last_demand=2950.5, burst_pods=3,
    collapse_since=T0 - timedelta(minutes=1),
)


def test_a_document_of_the_previous_release_reads_and_encodes_to_the_same_bytes():
    saved = decode_memory(PREVIOUS_TEXT)
    assert saved.memory == PREVIOUS and saved.saved_at == T0
    assert saved.memory.guard_until.utcoffset() == timedelta(hours=-5)
    assert saved.memory.recommendations[1][0].utcoffset() == timedelta(hours=8)
    assert encode_memory(saved.memory, saved.saved_at) == PREVIOUS_TEXT
    assert encode_memory(PREVIOUS, T0) == PREVIOUS_TEXT


# --------------------------------------------------------------------------- what is trusted after a restart
FULL = PlannerMemory(
    recommendations=((T0 - timedelta(minutes=3), 20), (T0, 18)),
    last_scale_up_at=T0 - timedelta(hours=1), last_scale_down_at=T0 - timedelta(minutes=3),
    guard_until=T0 + timedelta(minutes=10), guard_actions=("freeze_scale_in",), last_demand=1800.0,
    burst_pods=2, last_step_down_at=T0 - timedelta(minutes=3), collapse_since=T0 - timedelta(minutes=1),
    jump_since=T0 - timedelta(minutes=1),
)


def test_restore_drops_what_expires_only_when_stale():
    w = f.make_policy().workloads[0]  # SLI hold: the schema default, 15m
    fresh, notes = restore_memory(SavedMemory(FULL, T0), w, T0 + timedelta(minutes=2), timedelta(minutes=5))
    assert fresh == FULL and notes == ()
    stale, notes = restore_memory(SavedMemory(FULL, T0), w, T0 + timedelta(minutes=10), timedelta(minutes=5))
    assert stale == PlannerMemory(recommendations=FULL.recommendations, last_scale_up_at=FULL.last_scale_up_at,
                                  last_scale_down_at=FULL.last_scale_down_at, guard_until=FULL.guard_until,
                                  guard_actions=FULL.guard_actions, last_step_down_at=FULL.last_step_down_at)
    assert len(notes) == 1 and "last_demand, collapse_since, jump_since, burst_pods dropped" in notes[0]
    ahead, notes = restore_memory(SavedMemory(FULL, T0), w, T0 - timedelta(minutes=6), timedelta(minutes=5))
    # A save from the future (clock skew) is as untrustworthy, and what it dates after now is
    # dropped too (tests/test_controller_runtime.py); its guard hold is cut from now.
    assert ahead == replace(stale, recommendations=(), last_scale_down_at=None, last_step_down_at=None,
                            guard_until=T0 - timedelta(minutes=6) + timedelta(minutes=15))
    assert len(notes) == 3


def test_restore_cuts_a_hold_longer_than_the_policy_allows():
    w = f.make_policy().workloads[0]
    long_hold = PlannerMemory(guard_until=T0 + timedelta(hours=2), guard_actions=("freeze_scale_in",))
    cut, notes = restore_memory(SavedMemory(long_hold, T0), w, T0, timedelta(minutes=5))
    assert cut.guard_until == T0 + timedelta(minutes=15) and cut.guard_actions == ("freeze_scale_in",)
    assert "cut to 2026-11-20T12:15:00+00:00" in notes[0]
    no_sli = f.make_policy(sli=False).workloads[0]
    gone, _ = restore_memory(SavedMemory(long_hold, T0), no_sli, T0, timedelta(minutes=5))
    assert gone.guard_until is None and gone.guard_actions == ()
    named = replace(long_hold, guard_breach="SLI rebuffering 0.05 above 0.02")
    assert restore_memory(SavedMemory(named, T0), no_sli, T0, timedelta(minutes=5))[0].guard_breach == ""
    assert restore_memory(SavedMemory(named, T0), w, T0, timedelta(minutes=5))[0].guard_breach == named.guard_breach


# --------------------------------------------------------------------------- restarts on the kmock API
def test_a_guard_hold_survives_a_restart(kube_env):
    kube_env.server.seed(deployment("live", "edge", replicas=30, ready=30))
    src = source([3000.0, 1000.0], [0.05, 0.005])  # breach at 12:00 (hold 15m), fine again at 12:05
    clock = f.Clock()
    first = make_controller(kube_env, src, clock)
    out = first.tick(f.make_policy(), dry_run=False).outcomes[0]
    assert out.wrote and out.plan.target_replicas == 33 and out.plan.memory.guard_until == T0 + timedelta(minutes=15)
    cm = kube_env.server.get("ConfigMap", NS, NAME)
    assert set(cm["data"]) == {"edge"} and cm["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ebbtide"}
    assert validate_sent(kube_env.transport) >= 2  # the ConfigMap create among them

    clock.advance(f.STEP)  # "restart": a new process, the same ConfigMap
    restarted = make_controller(kube_env, src, clock, identity="pod-b")
    plan = restarted.tick(f.make_policy(), dry_run=False).outcomes[0].plan
    assert plan.guard_active and plan.target_replicas == 33
    assert any("guard held until 2026-11-20T12:15:00+00:00" in r for r in plan.reasons)
    # the restored hold still names the breach that set it (memory.guard_breach is saved)
    assert any("guard held until" in r and "SLI rebuffering" in r for r in plan.reasons), plan.reasons
    # Without the store the same restart forgets the hold and scales in: 33 - floor(33 x 0.1) = 30.
    forgetful = make_controller(kube_env, src, clock, store=False, identity="pod-c")
    plan = forgetful.tick(f.make_policy(), dry_run=True).outcomes[0].plan
    assert not plan.guard_active and plan.target_replicas == 30


def test_the_stabilisation_window_survives_a_restart(kube_env):
    kube_env.server.seed(deployment("live", "edge", replicas=33, ready=33))
    src = source([3000.0, 1000.0], [0.005, 0.005])
    pol = policy(stabilization="10m")
    clock = f.Clock()
    plan = make_controller(kube_env, src, clock).tick(pol, dry_run=False).outcomes[0].plan
    assert plan.target_replicas == 33 and plan.memory.recommendations == ((T0, 33),)
    clock.advance(f.STEP)
    plan = make_controller(kube_env, src, clock, identity="pod-b").tick(pol, dry_run=False).outcomes[0].plan
    assert plan.target_replicas == 33  # ceil(1000 x 1.1 / 100) = 11, held at 33 by the window
    assert any("highest recommendation of the last 10m" in r for r in plan.reasons)
    kube_env.server.seed(deployment("live", "edge", replicas=33, ready=33))
    plan = make_controller(kube_env, src, clock, store=False).tick(pol, dry_run=True).outcomes[0].plan
    assert plan.target_replicas == 30


@pytest.mark.parametrize("text", [
    "{not json",
    json.dumps({**GOOD, "version": 2}),
    _bad(burst_pods=-1),
    _bad(guard_actions=["freeze_scale_in", "panic"]),
], ids=["not-json", "version-2", "negative-burst-pods", "unknown-action"])
def test_a_corrupt_key_starts_empty_and_is_counted(kube_env, caplog, text):
    kube_env.server.seed(deployment("live", "edge", replicas=30, ready=30),
                         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": NS},
                          "data": {"edge": text}})
    metrics = ControllerMetrics()
    c = make_controller(kube_env, source([1000.0], [0.005]), f.Clock(), metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="ebbtide.controller"):
        plan = c.tick(f.make_policy(), dry_run=False).outcomes[0].plan
    assert plan.target_replicas == 27  # a fresh start: 30 - floor(30 x 0.1)
    assert errors(metrics, "state_load") == 1
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"ConfigMap {NS}/{NAME} key 'edge'" in m and "empty at start" in m for m in warning), warning
    assert decode_memory(stored(kube_env)["edge"]).memory == plan.memory  # repaired by the first save


def test_a_missing_configmap_starts_empty_is_counted_and_created(kube_env, caplog):
    kube_env.server.seed(deployment("live", "edge", replicas=30, ready=30))
    metrics = ControllerMetrics()
    c = make_controller(kube_env, source([1000.0], [0.005]), f.Clock(), metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="ebbtide.controller"):
        plan = c.tick(f.make_policy(), dry_run=False).outcomes[0].plan
    assert plan.target_replicas == 27 and errors(metrics, "state_load") == 1
    assert any(f"ConfigMap {NS}/{NAME} does not exist" in r.getMessage() for r in caplog.records)
    assert [r.method for r in state_writes(kube_env)] == ["POST"]  # created at once: the load saw none
    assert set(stored(kube_env)) == {"edge"}


def test_a_failed_save_does_not_stop_the_apply(kube_env, caplog):
    kube_env.server.seed(deployment("live", "edge", replicas=30, ready=30))
    kube_env.transport.fail("PATCH", rf"^{STATE_PATH}/{NAME}$", 500, times=100)
    kube_env.transport.fail("POST", rf"^{STATE_PATH}$", 500, times=100)
    metrics = ControllerMetrics()
    clock = f.Clock()
    c = make_controller(kube_env, source([1000.0, 1000.0], [0.005, 0.005]), clock, metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="ebbtide.controller"):
        report = c.tick(f.make_policy(), dry_run=False)
    assert report.ok and report.outcomes[0].wrote
    assert kube_env.server.get("Deployment", "live", "edge")["spec"]["replicas"] == 27
    assert errors(metrics, "state_save") == 1 and errors(metrics, "apply") == 0
    assert any("planner memory not saved (edge)" in r.getMessage() and "planning and applying go on" in r.getMessage()
               for r in caplog.records)
    assert kube_env.server.get("ConfigMap", NS, NAME) is None
    kube_env.transport.faults.clear()
    clock.advance(f.STEP)
    plan = c.tick(f.make_policy(), dry_run=False).outcomes[0].plan
    assert decode_memory(stored(kube_env)["edge"]).memory == plan.memory and errors(metrics, "state_save") == 1


def test_writes_only_when_a_memory_changed(kube_env):
    kube_env.server.seed(deployment("live", "edge", replicas=30, ready=30),
                         deployment("live", "api", replicas=10, ready=10))
    pol = policy(extra_workload=API_WORKLOAD)
    clock = f.Clock()
    c = make_controller(kube_env, source([1000.0] * 6, [0.005] * 6), clock)
    counts = []

    def tick(**kw):
        c.tick(pol, **{"dry_run": False, **kw})
        counts.append(len(state_writes(kube_env)))
        clock.advance(f.STEP)

    tick()                                                                    # 1: both memories new
    kube_env.transport.fail("GET", r"/deployments/(edge|api)/scale$", 500, times=2 * 5)
    tick()                                                                    # 2: no cluster read, no plan
    kube_env.transport.fail("PATCH", r"/deployments/(edge|api)/scale$", 500, times=2 * 5)
    tick()                                                # 3: both applies fail, what they observed kept
    tick()                                                                    # 4: memories advance
    tick(dry_run=True)                                                        # 5: dry-run writes nothing
    tick(leader=False)                                                        # 6: a follower neither
    assert counts == [1, 1, 2, 3, 3, 3]  # one write per tick that changed a memory (a create, then PATCHes)
    last = state_writes(kube_env)[-1]
    assert last.method == "PATCH" and set(last.body["data"]) == {"edge", "api"}

    smaller = f.make_policy()  # `api` leaves the policy: its key goes at the next save
    c.tick(smaller, dry_run=False)
    assert set(stored(kube_env)) == {"edge"}
    assert state_writes(kube_env)[-1].body["data"]["api"] is None


class CountingStore:
    def __init__(self, inner):
        self.inner, self.loads, self.saves = inner, 0, 0
        self.where = inner.where

    def load(self):
        self.loads += 1
        return self.inner.load()

    def save(self, changes):
        self.saves += 1
        self.inner.save(changes)


def test_a_follower_never_writes_and_takes_over_what_the_leader_saved(kube_env):
    kube_env.server.seed(deployment("live", "edge", replicas=10, ready=10))
    clock = f.Clock()
    src = source([3000.0, 3000.0, 3000.0], [0.005] * 3)
    pol = f.make_policy()
    stores = {}
    ctl = {}
    for who in ("pod-a", "pod-b"):
        cluster = kube_env.cluster(identity=who)
        stores[who] = CountingStore(ConfigMapMemoryStore(cluster, NS, NAME))
        ctl[who] = Controller(clock, src, cluster, LiveForecasterCache(f.factory_of(f.ConstantModel)),
                              memory_store=stores[who])
    for _ in range(2):  # pod-b (follower) at 12:00 and 12:05, pod-a (leader) at 12:01 and 12:06
        ctl["pod-b"].tick(pol, dry_run=False, leader=False)
        clock.advance(timedelta(minutes=1))
        a = ctl["pod-a"].tick(pol, dry_run=False, leader=True).outcomes[0]
        clock.advance(timedelta(minutes=4))
    t_up = T0 + timedelta(minutes=1)
    assert a.plan.memory.last_scale_up_at == t_up  # pod-a scaled 10 -> 33 at 12:01
    assert stores["pod-b"].saves == 0 and stores["pod-a"].saves == 2
    assert [r.method for r in state_writes(kube_env)] == ["POST", "PATCH"]  # both pod-a's
    assert stores["pod-b"].loads == 1  # at its start only, not on every follower tick
    # pod-b's own (dry-run) memory has its would-be scale-up of 12:00.
    assert ctl["pod-b"].memory["edge"].last_scale_up_at == T0
    # pod-a is gone; pod-b leads at 12:10: it loads what pod-a saved before planning.
    plan = ctl["pod-b"].tick(pol, dry_run=False, leader=True).outcomes[0].plan
    assert stores["pod-b"].loads == 2 and stores["pod-b"].saves == 1
    assert plan.memory.last_scale_up_at == t_up
    assert decode_memory(stored(kube_env)["edge"]).memory == plan.memory


# --------------------------------------------------------------------------- stores and settings
def test_in_memory_store_sets_removes_and_fails_on_demand():
    s = InMemoryMemoryStore({"a": "1"})
    s.save({"b": "2", "a": None})
    assert s.load() == {"b": "2"} and (s.writes, s.loads) == (1, 1)
    s.fail_saves = True
    with pytest.raises(EbbtideError, match="cannot be written"):
        s.save({"c": "3"})
    assert s.load() == {"b": "2"}


def test_run_settings_for_the_state_configmap():
    from scaler.cli.run import ENV_VARS, parse_settings

    off = parse_settings(["run", "--policy", "p.yaml"], {})
    assert off.state_configmap is None
    on = parse_settings(["run", "--policy", "p.yaml", "--state-configmap", "ebbtide-state", "--state-namespace", "ops"],
                        {})
    assert (on.state_configmap, on.state_namespace) == ("ebbtide-state", "ops")
    env = parse_settings(["run", "--policy", "p.yaml"], {ENV_VARS["state_configmap"]: "x-state",
                                                          ENV_VARS["state_namespace"]: "ns1"})
    assert (env.state_configmap, env.state_namespace) == ("x-state", "ns1")
    with pytest.raises(EbbtideError, match="--state-configmap: 'State_1' is not a ConfigMap name"):
        parse_settings(["run", "--policy", "p.yaml", "--state-configmap", "State_1"], {})


def test_a_store_that_keeps_refusing_saves_warns_once_per_ten_minutes_and_says_when_it_is_back(caplog):
    """A ConfigMap refused for good (RBAC 403) warned on every tick (every 15 s). Now the first
    failure of a run warns, the next ones are counted and logged at DEBUG until SAVE_WARN_EVERY
    has passed, and the first save that goes through says so."""
    from scaler.controller import SAVE_WARN_EVERY

    metrics = ControllerMetrics()
    c = Controller(f.Clock(), None, None, None, metrics=metrics,  # type: ignore[arg-type]
                   memory_store=InMemoryMemoryStore())
    store = c.memory_store
    store.fail_saves = True
    pol = f.make_policy()
    t = f.NOW
    with caplog.at_level(logging.DEBUG, logger="ebbtide.controller"):
        for i in range(45):  # 11 minutes of 15 s ticks, each with a memory that changed
            c.memory["edge"] = PlannerMemory(last_scale_up_at=t)
            assert c.save_memory(pol, t) is False
            t += timedelta(seconds=15)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "not saved" in r.getMessage()]
        assert len(warnings) == 2 and len(debug) == 43 and errors(metrics, "state_save") == 45
        assert "failing since" not in warnings[0]
        assert f"(failing since {f.NOW.isoformat()}, 41 saves; said again every 10 minutes)" in warnings[1]
        assert 40 * timedelta(seconds=15) == SAVE_WARN_EVERY
        store.fail_saves = False
        c.memory["edge"] = PlannerMemory(last_scale_up_at=t)
        assert c.save_memory(pol, t) is True
    back = [r.getMessage() for r in caplog.records if "again" in r.getMessage() and r.levelno == logging.INFO]
    assert back == [f"planner memory saved to in-memory store again (45 failed saves since {f.NOW.isoformat()})"]
    store.fail_saves = True  # a new run of failures warns at once
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ebbtide.controller"):
        c.memory["edge"] = PlannerMemory(last_scale_up_at=t + timedelta(seconds=15))
        c.save_memory(pol, t + timedelta(seconds=15))
    assert len(caplog.records) == 1 and "failing since" not in caplog.records[0].getMessage()
