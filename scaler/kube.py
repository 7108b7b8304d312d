"""The one Kubernetes adapter: read a workload's state, apply a Plan, elect a leader.

What it touches (see docs/kubernetes.md for RBAC and the semantics in full):
- reads: the Deployment's/StatefulSet's `scale` subresource (and the workload itself when the
  Scale carries no readyReplicas, which a real API server's never does), the autoscaling/v2 HPA
  that owns it (named in the policy, or found by listing HPAs and matching scaleTargetRef
  client-side), and the bitrate policy document (a ConfigMap key, JSON or YAML);
- writes (merge patches, field manager `ebbtide`): `spec.replicas` through the scale
  subresource, or the HPA's `spec.minReplicas` (never above its maxReplicas), the bitrate
  document (ConfigMap created when missing), one core/v1 Event per change, a Lease, and the
  planner memory's ConfigMap data (`write_config_map_data`, for scaler.memory_store).

Guarantees of `KubeCluster.apply`:
- a plan equal to the state makes ZERO API calls;
- 409/429/5xx/connection errors are retried with exponential back-off and jitter, bounded in
  attempts and in total back-off seconds, honouring Retry-After; after a 409 the object is read
  again and the write recomputed;
- "no partial applies": when the replicas write succeeded and the bitrate write then fails for
  good, the replicas are written back to the value they had (best effort: Kubernetes has no
  multi-object transaction; a rollback that fails too is reported, never hidden);
- dry_run runs the same code and swaps only the final writes: they are recorded, not sent.

Only this module (and tests) import `kubernetes`. Times come from the Plan (`plan.now`) or
are passed in (`now`): nothing here reads the wall clock except the default `sleep`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.utils import retry_after_seconds

from policies.errors import EbbtideError, UnreadableDocumentError
from policies.schema import BitrateTarget, Workload
from policies.tls import ca_bundle_problem, client_cert_problem
from scaler.plans import Plan, TierCap, WorkloadState

FIELD_MANAGER = "ebbtide"
#: Kubernetes version whose schemas `validate_object` checks bodies against.
KUBE_SCHEMA_VERSION = "1.30"
#: Content type of every patch: JSON merge patch (RFC 7386), the same for built-in kinds and CRDs.
MERGE_PATCH = "application/merge-patch+json"
REASON_SCALED = "EbbtideScaled"
REASON_BITRATE = "EbbtideBitrate"
REASON_GUARD = "EbbtideGuard"
#: Event messages longer than this are cut (client-go's recorder cuts at 1024 too).
EVENT_MESSAGE_MAX_CHARS = 1024
#: After a refused (403) create of an absent bitrate document, the document reads as unreadable
#: for this long (seconds): replicas are planned without bitrate; then creating it is tried again.
CREATE_FORBIDDEN_RETRY_S = 600.0
MANAGED_BY = {"app.kubernetes.io/managed-by": "ebbtide"}

T = TypeVar("T")


class KubeError(EbbtideError):
    """A Kubernetes call failed for good (after retries), or the cluster is not as the policy says."""


class UnreadableDocument(KubeError, UnreadableDocumentError):
    """The bitrate document does not parse as one (parse_document)."""


def _check_tls_files(cfg: k8s.Configuration, where: str) -> None:
    """A CA or client certificate the kubeconfig names (or holds as `-data`, which the client
    writes to a temporary file) that TLS cannot load is an error now, naming the kubeconfig,
    not `0 SSLError [X509: ...]` from every API call."""
    if cfg.verify_ssl and cfg.ssl_ca_cert and (problem := ca_bundle_problem(cfg.ssl_ca_cert)) is not None:
        raise KubeError(f"{where}: its CA certificate (certificate-authority or -data, read from "
                        f"{cfg.ssl_ca_cert}): {problem}")
    if cfg.cert_file and (problem := client_cert_problem(cfg.cert_file, cfg.key_file)) is not None:
        raise KubeError(f"{where}: its client certificate (client-certificate/-key or their -data): {problem}")


def _api_client(cfg: k8s.Configuration) -> k8s.ApiClient:
    """The client for `cfg`, with the HTTP library's own retries off: `RetryPolicy` is the one
    retry loop. urllib3 retried a GET 3 more times inside each of its attempts, so one API
    server that never answered held a tick for 207 s, not the ~65 s `RetryPolicy` allows."""
    cfg.retries = False
    return k8s.ApiClient(cfg)


# --------------------------------------------------------------------------- retries
@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter for one API call (reads and writes alike).

    Attempt n (1-based) that fails with a retryable status (409, 429, 5xx, or no answer) waits
    `min(max_delay_s, base_delay_s x factor^(n-1)) x (1 + jitter x U[0,1))` seconds, or the
    server's Retry-After if that is longer, then tries again. It gives up after `attempts` calls
    or when the next wait would bring the total waited above `max_total_s`.
    """

    attempts: int = 5
    """Calls at most, the first included (>= 1)."""
    base_delay_s: float = 0.2
    """Wait after the first failure, seconds."""
    factor: float = 2.0
    """Each further wait is this many times the previous one."""
    max_delay_s: float = 5.0
    """Cap of one back-off wait (before jitter), seconds. Retry-After may ask for more."""
    jitter: float = 0.2
    """Up to this fraction is added to each wait at random, so replicas do not retry in step."""
    max_total_s: float = 15.0
    """Budget of all waits of one call, seconds (the tick must end before the next one)."""
    request_timeout_s: float = 10.0
    """Timeout of each HTTP request (connect and read), seconds."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be >= 1")
        if min(self.base_delay_s, self.factor, self.max_delay_s, self.jitter, self.max_total_s) < 0:
            raise ValueError("RetryPolicy: delays, factor, jitter and budget must be >= 0")

    def delay_s(self, attempt: int, rand: float, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based); `rand` in [0, 1). Pure."""
        backoff = min(self.max_delay_s, self.base_delay_s * self.factor ** (attempt - 1))
        backoff *= 1.0 + self.jitter * rand
        return max(backoff, retry_after_s) if retry_after_s is not None else backoff


