#!/usr/bin/env bash
# End-to-end check of Ebbtide against a REAL Kubernetes cluster (kind, or any kubeconfig).
# Not run in CI (no cluster there); docs/e2e-real-cluster.md explains every step.
#
#   .ci/e2e-real-cluster.sh [workstation|chart]     # default: workstation
#   .ci/e2e-real-cluster.sh print-policy            # the policy it uses (tests validate it)
#   .ci/e2e-real-cluster.sh print-manifests         # the demo objects it applies (tests validate them)
#
# workstation: `ebbtide run --once` from this machine ($KUBECONFIG as kubectl reads it), Prometheus
#              port-forwarded.
# chart:       the Helm chart in the cluster (needs IMAGE, built per charts/image/README.md).
#
# Both: create a namespace; apply a demo Deployment `web`, a Deployment `api` with an HPA, a bitrate
# ConfigMap and a small Prometheus whose recording rules publish constant demand and SLI series;
# run Ebbtide in dry-run (nothing may change), then live (the scale subresource, the HPA's
# minReplicas and the ConfigMap must equal what the audit line's plan says); clean up.
#
# Environment (all optional):
#   KUBECONFIG / KUBE_CONTEXT   cluster to use (default: kubectl's current context)
#   NS                          namespace to create and delete (default ebbtide-e2e)
#   KIND_CLUSTER                create this kind cluster first and delete it at the end
#   IMAGE                       controller image for `chart` mode, e.g. ebbtide:dev (loaded into kind
#                               when KIND_CLUSTER is set)
#   PROM_IMAGE                  Prometheus image (default quay.io/prometheus/prometheus:v2.53.0)
#   PAUSE_IMAGE                 image of the demo pods (default registry.k8s.io/pause:3.9)
#   EBBTIDE                     the ebbtide CLI for workstation mode (default: ebbtide on PATH, else .venv/bin/ebbtide)
#   HELM                        helm binary (default: helm on PATH, else .venv/bin/helm)
#   KEEP=1                      keep the namespace (and the kind cluster) for inspection
set -euo pipefail
# bash 4.4 or later: ${name^^}, and "${array[@]}" of an empty array under `set -u`, fail on the
# bash 3.2 macOS ships.
if (( BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4) )); then
  echo "e2e-real-cluster.sh: needs bash >= 4.4, this is $BASH_VERSION (macOS: \`brew install bash\`," \
       "then run the script with that bash)" >&2
  exit 2
fi

MODE="${1:-workstation}"
NS="${NS:-ebbtide-e2e}"
PROM_IMAGE="${PROM_IMAGE:-quay.io/prometheus/prometheus:v2.53.0}"
PAUSE_IMAGE="${PAUSE_IMAGE:-registry.k8s.io/pause:3.9}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RELEASE=e2e
FULLNAME=ebbtide-e2e
PF_PID=""

# Demand the recording rules publish, per workload, and what each replica serves (see the policy).
WEB_DEMAND=3000
API_DEMAND=900

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

policy() {
  local prom_url="$1" dry_run="$2"
  cat <<EOF
apiVersion: ebbtide/v1
dry_run: ${dry_run}
schedule: {tick: 20s}
prometheus: {url: '${prom_url}', max_staleness: 2m}
workloads:
  - name: web
    target: {kind: Deployment, namespace: ${NS}, name: web}
    demand: {query: 'sum(e2e_web_viewers)', per_replica: 500}
    pod_startup: 10s
    scaling: {min_replicas: 1, max_replicas: 12, headroom: 0.1}
    forecast: {lookback: 7d, step: 5m, horizon: 1h, min_history: 7d}
    quality:
      - {name: rebuffering, query: 'max(e2e_rebuffer_ratio)', threshold: 0.02}
  - name: api
    target: {kind: Deployment, namespace: ${NS}, name: api}
    hpa: {name: api}
    demand: {query: 'sum(e2e_api_rps)', per_replica: 100}
    pod_startup: 10s
    scaling: {min_replicas: 1, max_replicas: 12, headroom: 0.1}
    forecast: {lookback: 7d, step: 5m, horizon: 1h, min_history: 7d}
bitrate:
  ladder: [{name: 1080p, kbps: 6000}, {name: 720p, kbps: 3000}, {name: 480p, kbps: 1200}]
  tiers: [{name: core, hd_floor: 720p, share: 0.3}, {name: edge, hd_floor: 480p, share: 0.7}]
  rules: [{name: e2e-all-day, caps: {edge: 480p}}]
  step_rungs: 2
  target: {namespace: ${NS}, name: ebbtide-bitrate, key: policy.json, format: json}
EOF
}

