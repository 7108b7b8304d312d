"""scaler.kube against a real HTTP Kubernetes API emulator (kmock) through the official client.

Cases:
- read: Deployment replicas/ready from /scale, the HPA found by listing (a decoy HPA on a
  StatefulSet of the same name ignored), caps from a YAML ConfigMap; StatefulSet whose Scale
  lacks readyReplicas -> the workload is read too; missing ConfigMap/key -> no caps; a
  malformed document, a missing workload, a policy-named HPA that is missing or targets another
  workload, two HPAs on one workload -> KubeError naming the object.
- apply via /scale (Deployment and StatefulSet): replicas written with a merge patch and field
  manager `ebbtide`, an EbbtideScaled Event on the workload.
- apply via HPA minReplicas: the Deployment's replicas untouched; minReplicas never above the
  HPA's maxReplicas; the HPA found by listing when the state was read elsewhere; an HPA plan
  with no HPA any more writes nothing.
- bitrate document: ConfigMap created when missing, JSON and YAML, other keys kept on patch; a
  FEC-profile-only change is written; a ConfigMap deleted between the read and the write is
  created (PATCH 404, then POST).
- a ConfigMap's data (the planner memory store): told it is missing but created meanwhile ->
  POST 409, then one merge patch keeping the other keys; told nothing and missing -> PATCH 404,
  then POST with the managed-by label.
- zero API calls when the plan equals the state (scale, HPA, bitrate), counted at the transport.
- dry run: zero write requests, the would-be writes returned, the cluster unchanged.
- retries: 409 (re-read then re-write), 429 (Retry-After honoured), 500 (back-off with
  jitter, hand-computed), 500 after commit; bounded attempts and back-off budget; 403 not
  retried and nothing else written; a 409 on the HPA re-reads its (lowered) maxReplicas.
- no partial applies: the bitrate write failing for good rolls the replicas back; a failing
  rollback is reported.
- every body sent validates strictly against the Kubernetes 1.30 schemas; the validator refuses
  an unknown field.
- RetryPolicy delays (pure, hand-computed); document parse/dump round trip.
- Lease: pure decisions; two electors -> one leader; takeover only after expiry (injected
  time) and a whole lease duration of unchanged observation; release frees it at once; every
  write of a Lease read with a resourceVersion carries it as a precondition (the emulator keeps
  none, a real API server does), and a 409 there (another candidate wrote first) means follower.
- from_kubeconfig against the emulator; a missing kubeconfig is a KubeError.
- with the real planner: its plan applies, and the next tick's equal plan makes no call.
- a quality guard that starts gets one Warning Event even when nothing else changes; while it
  holds, equal plans make no call; a new breach later gets a new Event.
"""

from __future__ import annotations

import dataclasses

import json
import random
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from policies.schema import BitrateTarget, Workload
from scaler.kube import (
    FIELD_MANAGER,
    MERGE_PATCH,
    REASON_BITRATE,
    REASON_GUARD,
    REASON_SCALED,
    KubeCluster,
    KubeError,
    LeaderElector,
    LeaseRecord,
    RetryPolicy,
    UnreadableDocument,
    decide_lease,
    dump_document,
    parse_document,
    validate_object,
)
from scaler.plans import Plan, PlannerMemory, Step, TierCap, WorkloadState
from support.kube import configmap, deployment, hpa, kube_env, validate_sent  # noqa: F401 (fixture)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NS = "live"
CM = "ebbtide-bitrate"


def make_workload(kind: str = "Deployment", name: str = "web", hpa_name: str | None = None) -> Workload:
    data = {"name": name, "target": {"kind": kind, "namespace": NS, "name": name},
            "demand": {"query": "sum(viewers)", "per_replica": 100},
            "scaling": {"min_replicas": 1, "max_replicas": 50}}
    if hpa_name:
        data["hpa"] = {"name": hpa_name}
    return Workload.model_validate(data)


def make_plan(current: int, target: int, *, via: str = "scale", caps: tuple[TierCap, ...] | None = None,
              guard: bool = False, workload: str = "web") -> Plan:
    steps = [Step("headroom", current, target, f"demand needs {target} replicas")]
    if guard:
        steps.append(Step("quality_guard", target, target, "rebuffering 0.05 > 0.02: no scale-in"))
    for c in caps or ():
        steps.append(Step(f"bitrate:{c.tier}", None, c.rung, f"night rule caps {c.tier} at {c.rung}"))
    return Plan(workload=workload, now=NOW, current_replicas=current, target_replicas=target, apply_via=via,
                steps=tuple(steps), memory=PlannerMemory(), forecast_trusted=True, guard_active=guard,
                data_ok=True, bitrate=caps, inputs_digest="d1g35t")


CAPS_720 = (TierCap("core", "1080p", 6000.0), TierCap("edge", "720p", 3000.0))
TARGET_JSON = BitrateTarget(namespace=NS, name=CM, key="policy.json", format="json")
TARGET_YAML = BitrateTarget(namespace=NS, name=CM, key="policy.yaml", format="yaml")


def doc_text(caps: dict[str, str], fmt: str = "json") -> str:
    doc = {"tiers": {t: {"max_rung": r, "max_kbps": 1.0, "fec_profile": "standard", "weak_network_rung": None,
                         "weak_network_kbps": None} for t, r in caps.items()}}
    return json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc)


def jitter_delays(policy: RetryPolicy, n: int, seed: int = 7, retry_after: float | None = None) -> list[float]:
    """The back-off waits the cluster fixture's seeded RNG gives, by the documented formula."""
    rng = random.Random(seed)
    out = []
    for attempt in range(1, n + 1):
        d = min(policy.max_delay_s, policy.base_delay_s * policy.factor ** (attempt - 1))
        d *= 1 + policy.jitter * rng.random()
        out.append(max(d, retry_after) if retry_after is not None else d)
    return out