def is_retryable(status: int | None) -> bool:
    """409 (conflict: re-read and retry), 429 (throttled), 5xx, or None (no answer)."""
    return status is None or status in (409, 429) or 500 <= status <= 599


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Write:
    """One write sent (or, in a dry run, that would have been sent).

    `verb`: patch or create. `path`: `kind namespace/name[/subresource]`. `body`: what goes on
    the wire (a merge patch, or the full object created).
    """

    verb: Literal["patch", "create"]
    path: str
    body: dict[str, Any]
    purpose: str  # replicas | hpa_min_replicas | bitrate | event | rollback


@dataclass(frozen=True)
class ApplyResult:
    """What `KubeCluster.apply` did.

    `ok`: every change the plan asked for is in the cluster (Events aside: an Event that could
    not be recorded is a note, not a failure). `changed`: the plan differed from the state.
    `writes`: writes sent (dry run: the writes that would have been sent), in order.
    `rolled_back`: the replicas write (a scale-in) was undone because the bitrate write failed.
    `api_calls`: HTTP requests made, retries included (0 when the plan equals the state).
    """

    workload: str
    ok: bool
    dry_run: bool
    changed: bool
    writes: tuple[Write, ...] = ()
    rolled_back: bool = False
    error: str | None = None
    notes: tuple[str, ...] = ()
    api_calls: int = 0


# --------------------------------------------------------------------------- bitrate document
def bitrate_document(plan: Plan, caps: tuple[TierCap, ...]) -> dict[str, Any]:
    """The document the media stack reads: per tier the highest rung, its kbit/s, the FEC
    profile and the weak-network rung; plus the workload, plan digest and plan time (UTC ISO)."""
    return {
        "apiVersion": "ebbtide/v1",
        "kind": "BitratePolicy",
        "workload": plan.workload,
        "plan_digest": plan.inputs_digest,
        "updated_at": plan.now.astimezone(timezone.utc).isoformat(),
        "tiers": {
            c.tier: {
                "max_rung": c.rung,
                "max_kbps": c.max_kbps,
                "fec_profile": c.fec_profile,
                "weak_network_rung": c.weak_network_rung,
                "weak_network_kbps": c.weak_network_kbps,
            }
            for c in caps
        },
    }


def dump_document(doc: Mapping[str, Any], fmt: Literal["json", "yaml"]) -> str:
    """Text of the document in the policy's format (keys in a stable order)."""
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"
    return yaml.safe_dump(dict(doc), sort_keys=True)


def _replicas_what(plan: Plan) -> str:
    """What a plan's replicas write moves, for notes: `replicas` or `HPA minReplicas`."""
    return "replicas" if plan.apply_via == "scale" else "HPA minReplicas"


def parse_document(text: str, fmt: Literal["json", "yaml"], where: str) -> dict[str, dict[str, Any]]:
    """tier -> its entry (`max_rung`, ...) from a document's text. Empty text -> {}.

    Raises UnreadableDocument (a KubeError) naming `where` when the text is not a document of this shape.
    """
    if not text.strip():
        return {}
    try:
        doc = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise UnreadableDocument(f"{where}: not valid {fmt.upper()}: {exc}".splitlines()[0]) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UnreadableDocument(f"{where}: not a bitrate document (a {type(doc).__name__}, "
                                 "not a mapping with `tiers`)")
    if "tiers" in doc and doc["tiers"] is None:
        raise UnreadableDocument(f"{where}: `tiers` is null; a bitrate document maps each tier to its cap")
    tiers = doc.get("tiers")
    if tiers is None:
        return {}
    if not isinstance(tiers, dict) or not all(isinstance(v, dict) and isinstance(v.get("max_rung"), str)
                                              for v in tiers.values()):
        raise UnreadableDocument(f"{where}: `tiers` must map each tier to an object with a string `max_rung`")
    return {str(k): dict(v) for k, v in tiers.items()}


_CAP_FIELDS = ("max_rung", "max_kbps", "fec_profile", "weak_network_rung", "weak_network_kbps")


def _cap_fields(c: TierCap) -> dict[str, Any]:
    return {"max_rung": c.rung, "max_kbps": c.max_kbps, "fec_profile": c.fec_profile,
            "weak_network_rung": c.weak_network_rung, "weak_network_kbps": c.weak_network_kbps}


# --------------------------------------------------------------------------- schema validation
def validate_object(obj: Mapping[str, Any], kube_version: str = KUBE_SCHEMA_VERSION) -> None:
    """Check a full object against the real Kubernetes schema of `kube_version`, strictly
    (wrong types AND unknown fields fail). Raises KubeError saying which field.

    Uses `kubernetes-validate` (the test extra); tests run it on every body sent, and
    `KubeCluster(validate_bodies=True)` runs it before each create and on each patch result.
    """
    try:
        import kubernetes_validate
    except ImportError:  # pragma: no cover - the test extra is missing
        raise KubeError("body validation needs kubernetes-validate: pip install -e '.[test]'") from None
    try:
        kubernetes_validate.validate(dict(obj), kube_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top level)"
        name = obj.get("metadata", {}).get("name")
        raise KubeError(f"{obj.get('kind')} {name}: {where}: {exc.message} "
                        f"(Kubernetes {kube_version} schema)") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise KubeError(f"no Kubernetes {kube_version} schema for {obj.get('apiVersion')} "
                        f"{obj.get('kind')}: {exc}") from None


# --------------------------------------------------------------------------- the adapter
@dataclass(frozen=True)
class _Kind:
    kind: str
    read_scale: str
    patch_scale: str
    read: str


_KINDS = {
    "Deployment": _Kind("Deployment", "read_namespaced_deployment_scale", "patch_namespaced_deployment_scale",
                        "read_namespaced_deployment"),
    "StatefulSet": _Kind("StatefulSet", "read_namespaced_stateful_set_scale",
                         "patch_namespaced_stateful_set_scale", "read_namespaced_stateful_set"),
}


@dataclass
class _Seen:
    """What the last read saw of a workload beyond WorkloadState (adapter memory, per target)."""

    hpa_name: str | None = None
    bitrate_tiers: dict[str, dict[str, Any]] | None = None  # None: document not read
    configmap_exists: bool | None = None
    uid: str | None = None
    guard_active: bool = False  # the last applied plan's guard: a guard that starts gets its Event