manifests() {
  local app
  for app in web api; do
    cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${app}, namespace: ${NS}, labels: {app: ${app}}}
spec:
  replicas: 2
  selector: {matchLabels: {app: ${app}}}
  template:
    metadata: {labels: {app: ${app}}}
    spec:
      containers:
        - name: ${app}
          image: ${PAUSE_IMAGE}
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 32Mi}}
EOF
  done
  cat <<EOF
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: ${NS}}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 12
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ebbtide-bitrate, namespace: ${NS}}
data:
  policy.json: '{"tiers": {"core": {"max_rung": "1080p"}, "edge": {"max_rung": "1080p"}}}'
---
apiVersion: v1
kind: ConfigMap
metadata: {name: e2e-prometheus, namespace: ${NS}}
data:
  prometheus.yml: |
    global: {evaluation_interval: 5s}
    rule_files: [/etc/prometheus/rules.yml]
  rules.yml: |
    groups:
      - name: e2e-demand
        rules:
          - {record: e2e_web_viewers, expr: vector(${WEB_DEMAND})}
          - {record: e2e_api_rps, expr: vector(${API_DEMAND})}
          - {record: e2e_rebuffer_ratio, expr: vector(0.001)}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: e2e-prometheus, namespace: ${NS}, labels: {app: e2e-prometheus}}
spec:
  replicas: 1
  selector: {matchLabels: {app: e2e-prometheus}}
  template:
    metadata: {labels: {app: e2e-prometheus}}
    spec:
      containers:
        - name: prometheus
          image: ${PROM_IMAGE}
          args: [--config.file=/etc/prometheus/prometheus.yml, --storage.tsdb.path=/prometheus]
          ports: [{name: http, containerPort: 9090}]
          readinessProbe: {httpGet: {path: /-/ready, port: http}}
          volumeMounts:
            - {name: config, mountPath: /etc/prometheus}
            - {name: data, mountPath: /prometheus}
      volumes:
        - {name: config, configMap: {name: e2e-prometheus}}
        - {name: data, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: e2e-prometheus, namespace: ${NS}}
spec:
  selector: {app: e2e-prometheus}
  ports: [{name: http, port: 9090, targetPort: http}]
EOF
}

case "$MODE" in
  print-policy) policy "http://e2e-prometheus.${NS}.svc:9090" false; exit 0 ;;
  print-manifests) manifests; exit 0 ;;
  workstation|chart) ;;
  *) die "unknown mode '$MODE' (workstation, chart, print-policy, print-manifests)" ;;
esac
# Made only for a real run (the print modes above need none, and their callers would be left with it).
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ebbtide-e2e.XXXXXX")"

KUBECTL=(kubectl)
HELM_BIN=()      # chart mode only (found below)
HELM_CTX=()      # the context kubectl uses, for helm too
if [[ -n "${KUBE_CONTEXT:-}" ]]; then KUBECTL+=(--context "$KUBE_CONTEXT"); HELM_CTX+=(--kube-context "$KUBE_CONTEXT"); fi
k() { "${KUBECTL[@]}" -n "$NS" "$@"; }