# --------------------------------------------------------------------------- read
def test_read_deployment_hpa_by_listing_and_yaml_caps(kube_env):
    kube_env.server.seed(
        deployment(NS, "web", replicas=4, ready=3),
        hpa(NS, "decoy", "StatefulSet", "web", 1, 3),  # same name, other kind: not ours
        hpa(NS, "web-hpa", "Deployment", "web", 2, 12),
        configmap(NS, CM, {"policy.yaml": doc_text({"core": "1080p", "edge": "540p"}, "yaml"), "other": "x"}),
    )
    state = kube_env.cluster().read(make_workload(), TARGET_YAML)
    assert state == WorkloadState(replicas=4, ready_replicas=3, hpa_min=2, hpa_max=12,
                                  bitrate_caps=(("core", "1080p"), ("edge", "540p")))
    assert all(r.method == "GET" for r in kube_env.transport.requests)


def test_read_statefulset_reads_workload_when_scale_lacks_ready(kube_env):
    kube_env.server.seed(deployment(NS, "db", replicas=2, ready=None, kind="StatefulSet"))
    state = kube_env.cluster().read(make_workload("StatefulSet", "db"), None)
    assert state == WorkloadState(replicas=2, ready_replicas=0)
    paths = [r.path for r in kube_env.transport.requests]
    assert paths[:2] == ["/apis/apps/v1/namespaces/live/statefulsets/db/scale",
                         "/apis/apps/v1/namespaces/live/statefulsets/db"]


def test_read_missing_configmap_or_key_means_no_caps(kube_env):
    kube_env.server.seed(deployment(NS, "web", 2, 2))
    cluster = kube_env.cluster()
    assert cluster.read(make_workload(), TARGET_JSON).bitrate_caps == ()
    kube_env.server.seed(configmap(NS, CM, {"unrelated": "1"}))
    assert cluster.read(make_workload(), TARGET_JSON).bitrate_caps == ()


@pytest.mark.parametrize("seed,hpa_name,expected", [
    ([configmap(NS, CM, {"policy.json": "{not json"})], None,
     "ConfigMap live/ebbtide-bitrate key policy.json: not valid JSON"),
    ([], "web-hpa", "HorizontalPodAutoscaler live/web-hpa not found (workload 'web': hpa.name)"),
    ([hpa(NS, "web-hpa", "Deployment", "api", 1, 5)], "web-hpa", "scales Deployment api, not Deployment web"),
    ([hpa(NS, "a", "Deployment", "web", 1, 5), hpa(NS, "b", "Deployment", "web", 1, 5)], None,
     "several HPAs target Deployment live/web (a, b)"),
])
def test_read_errors_name_the_object(kube_env, seed, hpa_name, expected):
    kube_env.server.seed(deployment(NS, "web", 2, 2), *seed)
    with pytest.raises(KubeError) as err:
        kube_env.cluster().read(make_workload(hpa_name=hpa_name), TARGET_JSON)
    assert expected in str(err.value)


def test_read_missing_workload(kube_env):
    with pytest.raises(KubeError, match=r"Deployment live/web not found \(workload 'web': target\)"):
        kube_env.cluster().read(make_workload(), None)


# --------------------------------------------------------------------------- apply: replicas
@pytest.mark.parametrize("kind,plural", [("Deployment", "deployments"), ("StatefulSet", "statefulsets")])
def test_scale_out_via_scale_subresource(kube_env, kind, plural):
    kube_env.server.seed(deployment(NS, "web", 3, 3, kind=kind))
    cluster = kube_env.cluster()
    wl = make_workload(kind)
    state = cluster.read(wl, None)
    kube_env.transport.clear()
    result = cluster.apply(make_plan(3, 6), wl, None, state=state)

    assert result.ok and result.changed and not result.rolled_back
    assert kube_env.server.get(kind, NS, "web")["spec"]["replicas"] == 6
    patch, event = kube_env.transport.writes()
    assert (patch.method, patch.path) == ("PATCH", f"/apis/apps/v1/namespaces/live/{plural}/web/scale")
    assert patch.body == {"spec": {"replicas": 6}}
    assert patch.query == f"fieldManager={FIELD_MANAGER}" and patch.content_type == MERGE_PATCH
    assert (event.method, event.path) == ("POST", "/api/v1/namespaces/live/events")
    assert event.body["reason"] == REASON_SCALED and event.body["reportingComponent"] == "ebbtide"
    assert event.body["involvedObject"] == {"apiVersion": "apps/v1", "kind": kind, "name": "web", "namespace": NS}
    assert event.body["message"] == f"{kind} web: scale subresource 3 -> 6: demand needs 6 replicas"
    assert result.api_calls == 2


def test_apply_via_hpa_min_replicas_leaves_deployment_alone(kube_env):
    kube_env.server.seed(deployment(NS, "web", 7, 7), hpa(NS, "web-hpa", "Deployment", "web", 2, 10))
    cluster = kube_env.cluster()
    wl = make_workload(hpa_name="web-hpa")
    state = cluster.read(wl, None)
    kube_env.transport.clear()
    result = cluster.apply(make_plan(2, 5, via="hpa_min_replicas"), wl, None, state=state)

    assert result.ok
    assert kube_env.server.get("HorizontalPodAutoscaler", NS, "web-hpa")["spec"]["minReplicas"] == 5
    assert kube_env.server.get("HorizontalPodAutoscaler", NS, "web-hpa")["spec"]["maxReplicas"] == 10
    assert kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 7
    assert not any("/scale" in r.path or "/deployments/" in r.path for r in kube_env.transport.writes())
    patch = kube_env.transport.writes()[0]
    assert patch.path.endswith("/horizontalpodautoscalers/web-hpa") and patch.body == {"spec": {"minReplicas": 5}}