class KubeCluster:
    """Reads WorkloadStates and applies Plans through one ApiClient.

    `retry`: back-off of every call. `sleep`/`rand`: injectable for tests (seconds; [0, 1)).
    `identity`: this instance (Events' reportingInstance). `validate_bodies`: check every object
    created and every patch result against the Kubernetes schemas (debug; needs the test extra).
    """

    def __init__(self, api_client: k8s.ApiClient, *, retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random,
                 identity: str = "ebbtide", validate_bodies: bool = False):
        self.api_client = api_client
        self.retry = retry
        self.identity = identity
        self.validate_bodies = validate_bodies
        self._sleep = sleep
        self._rand = rand
        self._apps = k8s.AppsV1Api(api_client)
        self._autoscaling = k8s.AutoscalingV2Api(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self.coordination = k8s.CoordinationV1Api(api_client)
        self._seen: dict[tuple[str, str, str], _Seen] = {}
        self.api_calls = 0  # HTTP requests made since construction (retries included)
        self._create_refused: dict[tuple[str, str], float] = {}  # bitrate ConfigMap -> monotonic time of a 403

    # ---- construction
    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None, **kwargs: Any) -> "KubeCluster":
        """From a kubeconfig file (None: $KUBECONFIG or ~/.kube/config) and context (None: current)."""
        cfg = k8s.Configuration()
        where = f"kubeconfig {path or '(default)'}{f' context {context}' if context else ''}"
        try:
            k8s_config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
        except (ConfigException, OSError) as exc:
            raise KubeError(f"{where}: {exc}") from None
        except (yaml.YAMLError, TypeError, AttributeError, KeyError, ValueError) as exc:
            # not YAML, or YAML of another shape (a list, a string): the client's own parser fails
            raise KubeError(f"{where}: not a valid kubeconfig ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]})") from None
        if not (cfg.host or "").strip():
            raise KubeError(f"{where}: its cluster has no `server` URL (clusters[].cluster.server)")
        _check_tls_files(cfg, where)
        return cls(_api_client(cfg), **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> "KubeCluster":
        """From the pod's service account (token and CA mounted by Kubernetes)."""
        cfg = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc:
            raise KubeError(f"not running in a Kubernetes pod (in-cluster config): {exc}") from None
        return cls(_api_client(cfg), **kwargs)

    # ---- HTTP with retries
    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One API call -> its JSON body (a dict). Counts it; no retry (see `_retrying`). An
        answer that is not JSON (a proxy's HTML page with status 200) is a KubeError naming it."""
        self.api_calls += 1
        timeout = self.retry.request_timeout_s
        resp = fn(*args, _preload_content=False, _request_timeout=(timeout, timeout), **kwargs)
        data = resp.data
        try:
            return json.loads(data) if data else {}
        except ValueError:
            head = data[:80].decode("utf-8", "replace") if isinstance(data, bytes) else str(data)[:80]
            raise KubeError(f"{what}: the API server answered {getattr(resp, 'status', '?')} with something that "
                            f"is not JSON ({head!r}...): a proxy or a wrong server URL?") from None

    def _retrying(self, what: str, attempt: Callable[[bool], T]) -> T:
        """Run `attempt(reread)` until it succeeds, retrying per `self.retry`.

        `reread` is True after a 409: the attempt must read the object again before writing.
        Non-retryable errors (404, 403, 422...) and exhausted retries raise KubeError.
        """
        waited_s = 0.0
        reread = False
        n = 0
        while True:
            n += 1
            try:
                return attempt(reread)
            except ApiException as exc:
                status, retry_after = exc.status, retry_after_seconds(exc)
                detail = _status_text(exc)
            except urllib3.exceptions.HTTPError as exc:
                status, retry_after, detail = None, None, f"no answer ({type(exc).__name__}: {exc})"
            if not is_retryable(status):
                raise KubeError(f"{what}: {detail}")
            if n >= self.retry.attempts:
                raise KubeError(f"{what}: {detail} (gave up after {n} attempts, {waited_s:.3g} s of back-off)")
            delay = self.retry.delay_s(n, self._rand(), retry_after)
            if waited_s + delay > self.retry.max_total_s:
                raise KubeError(f"{what}: {detail} (gave up after {n} attempts: waiting {delay:.3g} s more "
                                f"would exceed the {self.retry.max_total_s:g} s retry budget)")
            self._sleep(delay)
            waited_s += delay
            reread = reread or status == 409

    def _get(self, what: str, fn: Callable[..., Any], *args: Any,
             forbidden: Callable[[str], Exception] | None = None) -> dict[str, Any] | None:
        """GET with retries; None on 404. `forbidden(status text)`: the error a 403 raises at once
        (default: a KubeError like any status that is not retried)."""
        def attempt(_: bool) -> dict[str, Any] | None:
            try:
                return self.call(what, fn, *args)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status == 403 and forbidden is not None:
                    raise forbidden(_status_text(exc)) from None
                raise
        return self._retrying(what, attempt)

    # ---- read
    def read(self, workload: Workload, bitrate_target: BitrateTarget | None = None) -> WorkloadState:
        """The workload's replicas, its HPA's bounds and the bitrate caps written now.

        Raises KubeError when the workload is missing, when the HPA named in the policy is
        missing or targets another workload, when several HPAs target it, or when the bitrate
        document cannot be parsed. A missing ConfigMap or key means no caps yet.
        """
        t = workload.target
        kd = _KINDS[t.kind]
        where = f"{t.kind} {t.namespace}/{t.name}"
        scale = self._get(f"GET {where}/scale", getattr(self._apps, kd.read_scale), t.name, t.namespace)
        if scale is None:
            raise KubeError(f"{where} not found (workload {workload.name!r}: target)")
        replicas = _int(scale.get("spec", {}).get("replicas"), default=1)  # the API defaults it to 1
        ready = scale.get("status", {}).get("readyReplicas")
        uid = scale.get("metadata", {}).get("uid")  # a Scale carries its workload's metadata
        if ready is None:
            # A real Scale has status.replicas and a selector, never readyReplicas: read the workload.
            obj = self._get(f"GET {where}", getattr(self._apps, kd.read), t.name, t.namespace)
            if obj is None:
                raise KubeError(f"{where} not found (workload {workload.name!r}: target)")
            ready = obj.get("status", {}).get("readyReplicas")
            uid = obj.get("metadata", {}).get("uid") or uid
        seen = self._seen.setdefault(_key(workload), _Seen())
        seen.uid = uid

        hpa = self._find_hpa(workload)
        seen.hpa_name = hpa["metadata"]["name"] if hpa else None
        hpa_min = hpa_max = None
        if hpa is not None:
            hpa_min = _int(hpa.get("spec", {}).get("minReplicas"), default=1)
            hpa_max = _int(hpa.get("spec", {}).get("maxReplicas"), default=None)

        caps: tuple[tuple[str, str], ...] = ()
        if bitrate_target is not None:
            tiers, exists = self._read_document(bitrate_target)
            seen.bitrate_tiers, seen.configmap_exists = tiers, exists
            caps = tuple((tier, entry["max_rung"]) for tier, entry in tiers.items())
        return WorkloadState(replicas=replicas, ready_replicas=_int(ready, default=0), hpa_min=hpa_min,
                             hpa_max=hpa_max, bitrate_caps=caps)

    def _find_hpa(self, workload: Workload) -> dict[str, Any] | None:
        t = workload.target
        if workload.hpa is not None:
            where = f"HorizontalPodAutoscaler {t.namespace}/{workload.hpa.name}"
            hpa = self._get(f"GET {where}", self._autoscaling.read_namespaced_horizontal_pod_autoscaler,
                            workload.hpa.name, t.namespace)
            if hpa is None:
                raise KubeError(f"{where} not found (workload {workload.name!r}: hpa.name)")
            if not _targets(hpa, t.kind, t.name):
                ref = hpa.get("spec", {}).get("scaleTargetRef", {})
                raise KubeError(f"{where} scales {ref.get('kind')} {ref.get('name')}, not {t.kind} {t.name} "
                                f"(workload {workload.name!r}: hpa.name)")
            return hpa
        listing = self._get(f"LIST HorizontalPodAutoscalers in {t.namespace}",
                            self._autoscaling.list_namespaced_horizontal_pod_autoscaler, t.namespace)
        # Filtered here, not with a selector: scaleTargetRef is no label (and kmock ignores selectors).
        owners = [h for h in (listing or {}).get("items", []) if _targets(h, t.kind, t.name)]
        if len(owners) > 1:
            names = ", ".join(sorted(h["metadata"]["name"] for h in owners))
            raise KubeError(f"several HPAs target {t.kind} {t.namespace}/{t.name} ({names}): Kubernetes "
                            f"refuses that too (AmbiguousSelector); keep one, or name it in the policy")
        return owners[0] if owners else None

    def _read_document(self, bt: BitrateTarget) -> tuple[dict[str, dict[str, Any]], bool]:
        """The bitrate document's tiers and whether its ConfigMap exists. UnreadableDocument (the
        controller then plans the replicas without bitrate) when it does not parse, when the
        controller may not read it (403), or when it is absent and the last try to create it was
        refused (403) less than CREATE_FORBIDDEN_RETRY_S ago: a write that cannot happen would
        otherwise roll back every scale-in of the workload, tick after tick."""
        where = f"ConfigMap {bt.namespace}/{bt.name}"
        cm = self._get(f"GET {where}", self._core.read_namespaced_config_map, bt.name, bt.namespace,
                       forbidden=lambda status: UnreadableDocument(
                           f"{where}: the controller may not read it ({status}); grant get and patch on it "
                           "(the chart: bitrate.configMaps)"))
        if cm is None:
            refused = self._create_refused.get((bt.namespace, bt.name))
            if refused is not None and time.monotonic() - refused < CREATE_FORBIDDEN_RETRY_S:
                raise UnreadableDocument(f"{where}: absent, and creating it was refused (403 Forbidden): create "
                                         "it (an empty ConfigMap will do), or grant create on configmaps in "
                                         f"{bt.namespace} (the chart: bitrate.createConfigMaps)")
            return {}, False
        text = (cm.get("data") or {}).get(bt.key, "")
        return parse_document(text, bt.format, f"{where} key {bt.key}"), True

    # ---- apply
    def apply(self, plan: Plan, workload: Workload, bitrate_target: BitrateTarget | None = None,
              dry_run: bool = False, *, state: WorkloadState | None = None) -> ApplyResult:
        """Make the cluster match `plan`. `state`: the WorkloadState the plan was made from
        (None: read it now). With a state and a plan equal to it, no API call at all.

        Order: replicas (scale subresource or HPA minReplicas), then the bitrate document, then
        one Event per change. API failures are returned (`ok False`, `error`), not raised. A
        bitrate write that fails for good rolls a scale-in back, never a scale-up
        (docs/kubernetes.md, "No partial applies").
        """
        if plan.workload != workload.name:
            raise ValueError(f"plan for {plan.workload!r} applied to workload {workload.name!r}")
        calls_before = self.api_calls
        notes: list[str] = []
        writes: list[Write] = []
        try:
            if state is None:
                state = self.read(workload, bitrate_target)
            seen = self._seen.setdefault(_key(workload), _Seen())
            replicas = self._replicas_change(plan, state, notes)
            bitrate = self._bitrate_change(plan, state, bitrate_target, seen)
        except KubeError as exc:
            return ApplyResult(plan.workload, False, dry_run, True, (), False, str(exc), (),
                               self.api_calls - calls_before)
        # A quality guard that starts is news for ops even when it changes nothing (it holds a
        # scale-in): it gets its Warning Event. A guard already active, with nothing to change,
        # makes no call at all.
        guard_starts = plan.guard_active and not seen.guard_active
        if not dry_run:
            seen.guard_active = plan.guard_active
        if replicas is None and bitrate is None and not guard_starts:
            return ApplyResult(plan.workload, True, dry_run, False, notes=tuple(notes),
                               api_calls=self.api_calls - calls_before)

        writer = _Writer(self, dry_run, writes)
        previous: int | None = None
        error: str | None = None
        rolled_back = kept = False
        try:
            if replicas is not None:
                before = state.replicas if plan.apply_via == "scale" else state.hpa_min
                assert before is not None  # _replicas_change refused an HPA plan without an HPA
                previous = self._write_replicas(writer, plan, workload, seen, replicas, before)
            if bitrate is not None:
                assert bitrate_target is not None
                try:
                    self._write_document(writer, plan, bitrate_target, seen)
                except KubeError as exc:
                    error = str(exc)
                    if replicas is not None and previous is not None:
                        # Capacity is never taken back for a document that cannot be written: more
                        # pods with the caps as they were is a state the planner itself may choose.
                        kept = replicas > previous
                        if kept:
                            notes.append(f"{_replicas_what(plan)} kept at {replicas} (was {previous}): a scale-up "
                                         "is not rolled back because the bitrate write failed; the caps stay as "
                                         "they were")
                        else:
                            rolled_back = self._roll_back(writer, plan, workload, seen, previous, replicas, notes)
                    raise
        except KubeError as exc:
            error = error or str(exc)
            if kept:  # the scale-up stands: its Event (and the guard's), as for any change
                self._record_events(writer, plan, workload, seen, notes,
                                    self._event_messages(plan, workload, None, state, replicas, None))
            return ApplyResult(plan.workload, False, dry_run, True, tuple(writes), rolled_back, error,
                               tuple(notes), self.api_calls - calls_before)

        self._record_events(writer, plan, workload, seen, notes,
                            self._event_messages(plan, workload, bitrate_target, state, replicas, bitrate))
        if not dry_run and bitrate is not None and bitrate_target is not None:
            seen.bitrate_tiers = {c.tier: _cap_fields(c) for c in plan.bitrate or ()}
            seen.configmap_exists = True
        changed = replicas is not None or bitrate is not None  # a guard Event alone changes nothing
        return ApplyResult(plan.workload, True, dry_run, changed, tuple(writes), False, None, tuple(notes),
                           self.api_calls - calls_before)

    # ---- what changes
    def _replicas_change(self, plan: Plan, state: WorkloadState, notes: list[str]) -> int | None:
        """The value to write (scale replicas or HPA minReplicas), or None when already there."""
        if plan.apply_via == "scale":
            return None if plan.target_replicas == state.replicas else plan.target_replicas
        if state.hpa_min is None:
            raise KubeError(f"plan for {plan.workload!r} moves an HPA's minReplicas, but no HPA targets "
                            f"the workload any more: nothing written (the next tick plans again)")
        want = max(1, plan.target_replicas)
        if state.hpa_max is not None and want > state.hpa_max:
            notes.append(f"minReplicas {want} capped at the HPA's maxReplicas {state.hpa_max} (never above it)")
            want = state.hpa_max
        return None if want == state.hpa_min else want

    @staticmethod
    def _bitrate_change(plan: Plan, state: WorkloadState, bt: BitrateTarget | None,
                        seen: _Seen) -> tuple[TierCap, ...] | None:
        """The caps to write, or None when the document already says the same (time and digest aside)."""
        if plan.bitrate is None or bt is None:
            return None
        want = {c.tier: _cap_fields(c) for c in plan.bitrate}
        if {tier: f["max_rung"] for tier, f in want.items()} != dict(state.bitrate_caps):
            return plan.bitrate
        if seen.bitrate_tiers is not None:
            have = {tier: {k: entry.get(k) for k in _CAP_FIELDS} for tier, entry in seen.bitrate_tiers.items()}
            if have != want:
                return plan.bitrate
        return None

    # ---- writes
    def _write_replicas(self, writer: "_Writer", plan: Plan, workload: Workload, seen: _Seen, value: int,
                        replaced: int) -> int:
        """Write `value` over `replaced` (the value in the state); returns the value it really
        replaced (read again after a conflict)."""
        t = workload.target
        kd = _KINDS[t.kind]
        if plan.apply_via == "scale":
            where = f"{t.kind} {t.namespace}/{t.name}/scale"

            def reread() -> int:
                obj = self.call(f"GET {where}", getattr(self._apps, kd.read_scale), t.name, t.namespace)
                return _int(obj.get("spec", {}).get("replicas"), default=1)

            def send(body: dict[str, Any]) -> dict[str, Any]:
                return self.call(f"PATCH {where}", getattr(self._apps, kd.patch_scale), t.name, t.namespace, body,
                                 field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH)

            return writer.patch(where, "replicas", {"spec": {"replicas": value}}, send, reread, replaced)

        hpa_name = seen.hpa_name or (workload.hpa.name if workload.hpa else None)
        if hpa_name is None:  # the state came from elsewhere: find the HPA as read() does
            found = self._find_hpa(workload)
            if found is None:
                raise KubeError(f"plan for {plan.workload!r} moves an HPA's minReplicas, but no HPA targets "
                                f"{t.kind} {t.namespace}/{t.name}")
            hpa_name = seen.hpa_name = found["metadata"]["name"]
        where = f"HorizontalPodAutoscaler {t.namespace}/{hpa_name}"
        body = {"spec": {"minReplicas": value}}

        def reread_hpa() -> int:
            hpa = self.call(f"GET {where}", self._autoscaling.read_namespaced_horizontal_pod_autoscaler,
                            hpa_name, t.namespace)
            hmax = _int(hpa.get("spec", {}).get("maxReplicas"), default=None)
            if hmax is not None and value > hmax:  # the HPA's max moved under us: never above it
                body["spec"]["minReplicas"] = hmax
            return _int(hpa.get("spec", {}).get("minReplicas"), default=1)

        def send_hpa(b: dict[str, Any]) -> dict[str, Any]:
            return self.call(f"PATCH {where}", self._autoscaling.patch_namespaced_horizontal_pod_autoscaler,
                             hpa_name, t.namespace, b, field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH)

        return writer.patch(where, "hpa_min_replicas", body, send_hpa, reread_hpa, replaced)

    def _roll_back(self, writer: "_Writer", plan: Plan, workload: Workload, seen: _Seen, previous: int,
                   written: int, notes: list[str]) -> bool:
        what = _replicas_what(plan)
        try:
            self._write_replicas(writer, plan, workload, seen, previous, written)
        except KubeError as exc:
            notes.append(f"ROLLBACK FAILED: {what} left at {written} (was {previous}): {exc}")
            return False
        notes.append(f"rolled back {what} {written} -> {previous} because the bitrate write failed")
        return True

    def _write_document(self, writer: "_Writer", plan: Plan, bt: BitrateTarget, seen: _Seen) -> None:
        where = f"ConfigMap {bt.namespace}/{bt.name}"
        text = dump_document(bitrate_document(plan, plan.bitrate or ()), bt.format)
        full = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": bt.name, "namespace": bt.namespace, "labels": dict(MANAGED_BY)},
                "data": {bt.key: text}}
        patch = {"data": {bt.key: text}}
        state = {"exists": seen.configmap_exists}

        def attempt(reread: bool) -> None:
            if reread or state["exists"] is None:
                state["exists"] = self._exists(where, self._core.read_namespaced_config_map, bt.name, bt.namespace)
            if state["exists"]:
                try:
                    writer.send("patch", where, "bitrate", patch, lambda b: self.call(
                        f"PATCH {where}", self._core.patch_namespaced_config_map, bt.name, bt.namespace, b,
                        field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH))
                    return
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    state["exists"] = False  # deleted since it was read: create it
            if not state["exists"]:
                try:
                    writer.send("create", where, "bitrate", full, lambda b: self.call(
                        f"POST {where}", self._core.create_namespaced_config_map, bt.namespace, b,
                        field_manager=FIELD_MANAGER))
                except ApiException as exc:
                    if exc.status == 403:  # read as unreadable for a while (_read_document)
                        self._create_refused[(bt.namespace, bt.name)] = time.monotonic()
                    raise

        if writer.dry_run:
            # Without a read we cannot know: a patch is recorded (the real write creates if missing).
            if seen.configmap_exists is False:
                writer.record("create", where, "bitrate", full)
            else:
                writer.record("patch", where, "bitrate", patch)
            return
        self._retrying(f"write {where} key {bt.key}", attempt)

    # ---- a ConfigMap's data (the planner memory store, scaler.memory_store)
    def read_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The `data` of ConfigMap namespace/name (string values only), or None when it does not
        exist. Retried like every read; raises KubeError when it cannot be read."""
        where = f"ConfigMap {namespace}/{name}"
        cm = self._get(f"GET {where}", self._core.read_namespaced_config_map, name, namespace)
        if cm is None:
            return None
        return {str(k): v for k, v in (cm.get("data") or {}).items() if isinstance(v, str)}

    def write_config_map_data(self, namespace: str, name: str, changes: Mapping[str, str | None], *,
                              exists: bool | None = None) -> bool:
        """Set (str) or remove (None) keys of ConfigMap namespace/name's `data` with ONE merge patch;
        the ConfigMap is created (labelled managed-by ebbtide) when it does not exist. `exists`:
        what the caller last saw (False: create first; a 409 then patches; None: patch first, a
        404 then creates). Retried per `self.retry`; raises KubeError when the write fails for
        good. Returns True (the ConfigMap exists now)."""
        where = f"ConfigMap {namespace}/{name}"
        patch = {"data": dict(changes)}
        full = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
                "data": {k: v for k, v in changes.items() if v is not None}}
        state = {"exists": exists is not False}

        def attempt(_: bool) -> None:
            if not state["exists"]:
                self._check(full)
                try:
                    self.call(f"POST {where}", self._core.create_namespaced_config_map, namespace, full,
                              field_manager=FIELD_MANAGER)
                    return
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    state["exists"] = True  # created meanwhile (AlreadyExists): patch it
            try:
                self._check(self.call(f"PATCH {where}", self._core.patch_namespaced_config_map, name, namespace,
                                      patch, field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH))
            except ApiException as exc:
                if exc.status != 404:
                    raise
                state["exists"] = False  # deleted since: create it
                attempt(False)

        self._retrying(f"write {where}", attempt)
        return True

    def _exists(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            self.call(f"GET {what}", fn, *args)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    # ---- events
    def _record_events(self, writer: "_Writer", plan: Plan, workload: Workload, seen: _Seen, notes: list[str],
                       messages: list[tuple[str, str, str]]) -> None:
        """One Event per (reason, type, message); one that cannot be recorded is a note."""
        t = workload.target
        for reason, kind, message in messages:
            body = self._event(plan, workload, seen, reason, kind, message)
            where = f"Event {t.namespace}/{body['metadata']['name']}"
            try:
                writer.create(where, "event", body, lambda b, w=where: self.call(
                    f"POST {w}", self._core.create_namespaced_event, t.namespace, b), already_ok=True)
            except KubeError as exc:
                notes.append(f"event {reason} not recorded: {exc}")

    def _event_messages(self, plan: Plan, workload: Workload, bt: BitrateTarget | None, state: WorkloadState,
                        replicas: int | None, bitrate: tuple[TierCap, ...] | None) -> list[tuple[str, str, str]]:
        """(reason, type, message) for each change, and for the guard when it is active."""
        t = workload.target
        out: list[tuple[str, str, str]] = []
        sizing = [s for s in plan.steps if not s.name.startswith("bitrate:") and s.name != "quality_guard"]
        if replicas is not None:
            via = ("scale subresource" if plan.apply_via == "scale"
                   else "HPA minReplicas")
            before = state.replicas if plan.apply_via == "scale" else state.hpa_min
            head = f"{t.kind} {t.name}: {via} {before} -> {replicas}"
            out.append((REASON_SCALED, "Normal", _message(head, [s.reason for s in sizing])))
        if bitrate is not None and bt is not None:
            old = dict(state.bitrate_caps)
            moves = [f"{c.tier} {old.get(c.tier, '-')} -> {c.rung}" for c in bitrate]
            reasons = [s.reason for s in plan.steps if s.name.startswith("bitrate:")]
            head = f"bitrate ConfigMap {bt.namespace}/{bt.name} key {bt.key}: " + ", ".join(moves)
            out.append((REASON_BITRATE, "Normal", _message(head, reasons)))
        if plan.guard_active:
            reasons = [s.reason for s in plan.steps if s.name == "quality_guard"] or list(plan.notes)
            out.append((REASON_GUARD, "Warning", _message("quality guard active", reasons)))
        return out

    def _event(self, plan: Plan, workload: Workload, seen: _Seen, reason: str, kind: str,
               message: str) -> dict[str, Any]:
        """A core/v1 Event on the target workload. Its name derives from the plan digest, the
        reason and the plan time, so a retried create is recognised (409 = already recorded)."""
        t = workload.target
        at = plan.now.astimezone(timezone.utc)
        suffix = hashlib.sha256(f"{plan.inputs_digest}|{reason}|{at.isoformat()}".encode()).hexdigest()[:16]
        involved: dict[str, Any] = {"apiVersion": "apps/v1", "kind": t.kind, "name": t.name,
                                    "namespace": t.namespace}
        if seen.uid:
            involved["uid"] = seen.uid
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{t.name}.{suffix}", "namespace": t.namespace, "labels": dict(MANAGED_BY)},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "action": {REASON_SCALED: "Scale", REASON_BITRATE: "WriteBitratePolicy",
                       REASON_GUARD: "HoldScaleIn"}[reason],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self.identity,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }

    def _check(self, obj: Mapping[str, Any]) -> None:
        if self.validate_bodies:
            validate_object(obj)


class _Writer:
    """The one place where writes happen: sends them (with retries), or records them in a dry run.
    `writes` lists each write once: when it succeeded, or (dry run) when it would have been sent."""

    def __init__(self, cluster: KubeCluster, dry_run: bool, writes: list[Write]):
        self.cluster = cluster
        self.dry_run = dry_run
        self.writes = writes

    def record(self, verb: Literal["patch", "create"], path: str, purpose: str, body: dict[str, Any]) -> None:
        self.writes.append(Write(verb, path, json.loads(json.dumps(body)), purpose))

    def send(self, verb: Literal["patch", "create"], path: str, purpose: str, body: dict[str, Any],
             send: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """One attempt (no retry). Debug validation: a created object before it is sent, a
        patched object as the server returns it."""
        if verb == "create":
            self.cluster._check(body)
        result = send(body)
        if verb == "patch":
            self.cluster._check(result)
        self.record(verb, path, purpose, body)
        return result

    def patch(self, path: str, purpose: str, body: dict[str, Any], send: Callable[[dict[str, Any]], dict[str, Any]],
              reread: Callable[[], int], replaced: int) -> int:
        """Patch with retries; after a 409 `reread()` gives the current value (and may adjust
        `body`). Returns the value the write replaced."""
        if self.dry_run:
            self.record("patch", path, purpose, body)
            return replaced
        box = {"replaced": replaced}

        def attempt(again: bool) -> None:
            if again:
                box["replaced"] = reread()
            self.send("patch", path, purpose, body, send)

        self.cluster._retrying(f"PATCH {path}", attempt)
        return box["replaced"]

    def create(self, path: str, purpose: str, body: dict[str, Any],
               send: Callable[[dict[str, Any]], dict[str, Any]], already_ok: bool = False) -> None:
        """Create with retries; with `already_ok` a 409 AlreadyExists counts as done."""
        if self.dry_run:
            self.record("create", path, purpose, body)
            return

        def attempt(again: bool) -> None:
            try:
                self.send("create", path, purpose, body, send)
            except ApiException as exc:
                if already_ok and exc.status == 409:
                    return
                raise

        self.cluster._retrying(f"POST {path}", attempt)


# --------------------------------------------------------------------------- leader election
@dataclass(frozen=True)
class LeaseRecord:
    """A coordination.k8s.io/v1 Lease as read. Times are aware (UTC)."""

    holder: str | None
    duration_s: int | None
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int = 0
    resource_version: str | None = None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> "LeaseRecord":
        spec = obj.get("spec") or {}
        return cls(holder=spec.get("holderIdentity") or None, duration_s=spec.get("leaseDurationSeconds"),
                   acquire_time=_parse_time(spec.get("acquireTime")), renew_time=_parse_time(spec.get("renewTime")),
                   transitions=int(spec.get("leaseTransitions") or 0),
                   resource_version=(obj.get("metadata") or {}).get("resourceVersion"))

    def expires_at(self) -> datetime | None:
        """renewTime + leaseDurationSeconds; None when the lease is free or incomplete."""
        if self.holder is None or self.renew_time is None or not self.duration_s:
            return None
        return self.renew_time + timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class LeaseDecision:
    """`create` (no Lease yet), `renew` (we hold it), `acquire` (free or expired: take it),
    `follow` (someone else holds a live lease). `reason` for logs."""

    action: Literal["create", "renew", "acquire", "follow"]
    reason: str


def decide_lease(lease: LeaseRecord | None, now: datetime, identity: str,
                 observed_since: datetime | None = None) -> LeaseDecision:
    """Pure: what a candidate `identity` does at `now` given the Lease (None: absent).

    A lease held by another is taken over only when it is expired by its own renewTime AND
    this candidate has seen the same record unchanged for a whole leaseDurationSeconds since
    `observed_since` (client-go's rule: a candidate whose clock runs ahead cannot steal a live
    lease). A lease without a holder (released) is free at once.
    """
    if lease is None:
        return LeaseDecision("create", "no Lease yet")
    if lease.holder == identity:
        return LeaseDecision("renew", "we hold the lease")
    expiry = lease.expires_at()
    if lease.holder is None or expiry is None:
        return LeaseDecision("acquire", "lease is free (released or never completed)")
    if now < expiry:
        return LeaseDecision("follow", f"held by {lease.holder} until {expiry.isoformat()}")
    if observed_since is not None and now < observed_since + timedelta(seconds=lease.duration_s or 0):
        return LeaseDecision("follow", f"held by {lease.holder}: expired by its renewTime, but seen unchanged "
                             f"only since {observed_since.isoformat()}")
    return LeaseDecision("acquire", f"lease of {lease.holder} expired at {expiry.isoformat()}")


def lease_spec(decision: LeaseDecision, lease: LeaseRecord | None, now: datetime, identity: str,
               duration_s: int) -> dict[str, Any]:
    """Pure: the Lease spec to write for a create/renew/acquire decision."""
    if decision.action == "follow":
        raise ValueError("a follower writes no lease")
    at = _micro_time(now)
    keep = decision.action == "renew" and lease is not None and lease.acquire_time is not None
    transitions = lease.transitions if lease is not None else 0
    if decision.action == "acquire" and lease is not None and lease.holder is not None:
        transitions += 1
    return {"holderIdentity": identity, "leaseDurationSeconds": duration_s,
            "acquireTime": _micro_time(lease.acquire_time) if keep and lease and lease.acquire_time else at,
            "renewTime": at, "leaseTransitions": transitions}


class LeaderElector:
    """Lease-based leader election (coordination.k8s.io/v1), one call per tick.

    `try_acquire_or_renew(now)` reads the Lease, decides with `decide_lease` and writes the
    Lease if it should lead; True = this instance leads until now + lease_duration_s. Writes are
    merge patches carrying the resourceVersion read, so on a real API server two candidates
    racing for the same Lease get one 409 (that one follows). API errors -> False (follow: the
    safe side; followers plan but do not write).
    """

    def __init__(self, cluster: KubeCluster, namespace: str, name: str, identity: str,
                 lease_duration_s: int = 15):
        if lease_duration_s < 1:
            raise ValueError("lease_duration_s must be >= 1")
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.identity, self.lease_duration_s = identity, lease_duration_s
        self.last_error: str | None = None
        self.last_decision: LeaseDecision | None = None
        self._observed: tuple[tuple[Any, ...], datetime] | None = None

    def _where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def _read(self) -> LeaseRecord | None:
        c = self.cluster
        try:
            return LeaseRecord.from_object(c.call(f"GET {self._where()}", c.coordination.read_namespaced_lease,
                                                  self.name, self.namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def try_acquire_or_renew(self, now: datetime) -> bool:
        """True when this instance is the leader after the call. `now`: aware time."""
        c = self.cluster
        try:
            lease = self._read()
            observed_since = self._observe(lease, now)
            decision = decide_lease(lease, now, self.identity, observed_since)
            self.last_decision = decision
            if decision.action == "follow":
                return False
            spec = lease_spec(decision, lease, now, self.identity, self.lease_duration_s)
            if decision.action == "create":
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(MANAGED_BY)},
                        "spec": spec}
                c._check(body)
                c.call(f"POST {self._where()}", c.coordination.create_namespaced_lease, self.namespace, body,
                       field_manager=FIELD_MANAGER)
            else:
                patch: dict[str, Any] = {"spec": spec}
                if lease is not None and lease.resource_version:
                    patch["metadata"] = {"resourceVersion": lease.resource_version}  # precondition: 409 if changed
                result = c.call(f"PATCH {self._where()}", c.coordination.patch_namespaced_lease, self.name,
                                self.namespace, patch, field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH)
                c._check(result)
            self.last_error = None
            return True
        except ApiException as exc:
            self.last_error = f"{self._where()}: {_status_text(exc)}"
            return False
        except urllib3.exceptions.HTTPError as exc:
            self.last_error = f"{self._where()}: no answer ({type(exc).__name__})"
            return False

    def release(self, now: datetime) -> bool:
        """Give the lease up if we hold it (others may take it at once). True if released."""
        c = self.cluster
        try:
            lease = self._read()
            if lease is None or lease.holder != self.identity:
                return False
            patch: dict[str, Any] = {"spec": {"holderIdentity": None, "renewTime": _micro_time(now)}}
            if lease.resource_version:
                patch["metadata"] = {"resourceVersion": lease.resource_version}
            c.call(f"PATCH {self._where()}", c.coordination.patch_namespaced_lease, self.name, self.namespace,
                   patch, field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH)
            return True
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            self.last_error = f"{self._where()}: {exc}"
            return False

    def _observe(self, lease: LeaseRecord | None, now: datetime) -> datetime | None:
        """Since when this candidate has seen the current record unchanged (local observation)."""
        if lease is None:
            self._observed = None
            return None
        key = (lease.holder, lease.renew_time, lease.resource_version)
        if self._observed is None or self._observed[0] != key:
            self._observed = (key, now)
        return self._observed[1]


# --------------------------------------------------------------------------- helpers
def _key(workload: Workload) -> tuple[str, str, str]:
    t = workload.target
    return (t.kind, t.namespace, t.name)


def _targets(hpa: Mapping[str, Any], kind: str, name: str) -> bool:
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    api = str(ref.get("apiVersion") or "apps/v1")
    return ref.get("kind") == kind and ref.get("name") == name and api.split("/")[0] in ("apps", "extensions")


def _int(value: Any, default: Any) -> Any:
    return default if value is None else int(value)


def _message(head: str, reasons: list[str]) -> str:
    text = head + (": " + "; ".join(r for r in reasons if r) if any(reasons) else "")
    return text if len(text) <= EVENT_MESSAGE_MAX_CHARS else text[: EVENT_MESSAGE_MAX_CHARS - 3] + "..."


def _status_text(exc: ApiException) -> str:
    """`409 Conflict: <the Status message>` from an ApiException, for people."""
    message = ""
    try:
        body = json.loads(exc.body) if exc.body else {}
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except (TypeError, ValueError):
        message = str(exc.body or "")[:200]
    text = f"{exc.status} {exc.reason or ''}".strip()
    return f"{text}: {message[:300]}" if message else text


def _micro_time(t: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 UTC with microseconds."""
    if t.tzinfo is None:
        raise ValueError("lease times must carry a zone")
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


__all__ = [
    "ApplyResult", "FIELD_MANAGER", "KUBE_SCHEMA_VERSION", "KubeCluster", "KubeError", "LeaderElector",
    "LeaseDecision", "LeaseRecord", "REASON_BITRATE", "REASON_GUARD", "REASON_SCALED", "RetryPolicy", "Write",
    "bitrate_document", "decide_lease", "dump_document", "is_retryable", "lease_spec", "parse_document",
    "validate_object",
]