cleanup() {
  local rc=$?
  [[ -n "$PF_PID" ]] && kill "$PF_PID" 2>/dev/null || true
  if [[ "${KEEP:-0}" == 1 ]]; then
    printf 'KEEP=1: namespace %s left in place; work files in %s\n' "$NS" "$WORK" >&2
  else
    if [[ "$MODE" == chart && ${#HELM_BIN[@]} -gt 0 ]]; then
      "${HELM_BIN[@]}" uninstall "$RELEASE" -n "$NS" --wait ${HELM_CTX[@]+"${HELM_CTX[@]}"} >/dev/null 2>&1 || true
    fi
    "${KUBECTL[@]}" delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    [[ -n "${KIND_CLUSTER:-}" ]] && kind delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  if [[ $rc -eq 0 ]]; then echo "PASS: ebbtide e2e ($MODE) on a real cluster" >&2; fi
  exit "$rc"
}
trap cleanup EXIT

find_tool() {  # find_tool NAME VAR: $VAR, else NAME on PATH, else .venv/bin/NAME
  local name="$1" given="$2"
  if [[ -n "$given" ]]; then echo "$given"; return; fi
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  if [[ -x "$REPO/.venv/bin/$name" ]]; then echo "$REPO/.venv/bin/$name"; return; fi
  die "$name not found (set ${name^^})"
}
if [[ "$MODE" == chart ]]; then HELM_BIN=("$(find_tool helm "${HELM:-}")"); fi  # workstation mode needs none
command -v kubectl >/dev/null || die "kubectl not found"

# ----------------------------------------------------------------------------- cluster and demo objects
if [[ -n "${KIND_CLUSTER:-}" ]]; then
  log "creating kind cluster $KIND_CLUSTER"
  kind create cluster --name "$KIND_CLUSTER" --wait 120s
  KUBECTL+=(--context "kind-$KIND_CLUSTER")
  HELM_CTX=(--kube-context "kind-$KIND_CLUSTER")
  if [[ "$MODE" == chart ]]; then kind load docker-image "${IMAGE:?IMAGE is required in chart mode}" --name "$KIND_CLUSTER"; fi
fi
log "namespace $NS and demo objects"
"${KUBECTL[@]}" create namespace "$NS"
manifests > "$WORK/demo.yaml"
"${KUBECTL[@]}" apply -f "$WORK/demo.yaml"
k rollout status deploy/e2e-prometheus --timeout=180s
k rollout status deploy/web --timeout=180s
sleep 10  # two rule evaluations: the demand series exist

# ----------------------------------------------------------------------------- helpers
replicas() { k get deploy "$1" -o jsonpath='{.spec.replicas}'; }
hpa_min() { k get hpa api -o jsonpath='{.spec.minReplicas}'; }
edge_cap() {
  k get configmap ebbtide-bitrate -o jsonpath='{.data.policy\.json}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["tiers"]["edge"]["max_rung"])'
}
state() { echo "web=$(replicas web) api_hpa_min=$(hpa_min) edge=$(edge_cap)"; }
# plan_field AUDIT_FILE WORKLOAD EXPR: a value of the workload's last plan line (python expression on `p`).
plan_field() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
path, workload, expr = sys.argv[1:]
plans = [json.loads(l) for l in open(path) if l.startswith('{"kind": "plan"')]
p = [x for x in plans if x["workload"] == workload][-1]
print(eval(expr, {"p": p}))
PY
}
check_live() {  # check_live AUDIT_FILE: the cluster equals what the plans say, and something changed
  local audit="$1" web api edge
  web=$(plan_field "$audit" web 'p["target_replicas"]')
  api=$(plan_field "$audit" api 'p["target_replicas"]')
  edge=$(plan_field "$audit" web '{c["tier"]: c["rung"] for c in p["bitrate"]}["edge"]')
  echo "plans: web=$web api_hpa_min=$api edge=$edge; cluster: $(state)" >&2
  [[ "$(replicas web)" == "$web" ]] || die "web scale: $(replicas web), plan $web"
  [[ "$(hpa_min)" == "$api" ]] || die "api HPA minReplicas: $(hpa_min), plan $api"
  [[ "$(edge_cap)" == "$edge" ]] || die "edge cap: $(edge_cap), plan $edge"
  [[ "$web" != 2 && "$api" != 2 && "$edge" != 1080p ]] || die "the live run changed nothing: the check proves nothing"
  [[ "$(plan_field "$audit" api 'p["apply_via"]')" == hpa_min_replicas ]] || die "api was not planned via its HPA"
}
BEFORE="web=2 api_hpa_min=2 edge=1080p"
[[ "$(state)" == "$BEFORE" ]] || die "unexpected start state: $(state)"

# ----------------------------------------------------------------------------- workstation mode
if [[ "$MODE" == workstation ]]; then
  EBBTIDE_BIN="$(find_tool ebbtide "${EBBTIDE:-}")"
  log "port-forwarding Prometheus"
  k port-forward svc/e2e-prometheus 19090:9090 >"$WORK/port-forward.log" 2>&1 &
  PF_PID=$!
  for _ in $(seq 30); do curl -fsS http://127.0.0.1:19090/-/ready >/dev/null 2>&1 && break; sleep 1; done
  policy http://127.0.0.1:19090 false > "$WORK/policy.yaml"
  "$EBBTIDE_BIN" policy validate "$WORK/policy.yaml"
  kube_args=()  # no --kubeconfig: ebbtide reads $KUBECONFIG as kubectl does, every file of a list merged
  [[ -n "${KUBE_CONTEXT:-}" ]] && kube_args+=(--context "$KUBE_CONTEXT")
  [[ -n "${KIND_CLUSTER:-}" ]] && kube_args+=(--context "kind-$KIND_CLUSTER")

  log "dry-run: one tick, nothing may change"
  "$EBBTIDE_BIN" run --policy "$WORK/policy.yaml" --once --dry-run "${kube_args[@]}" --audit-log "$WORK/dry.jsonl"
  [[ "$(state)" == "$BEFORE" ]] || die "dry-run changed the cluster: $(state)"
  [[ "$(plan_field "$WORK/dry.jsonl" web 'p["applied"]["writes"] != []')" == True ]] || die "dry-run planned no write"

  log "live: one tick"
  "$EBBTIDE_BIN" run --policy "$WORK/policy.yaml" --once "${kube_args[@]}" --audit-log "$WORK/live.jsonl"
  check_live "$WORK/live.jsonl"
  exit 0
fi

# ----------------------------------------------------------------------------- chart mode
: "${IMAGE:?IMAGE is required in chart mode (build it per charts/image/README.md)}"
{
  echo "policy:"
  policy "http://e2e-prometheus.${NS}.svc:9090" false | sed 's/^/  /'
} > "$WORK/values.yaml"
[[ "$IMAGE" != *@* ]] || die "IMAGE $IMAGE: give a tag, not a digest"
image_name="${IMAGE##*/}"  # the tag is after the last ':' of the last path part (a registry may have a port)
if [[ "$image_name" == *:* ]]; then image_repo="${IMAGE%:*}"; image_tag="${IMAGE##*:}"; else image_repo="$IMAGE"; image_tag=latest; fi
chart_args=(upgrade --install "$RELEASE" "$REPO/charts/ebbtide" -n "$NS" -f "$WORK/values.yaml"
  ${HELM_CTX[@]+"${HELM_CTX[@]}"}
  --set "fullnameOverride=$FULLNAME,replicaCount=2,rbac.namespaces={$NS},bitrate.createConfigMaps=false"
  --set "image.repository=$image_repo,image.pullPolicy=IfNotPresent" --set-string "image.tag=$image_tag")
can() {  # can yes|no VERB RESOURCE [ARGS...]: what the API server says the controller's ServiceAccount may do
  local want="$1" got
  shift
  got=$("${KUBECTL[@]}" auth can-i "$@" -n "$NS" --as="system:serviceaccount:$NS:$FULLNAME" 2>/dev/null) || true
  [[ "${got%% *}" == "$want" ]] || die "RBAC: auth can-i $* -n $NS as $FULLNAME: '${got:-no answer}', want $want"
}
rbac_check() {  # rbac_check dry|live: every call scaler/kube.py makes is granted, writes only when live
  local w=no
  [[ "$1" == live ]] && w=yes
  can yes get deployments.apps/web --subresource=scale
  can yes get deployments.apps/web
  can yes list horizontalpodautoscalers.autoscaling
  can yes get configmaps/ebbtide-bitrate
  can yes get "configmaps/$FULLNAME-state"
  can yes patch "leases.coordination.k8s.io/$FULLNAME"
  can "$w" patch deployments.apps/web --subresource=scale
  can "$w" patch horizontalpodautoscalers.autoscaling/api
  can "$w" create events
  can "$w" patch configmaps/ebbtide-bitrate
  can "$w" patch "configmaps/$FULLNAME-state"
  can no patch statefulsets.apps/web --subresource=scale   # the policy scales Deployments only
  can no patch configmaps/some-other-configmap
  log "RBAC as the API server sees it ($1): every call granted, nothing beyond"
}

leader_audit() {  # leader_audit FILE: the audit lines of the pod holding the Lease; fails while none holds it
  local holder
  holder=$(k get lease "$FULLNAME" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null) || true
  [[ -n "$holder" ]] || return 1  # between leaders (a rollout releases it): the caller tries again
  k logs "$holder" | grep '^{"kind": "plan"' > "$1" || true
  echo "$holder"
}

log "chart, dryRun=true: both pods Ready (the follower too), one Lease holder, nothing changes"
"${HELM_BIN[@]}" "${chart_args[@]}" --set dryRun=true --wait --timeout 5m
k rollout status "deploy/$FULLNAME" --timeout=300s
[[ "$(k get deploy "$FULLNAME" -o jsonpath='{.status.readyReplicas}')" == 2 ]] || die "not both pods Ready"
rbac_check dry
holder=""
for _ in $(seq 60); do
  holder=$(leader_audit "$WORK/dry.jsonl") || holder=""
  [[ -n "$holder" && -s "$WORK/dry.jsonl" ]] && break
  sleep 5
done
[[ -n "$holder" ]] || die "no pod holds the Lease $FULLNAME"
[[ -s "$WORK/dry.jsonl" ]] || die "no plan line from the leader $holder"
[[ "$(plan_field "$WORK/dry.jsonl" web 'p["dry_run"]')" == True ]] || die "dryRun=true but the plan was live"
[[ "$(state)" == "$BEFORE" ]] || die "dry-run changed the cluster: $(state)"
if k get configmap "$FULLNAME-state" >/dev/null 2>&1; then die "dry-run wrote the planner memory ConfigMap"; fi

log "chart, dryRun=false: the leader writes what its plan says"
"${HELM_BIN[@]}" "${chart_args[@]}" --set dryRun=false --wait --timeout 5m
k rollout status "deploy/$FULLNAME" --timeout=300s
rbac_check live
for _ in $(seq 60); do
  holder=$(leader_audit "$WORK/live.jsonl") || holder=""
  if [[ -n "$holder" && -s "$WORK/live.jsonl" ]] && [[ "$(plan_field "$WORK/live.jsonl" web 'p["dry_run"]')" == False ]] &&
     [[ "$(plan_field "$WORK/live.jsonl" web 'p["error"]')" == None ]]; then break; fi
  sleep 5
done
[[ -n "$holder" ]] || die "no pod holds the Lease $FULLNAME"
check_live "$WORK/live.jsonl"
# persistState (default on): the leader keeps each workload's planner memory in <fullname>-state.
for w in web api; do
  [[ "$(k get configmap "$FULLNAME-state" -o "jsonpath={.data.$w}")" == '{"version":1,'* ]] ||
    die "no planner memory for $w in ConfigMap $FULLNAME-state"
done
echo "leader: $holder" >&2