def test_hpa_min_replicas_never_above_hpa_max(kube_env):
    kube_env.server.seed(deployment(NS, "web", 7, 7), hpa(NS, "web-hpa", "Deployment", "web", 2, 10))
    cluster = kube_env.cluster()
    wl = make_workload()  # HPA found by listing
    result = cluster.apply(make_plan(2, 14, via="hpa_min_replicas"), wl, None, state=cluster.read(wl, None))
    assert kube_env.server.get("HorizontalPodAutoscaler", NS, "web-hpa")["spec"]["minReplicas"] == 10
    assert result.notes == ("minReplicas 14 capped at the HPA's maxReplicas 10 (never above it)",)


def test_hpa_found_when_state_comes_from_elsewhere(kube_env):
    kube_env.server.seed(deployment(NS, "web", 7, 7), hpa(NS, "web-hpa", "Deployment", "web", 2, 10))
    fresh = kube_env.cluster()  # never read this workload: finds the HPA by listing before writing
    result = fresh.apply(make_plan(2, 4, via="hpa_min_replicas"), make_workload(), None,
                         state=WorkloadState(7, 7, hpa_min=2, hpa_max=10))
    assert result.ok and result.api_calls == 3  # LIST HPAs, PATCH the HPA, POST the Event
    assert kube_env.server.get("HorizontalPodAutoscaler", NS, "web-hpa")["spec"]["minReplicas"] == 4


def test_hpa_plan_without_hpa_writes_nothing(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    state = cluster.read(wl, None)
    kube_env.transport.clear()
    result = cluster.apply(make_plan(2, 5, via="hpa_min_replicas"), wl, None, state=state)
    assert not result.ok and "no HPA targets the workload" in result.error
    assert kube_env.transport.requests == []


# --------------------------------------------------------------------------- apply: bitrate
@pytest.mark.parametrize("target", [TARGET_JSON, TARGET_YAML], ids=["json", "yaml"])
def test_bitrate_configmap_created_with_key_and_format(kube_env, target):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    state = cluster.read(wl, target)
    result = cluster.apply(make_plan(3, 3, caps=CAPS_720), wl, target, state=state)

    assert result.ok
    cm = kube_env.server.get("ConfigMap", NS, CM)
    assert list(cm["data"]) == [target.key]
    text = cm["data"][target.key]
    doc = json.loads(text) if target.format == "json" else yaml.safe_load(text)
    assert doc["tiers"] == {
        "core": {"max_rung": "1080p", "max_kbps": 6000.0, "fec_profile": "standard",
                 "weak_network_rung": None, "weak_network_kbps": None},
        "edge": {"max_rung": "720p", "max_kbps": 3000.0, "fec_profile": "standard",
                 "weak_network_rung": None, "weak_network_kbps": None},
    }
    assert (doc["workload"], doc["plan_digest"], doc["updated_at"]) == ("web", "d1g35t", "2026-11-20T12:00:00+00:00")
    assert [w.body.get("reason") for w in result.writes if w.purpose == "event"] == [REASON_BITRATE]
    # read back through the adapter: the caps it wrote
    assert cluster.read(wl, target).bitrate_caps == (("core", "1080p"), ("edge", "720p"))


def test_a_bitrate_configmap_deleted_since_the_read_is_created(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3), configmap(NS, CM, {"policy.json": doc_text({})}))
    cluster = kube_env.cluster()
    wl = make_workload()
    state = cluster.read(wl, TARGET_JSON)  # the ConfigMap is there: the write will patch it
    cluster._core.delete_namespaced_config_map(CM, NS)  # someone else, between the read and the write
    kube_env.transport.clear()
    result = cluster.apply(make_plan(3, 3, caps=CAPS_720), wl, TARGET_JSON, state=state)
    assert result.ok and result.changed
    cm_calls = [(r.method, r.status) for r in kube_env.transport.requests if "/configmaps" in r.path]
    assert cm_calls == [("PATCH", 404), ("POST", 200)]  # the emulator answers a create with 200
    doc = parse_document(kube_env.server.get("ConfigMap", NS, CM)["data"]["policy.json"], "json", "x")
    assert (doc["edge"]["max_rung"], doc["core"]["max_rung"]) == ("720p", "1080p")


def test_config_map_data_follows_what_the_server_holds_not_what_the_caller_saw(kube_env):
    kube_env.server.seed(configmap(NS, "state", {"keep": "me", "old": "x"}))
    cluster = kube_env.cluster()
    # Told it is missing, but it exists (created meanwhile): the create is refused, then one patch.
    assert cluster.write_config_map_data(NS, "state", {"edge": "{}", "old": None}, exists=False)
    assert kube_env.server.get("ConfigMap", NS, "state")["data"] == {"keep": "me", "edge": "{}"}
    assert [(r.method, r.status) for r in kube_env.transport.requests] == [("POST", 409), ("PATCH", 200)]
    kube_env.transport.clear()
    # Told nothing and missing: the patch finds nothing, then it is created, labelled as ours.
    assert cluster.write_config_map_data(NS, "fresh", {"edge": "{}", "gone": None})
    assert [(r.method, r.status) for r in kube_env.transport.requests] == [("PATCH", 404), ("POST", 200)]
    fresh = kube_env.server.get("ConfigMap", NS, "fresh")
    assert fresh["data"] == {"edge": "{}"}
    assert fresh["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ebbtide"


def test_bitrate_patch_keeps_other_keys(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3),
                         configmap(NS, CM, {"policy.json": doc_text({"core": "1080p", "edge": "1080p"}),
                                            "player.conf": "keep me"}))
    cluster = kube_env.cluster()
    wl = make_workload()
    result = cluster.apply(make_plan(3, 3, caps=CAPS_720), wl, TARGET_JSON, state=cluster.read(wl, TARGET_JSON))
    assert result.ok
    cm = kube_env.server.get("ConfigMap", NS, CM)
    assert cm["data"]["player.conf"] == "keep me"
    assert parse_document(cm["data"]["policy.json"], "json", "x")["edge"]["max_rung"] == "720p"
    assert [r.method for r in kube_env.transport.writes()] == ["PATCH", "POST"]  # the ConfigMap, one Event


def test_fec_profile_change_alone_is_written(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    cluster.apply(make_plan(3, 3, caps=CAPS_720), wl, TARGET_JSON, state=cluster.read(wl, TARGET_JSON))
    state = cluster.read(wl, TARGET_JSON)
    weak = (CAPS_720[0], TierCap("edge", "720p", 3000.0, fec_profile="aggressive"))
    kube_env.transport.clear()
    result = cluster.apply(make_plan(3, 3, caps=weak), wl, TARGET_JSON, state=state)
    assert result.changed and result.ok
    doc = parse_document(kube_env.server.get("ConfigMap", NS, CM)["data"]["policy.json"], "json", "x")
    assert doc["edge"]["fec_profile"] == "aggressive"


# --------------------------------------------------------------------------- zero calls
@pytest.mark.parametrize("via", ["scale", "hpa_min_replicas"])
def test_zero_calls_when_plan_equals_state(kube_env, via):
    kube_env.server.seed(deployment(NS, "web", 4, 4), configmap(NS, CM, {"policy.json": doc_text({})}))
    if via == "hpa_min_replicas":
        kube_env.server.seed(hpa(NS, "web-hpa", "Deployment", "web", 3, 10))
    cluster = kube_env.cluster()
    wl = make_workload()
    # The first apply starts the guard (its Event); the identical plan after it must be silent.
    cluster.apply(make_plan(4, 4, caps=CAPS_720, guard=True), wl, TARGET_JSON, state=cluster.read(wl, TARGET_JSON))
    state = cluster.read(wl, TARGET_JSON)
    current = state.replicas if via == "scale" else state.hpa_min
    kube_env.transport.clear()
    calls_before = cluster.api_calls

    result = cluster.apply(make_plan(current, current, via=via, caps=CAPS_720, guard=True), wl, TARGET_JSON,
                           state=state)
    assert (result.ok, result.changed, result.api_calls, result.writes) == (True, False, 0, ())
    assert kube_env.transport.requests == [] and cluster.api_calls == calls_before


def test_a_guard_that_starts_gets_one_event_even_when_nothing_changes(kube_env):
    kube_env.server.seed(deployment(NS, "web", 4, 4), configmap(NS, CM, {"policy.json": doc_text({})}))
    cluster = kube_env.cluster()
    wl = make_workload()
    cluster.apply(make_plan(4, 4, caps=CAPS_720), wl, TARGET_JSON, state=cluster.read(wl, TARGET_JSON))
    state = cluster.read(wl, TARGET_JSON)

    started = cluster.apply(make_plan(4, 4, caps=CAPS_720, guard=True), wl, TARGET_JSON, state=state)
    assert started.ok and not started.changed
    assert [(w.verb, w.purpose) for w in started.writes] == [("create", "event")]
    event = started.writes[0].body
    assert (event["reason"], event["type"]) == ("EbbtideGuard", "Warning")
    assert "rebuffering 0.05 > 0.02: no scale-in" in event["message"]

    held = cluster.apply(make_plan(4, 4, caps=CAPS_720, guard=True), wl, TARGET_JSON, state=state)
    assert (held.writes, held.api_calls) == ((), 0)
    cluster.apply(make_plan(4, 4, caps=CAPS_720), wl, TARGET_JSON, state=state)  # guard ends: silent
    later = dataclasses.replace(make_plan(4, 4, caps=CAPS_720, guard=True), now=NOW + timedelta(minutes=5))
    again = cluster.apply(later, wl, TARGET_JSON, state=state)  # a new breach: a new Event
    assert [w.purpose for w in again.writes] == ["event"]


# --------------------------------------------------------------------------- dry run
def test_dry_run_makes_zero_writes(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    before = kube_env.server.get("Deployment", NS, "web")
    result = cluster.apply(make_plan(3, 8, caps=CAPS_720, guard=True), wl, TARGET_JSON, dry_run=True)

    assert result.ok and result.dry_run and result.changed
    assert kube_env.transport.writes() == []
    assert all(r.method == "GET" for r in kube_env.transport.requests)
    assert kube_env.server.get("Deployment", NS, "web") == before
    assert kube_env.server.get("ConfigMap", NS, CM) is None
    assert [(w.verb, w.purpose) for w in result.writes] == [
        ("patch", "replicas"), ("create", "bitrate"), ("create", "event"), ("create", "event"), ("create", "event")]
    assert [w.body["reason"] for w in result.writes if w.purpose == "event"] == [REASON_SCALED, REASON_BITRATE,
                                                                                  REASON_GUARD]
    for w in result.writes:  # what would have been sent is valid too
        if w.verb == "create":
            validate_object(w.body)


# --------------------------------------------------------------------------- retries
def test_409_rereads_then_rewrites(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    state = cluster.read(wl, None)
    kube_env.transport.clear()
    kube_env.transport.fail("PATCH", r"/deployments/web/scale$", 409)
    result = cluster.apply(make_plan(3, 6), wl, None, state=state)
    assert result.ok and kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 6
    sequence = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in kube_env.transport.requests[:3]]
    assert sequence == [("PATCH", "scale", 409), ("GET", "scale", 200), ("PATCH", "scale", 200)]
    assert kube_env.sleeps == jitter_delays(cluster.retry, 1)


def test_429_honours_retry_after(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    kube_env.transport.fail("PATCH", r"/scale$", 429, times=2, retry_after=3)
    result = cluster.apply(make_plan(3, 6), wl, None, state=cluster.read(wl, None))
    assert result.ok and kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 6
    assert kube_env.sleeps == [3.0, 3.0]


@pytest.mark.parametrize("after", [False, True], ids=["rejected", "applied-then-500"])
def test_500_backs_off_with_jitter(kube_env, after):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    state = cluster.read(wl, TARGET_JSON)
    kube_env.transport.fail("PATCH", r"/scale$", 500, times=2, after=after)
    kube_env.transport.fail("POST", r"/configmaps$", 503, times=1)
    result = cluster.apply(make_plan(3, 9, caps=CAPS_720), wl, TARGET_JSON, state=state)
    assert result.ok
    assert kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 9
    assert kube_env.server.get("ConfigMap", NS, CM) is not None
    # two waits for the scale patch, then a fresh back-off (attempt 1) for the ConfigMap create;
    # the jitter draws come one after another from the fixture's RNG (seed 7)
    p, rng = cluster.retry, random.Random(7)
    r1, r2, r3 = rng.random(), rng.random(), rng.random()
    assert kube_env.sleeps == pytest.approx([0.2 * (1 + 0.2 * r1), 0.4 * (1 + 0.2 * r2), 0.2 * (1 + 0.2 * r3)])
    assert (p.base_delay_s, p.factor, p.jitter) == (0.2, 2.0, 0.2)


def test_retries_are_bounded(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster(retry=RetryPolicy(attempts=4, base_delay_s=1.0, factor=2.0, max_total_s=60))
    wl = make_workload()
    state = cluster.read(wl, None)
    kube_env.transport.fail("PATCH", r"/scale$", 500, times=100)
    result = cluster.apply(make_plan(3, 6), wl, None, state=state)
    assert not result.ok and "gave up after 4 attempts" in result.error
    assert sum(1 for r in kube_env.transport.writes() if r.method == "PATCH") == 4
    assert kube_env.sleeps == jitter_delays(cluster.retry, 3)
    assert kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 3
    assert not any(r.method == "POST" for r in kube_env.transport.writes())  # no Event for a failed change


def test_retry_after_beyond_budget_gives_up(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster(retry=RetryPolicy(max_total_s=10))
    wl = make_workload()
    kube_env.transport.fail("PATCH", r"/scale$", 429, times=5, retry_after=30)
    result = cluster.apply(make_plan(3, 6), wl, None, state=cluster.read(wl, None))
    assert not result.ok and "would exceed the 10 s retry budget" in result.error
    assert kube_env.sleeps == []


def test_forbidden_is_not_retried_and_nothing_else_written(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3))
    cluster = kube_env.cluster()
    wl = make_workload()
    kube_env.transport.fail("PATCH", r"/scale$", 403)
    result = cluster.apply(make_plan(3, 6, caps=CAPS_720), wl, TARGET_JSON, state=cluster.read(wl, TARGET_JSON))
    assert not result.ok and result.error.startswith("PATCH Deployment live/web/scale: 403 Forbidden")
    assert [r.status for r in kube_env.transport.writes()] == [403]
    assert kube_env.sleeps == [] and kube_env.server.get("ConfigMap", NS, CM) is None


def test_hpa_conflict_rereads_its_lowered_max(kube_env):
    kube_env.server.seed(deployment(NS, "web", 7, 7), hpa(NS, "web-hpa", "Deployment", "web", 2, 10))
    cluster = kube_env.cluster()
    wl = make_workload()
    state = cluster.read(wl, None)
    kube_env.server.seed(hpa(NS, "web-hpa", "Deployment", "web", 2, 6))  # someone lowers maxReplicas
    kube_env.transport.fail("PATCH", r"/horizontalpodautoscalers/web-hpa$", 409)
    result = cluster.apply(make_plan(2, 8, via="hpa_min_replicas"), wl, None, state=state)
    assert result.ok
    assert kube_env.server.get("HorizontalPodAutoscaler", NS, "web-hpa")["spec"] == {
        **hpa(NS, "web-hpa", "Deployment", "web", 6, 6)["spec"]}


# --------------------------------------------------------------------------- rollback
def test_bitrate_failure_rolls_a_scale_in_back(kube_env):
    kube_env.server.seed(deployment(NS, "web", 6, 6), configmap(NS, CM, {"policy.json": doc_text({})}))
    cluster = kube_env.cluster(retry=RetryPolicy(attempts=3))
    wl = make_workload()
    state = cluster.read(wl, TARGET_JSON)
    kube_env.transport.fail("PATCH", r"/configmaps/", 500, times=3)
    result = cluster.apply(make_plan(6, 3, caps=CAPS_720), wl, TARGET_JSON, state=state)

    assert not result.ok and result.rolled_back
    assert "ConfigMap live/ebbtide-bitrate" in result.error and "gave up after 3 attempts" in result.error
    assert kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 6
    assert [(w.purpose, w.body) for w in result.writes] == [
        ("replicas", {"spec": {"replicas": 3}}), ("replicas", {"spec": {"replicas": 6}})]
    assert result.notes == ("rolled back replicas 3 -> 6 because the bitrate write failed",)
    assert kube_env.server.list("Event", NS) == []


@pytest.mark.parametrize("via", ["scale", "hpa_min_replicas"])
def test_bitrate_failure_keeps_a_scale_up(kube_env, via):
    """Capacity is never taken back for a document that cannot be written: a ConfigMap refusing
    every write (RBAC, a webhook) rolled back every scale-up of the bitrate workload, tick after
    tick (10 -> 33 -> 10)."""
    kube_env.server.seed(deployment(NS, "web", 3, 3), configmap(NS, CM, {"policy.json": doc_text({})}))
    if via == "hpa_min_replicas":
        kube_env.server.seed(hpa(NS, "web-hpa", "Deployment", "web", 3, 10))
    cluster = kube_env.cluster(retry=RetryPolicy(attempts=2))
    wl = make_workload()
    state = cluster.read(wl, TARGET_JSON)
    kube_env.transport.fail("PATCH", r"/configmaps/", 403, times=2)
    result = cluster.apply(make_plan(3, 6, via=via, caps=CAPS_720), wl, TARGET_JSON, state=state)

    assert not result.ok and not result.rolled_back and "ConfigMap live/ebbtide-bitrate" in result.error
    what = "replicas" if via == "scale" else "HPA minReplicas"
    assert result.notes == (f"{what} kept at 6 (was 3): a scale-up is not rolled back because the bitrate "
                            "write failed; the caps stay as they were",)
    if via == "scale":
        assert kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 6
    else:
        assert kube_env.server.get("HorizontalPodAutoscaler", NS, "web-hpa")["spec"]["minReplicas"] == 6
    assert [w.purpose for w in result.writes] == ["replicas" if via == "scale" else via, "event"]  # no write back
    assert json.loads(kube_env.server.get("ConfigMap", NS, CM)["data"]["policy.json"]) == {"tiers": {}}
    [event] = kube_env.server.list("Event", NS)  # the change that stands gets its Event, as any change does
    what = "scale subresource" if via == "scale" else "HPA minReplicas"
    assert event["reason"] == "EbbtideScaled" and event["message"].startswith(f"Deployment web: {what} 3 -> 6")


def test_failed_rollback_is_reported(kube_env):
    kube_env.server.seed(deployment(NS, "web", 6, 6), configmap(NS, CM, {"policy.json": doc_text({})}))
    cluster = kube_env.cluster(retry=RetryPolicy(attempts=2))
    wl = make_workload()
    state = cluster.read(wl, TARGET_JSON)
    kube_env.transport.fail("PATCH", r"/configmaps/", 500, times=2)
    kube_env.transport.fail("PATCH", r"/scale$", 500, times=2, skip=1)  # the scale-in lands, the rollback not
    result = cluster.apply(make_plan(6, 3, caps=CAPS_720), wl, TARGET_JSON, state=state)
    assert not result.ok and not result.rolled_back
    assert result.notes[0].startswith("ROLLBACK FAILED: replicas left at 3 (was 6): PATCH Deployment live/web/scale")
    assert kube_env.server.get("Deployment", NS, "web")["spec"]["replicas"] == 3


# --------------------------------------------------------------------------- schemas
def test_every_body_sent_validates_strictly(kube_env):
    kube_env.server.seed(deployment(NS, "web", 3, 3), deployment(NS, "db", 1, 1, kind="StatefulSet"),
                         hpa(NS, "db-hpa", "StatefulSet", "db", 1, 4))
    cluster = kube_env.cluster(validate_bodies=False)  # validate here, on what went over the wire
    web, db = make_workload(), make_workload("StatefulSet", "db")
    cluster.apply(make_plan(3, 5, caps=CAPS_720, guard=True), web, TARGET_YAML, state=cluster.read(web, TARGET_YAML))
    cluster.apply(make_plan(1, 3, via="hpa_min_replicas", workload="db"), db, None, state=cluster.read(db, None))
    a = LeaderElector(cluster, NS, "ebbtide-leader", "pod-a")
    assert a.try_acquire_or_renew(NOW) and a.try_acquire_or_renew(NOW + timedelta(seconds=5))
    sent = kube_env.transport.writes()
    assert {(r.method, r.path.split("/")[-1]) for r in sent} == {
        ("PATCH", "scale"), ("POST", "configmaps"), ("POST", "events"), ("PATCH", "db-hpa"), ("POST", "leases"),
        ("PATCH", "ebbtide-leader")}
    assert sum(1 for r in sent if r.path.endswith("/events")) == 4  # web: Scaled, Bitrate, Guard; db: Scaled
    assert len(sent) == 9 and validate_sent(kube_env.transport) == 9


def test_validator_refuses_unknown_fields_and_wrong_types():
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": NS},
             "involvedObject": {"kind": "Deployment", "name": "web", "namespace": NS}}
    validate_object(event)
    with pytest.raises(KubeError, match=r"Event web.1: \(top level\): Additional properties are not allowed"):
        validate_object({**event, "reasonn": "typo"})
    with pytest.raises(KubeError, match=r"Event web.1: count: '1' is not of type 'integer'"):
        validate_object({**event, "count": "1"})


# --------------------------------------------------------------------------- pure parts
def test_retry_policy_delays_hand_computed():
    p = RetryPolicy(base_delay_s=0.5, factor=3.0, max_delay_s=4.0, jitter=0.5)
    assert p.delay_s(1, 0.0) == 0.5
    assert p.delay_s(2, 0.5) == pytest.approx(1.5 * 1.25)
    assert p.delay_s(3, 0.0) == 4.0  # 4.5 capped
    assert p.delay_s(1, 0.0, retry_after_s=7) == 7
    assert p.delay_s(3, 0.99, retry_after_s=1) == pytest.approx(4.0 * 1.495)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_document_round_trip_and_errors():
    tiers = {"core": {"max_rung": "1080p", "max_kbps": 6000.0}}
    for fmt in ("json", "yaml"):
        assert parse_document(dump_document({"tiers": tiers}, fmt), fmt, "cm") == tiers
    assert parse_document("", "json", "cm") == {}
    with pytest.raises(KubeError, match="cm: `tiers` must map each tier"):
        parse_document('{"tiers": {"core": "1080p"}}', "json", "cm")
    # garbage Ebbtide cannot read is refused, not taken for "no caps yet" and overwritten
    with pytest.raises(KubeError, match=r"cm: not a bitrate document \(a list, not a mapping with `tiers`\)"):
        parse_document("[1, 2, 3]", "json", "cm")
    with pytest.raises(KubeError, match="cm: `tiers` is null"):
        parse_document("tiers: null\n", "yaml", "cm")
    assert parse_document("{}", "json", "cm") == {}  # a mapping without caps yet


# --------------------------------------------------------------------------- leases
def lease(holder: str | None, renew: datetime | None, duration_s: int = 15) -> LeaseRecord:
    return LeaseRecord(holder, duration_s, renew, renew)


@pytest.mark.parametrize("record,now,observed,action", [
    (None, NOW, None, "create"),
    (lease("me", NOW), NOW + timedelta(seconds=100), None, "renew"),
    (lease("other", NOW), NOW + timedelta(seconds=14), None, "follow"),
    (lease("other", NOW), NOW + timedelta(seconds=15), None, "acquire"),
    (lease("other", NOW), NOW + timedelta(seconds=16), NOW + timedelta(seconds=10), "follow"),  # seen for 6 s only
    (lease("other", NOW), NOW + timedelta(seconds=25), NOW + timedelta(seconds=10), "acquire"),
    (lease(None, NOW), NOW, None, "acquire"),
])
def test_decide_lease(record, now, observed, action):
    assert decide_lease(record, now, "me", observed).action == action


def test_two_electors_one_leader_and_takeover_after_expiry(kube_env):
    cluster = kube_env.cluster()
    a = LeaderElector(cluster, NS, "ebbtide-leader", "pod-a", lease_duration_s=15)
    b = LeaderElector(cluster, NS, "ebbtide-leader", "pod-b", lease_duration_s=15)
    assert a.try_acquire_or_renew(NOW) is True
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=1)) is False
    assert a.try_acquire_or_renew(NOW + timedelta(seconds=10)) is True  # renewed: expires at +25
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=20)) is False  # b first saw this record at +20
    # a stops renewing. Expired at +25 by renewTime, but b has watched it unchanged only since +20:
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=30)) is False
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=35)) is True
    spec = kube_env.server.get("Lease", NS, "ebbtide-leader")["spec"]
    assert spec["holderIdentity"] == "pod-b" and spec["leaseTransitions"] == 1
    assert spec["renewTime"] == "2026-11-20T12:00:35.000000Z" and spec["acquireTime"] == spec["renewTime"]
    assert a.try_acquire_or_renew(NOW + timedelta(seconds=36)) is False


def test_release_frees_the_lease_at_once(kube_env):
    cluster = kube_env.cluster()
    a = LeaderElector(cluster, NS, "ebbtide-leader", "pod-a")
    b = LeaderElector(cluster, NS, "ebbtide-leader", "pod-b")
    assert a.try_acquire_or_renew(NOW)
    assert b.release(NOW) is False  # not b's to release
    assert a.release(NOW + timedelta(seconds=1)) is True
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=2)) is True


def test_lease_writes_carry_the_resource_version_read_and_a_conflict_means_follower(kube_env):
    old = "2026-11-20T11:00:00.000000Z"  # pod-a's last renewal, an hour before NOW: long expired
    kube_env.server.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                          "metadata": {"name": "ebbtide-leader", "namespace": NS, "resourceVersion": "41"},
                          "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15, "acquireTime": old,
                                   "renewTime": old, "leaseTransitions": 0}})
    b = LeaderElector(kube_env.cluster(), NS, "ebbtide-leader", "pod-b", lease_duration_s=15)
    assert b.try_acquire_or_renew(NOW) is False  # first sight of the record: watch it a lease duration
    kube_env.transport.fail("PATCH", r"/leases/ebbtide-leader$", 409)  # pod-c took it over meanwhile
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=16)) is False
    assert b.last_decision.action == "acquire" and "409" in b.last_error
    patches = [r for r in kube_env.transport.requests if r.method == "PATCH"]
    assert [p.body["metadata"] for p in patches] == [{"resourceVersion": "41"}]
    assert patches[0].body["spec"]["holderIdentity"] == "pod-b"
    # Giving a lease up is conditional too: nobody else's newer record is wiped.
    kube_env.server.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                          "metadata": {"name": "other-leader", "namespace": NS, "resourceVersion": "7"},
                          "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15, "renewTime": old}})
    kube_env.transport.clear()
    assert LeaderElector(kube_env.cluster(), NS, "other-leader", "pod-b").release(NOW) is True
    [released] = [r for r in kube_env.transport.requests if r.method == "PATCH"]
    assert released.body["metadata"] == {"resourceVersion": "7"} and released.body["spec"]["holderIdentity"] is None


def test_lease_api_error_means_follower(kube_env):
    a = LeaderElector(kube_env.cluster(), NS, "ebbtide-leader", "pod-a")
    kube_env.transport.fail("GET", r"/leases/", 503)
    assert a.try_acquire_or_renew(NOW) is False and a.last_error.startswith("Lease live/ebbtide-leader: 503")


# --------------------------------------------------------------------------- construction
def test_from_kubeconfig(kube_env, tmp_path):
    kube_env.server.seed(deployment(NS, "web", 2, 2))
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "emu", "cluster": {"server": kube_env.server.url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u"}},
                     {"name": "other", "context": {"cluster": "nowhere", "user": "u"}}],
    }))
    cluster = KubeCluster.from_kubeconfig(str(path), "emu")
    assert cluster.read(make_workload(), None) == WorkloadState(replicas=2, ready_replicas=2)
    with pytest.raises(KubeError, match="kubeconfig .*missing"):
        KubeCluster.from_kubeconfig(str(tmp_path / "missing"))
    # the HTTP library does not retry inside RetryPolicy's attempts (a hung server held a tick 207 s)
    retries = cluster.api_client.rest_client.pool_manager.connection_pool_kw["retries"]
    assert retries is False or retries.total is False


def test_kubeconfig_env_list_is_merged_as_kubectl_merges_it(kube_env, tmp_path, monkeypatch):
    """No path: $KUBECONFIG, every file of a `:` list (the e2e script passes only --context; it
    passed the first file, where a context of the second was not found)."""
    import kubernetes.config.kube_config as kube_config

    kube_env.server.seed(deployment(NS, "web", 3, 3))
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "other", "context": {"cluster": "nowhere", "user": "u"}}]}))
    second.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "emu", "cluster": {"server": kube_env.server.url}}],
        "users": [{"name": "v", "user": {"token": "t"}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "v"}}]}))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", f"{first}:{second}")
    assert KubeCluster.from_kubeconfig(None, "emu").read(make_workload(), None).replicas == 3
    with pytest.raises(KubeError, match="emu"):
        KubeCluster.from_kubeconfig(str(first), "emu")


def test_a_kubeconfig_cluster_without_a_server_is_a_clear_error(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {}}], "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    with pytest.raises(KubeError, match=r"its cluster has no `server` URL"):
        KubeCluster.from_kubeconfig(str(path))


@pytest.mark.parametrize("text, kind", [("a: b: c\n", "ScannerError"), ("- a\n- b\n", "TypeError")])
def test_a_kubeconfig_that_is_not_one_is_a_clear_error(tmp_path, text, kind):
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    with pytest.raises(KubeError, match=rf"^kubeconfig {path}: not a valid kubeconfig \({kind}: "):
        KubeCluster.from_kubeconfig(str(path))


# --------------------------------------------------------------------------- with the real planner
def test_real_planner_plan_applies_then_next_tick_is_silent(kube_env):
    import planner_helpers as ph

    from scaler.planning import plan as make_plan_for
    from scaler.plans import PlanningState

    wl = ph.workload(per_replica=100, headroom=0.25)  # Deployment live/edge
    pol = ph.policy(wl)
    kube_env.server.seed(deployment("live", "edge", 2, 2))
    cluster = kube_env.cluster()
    state = cluster.read(wl, None)
    first = make_plan_for(ph.trusted(ph.flat(800)), ph.obs(800), wl, pol, PlanningState(state), ph.NOW)
    assert (first.apply_via, first.current_replicas, first.target_replicas) == ("scale", 2, 10)  # 800 x 1.25 / 100

    assert cluster.apply(first, wl, None, state=state).ok
    assert kube_env.server.get("Deployment", "live", "edge")["spec"]["replicas"] == 10
    state = cluster.read(wl, None)
    kube_env.transport.clear()
    second = make_plan_for(ph.trusted(ph.flat(800)), ph.obs(800, at=ph.NOW + ph.MIN), wl, pol,
                           PlanningState(state, first.memory), ph.NOW + ph.MIN)
    result = cluster.apply(second, wl, None, state=state)
    assert (second.target_replicas, result.changed, result.api_calls) == (10, False, 0)
    assert kube_env.transport.requests == []


# --------------------------------------------------------------------------- RBAC on the bitrate document
def test_a_bitrate_document_the_controller_may_not_read_is_unreadable_not_a_failed_read(kube_env):
    """A Role without get on the bitrate ConfigMap (a policy's bitrate.target the chart's
    bitrate.configMaps does not name): the read was a KubeError, so the workload was never
    planned at all, not even a scale-up under load. As an unreadable document, the controller
    plans its replicas without bitrate (tests/test_no_cut_on_bad_data.py)."""
    kube_env.server.seed(deployment(NS, "web", 3, 3), configmap(NS, CM, {"policy.json": doc_text({})}))
    kube_env.transport.fail("GET", r"/configmaps/", 403)
    with pytest.raises(UnreadableDocument, match="ConfigMap live/ebbtide-bitrate: the controller may not read "
                                                 "it .*403.*grant get and patch"):
        kube_env.cluster().read(make_workload(), TARGET_JSON)


def test_an_absent_bitrate_document_that_may_not_be_created_stops_rolling_back_scale_ins(kube_env, monkeypatch):
    """No ConfigMap yet, and no create on configmaps (the chart's bitrate.createConfigMaps false):
    the first scale-in is rolled back as the write fails; from then on the document reads as
    unreadable, so the replicas are planned and applied without bitrate, tick after tick, until
    CREATE_FORBIDDEN_RETRY_S has passed and creating it is tried again."""
    import scaler.kube as kube_module

    clock = [1000.0]
    monkeypatch.setattr(kube_module.time, "monotonic", lambda: clock[0])
    kube_env.server.seed(deployment(NS, "web", 6, 6))
    cluster = kube_env.cluster(retry=RetryPolicy(attempts=2))
    wl = make_workload()
    state = cluster.read(wl, TARGET_JSON)
    assert state.bitrate_caps == ()
    kube_env.transport.fail("POST", r"/configmaps$", 403, times=5)
    result = cluster.apply(make_plan(6, 3, caps=CAPS_720), wl, TARGET_JSON, state=state)
    assert result.rolled_back and "403" in result.error
    with pytest.raises(UnreadableDocument, match="absent, and creating it was refused"):
        cluster.read(wl, TARGET_JSON)
    clock[0] += kube_module.CREATE_FORBIDDEN_RETRY_S + 1
    assert cluster.read(wl, TARGET_JSON).bitrate_caps == ()  # tried again


def test_an_answer_that_is_not_json_is_a_kube_error_naming_it(kube_env):
    class Html:
        status = 200
        data = b"<html><body>Sign in to the corporate proxy</body></html>"

    with pytest.raises(KubeError, match=r"GET Deployment live/web/scale: the API server answered 200 with "
                                        r"something that is not JSON \('<html><body>Sign in"):
        kube_env.cluster().call("GET Deployment live/web/scale", lambda *a, **k: Html())
