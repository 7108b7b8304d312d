{{/*
Install-time checks of values the schema cannot express (cross-field rules, and what the chart
itself sets). Each `fail` names the values to change. Included by deployment.yaml, so every
render runs them (tests/test_chart.py, "refused at install").
*/}}

{{/* A duration `1m30s`, `500ms`, `2h` (units ms s m h d w y) in milliseconds. */}}
{{- define "ebbtide.durationMs" -}}
{{- $total := 0 -}}
{{- $unit := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 -}}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" (toString .) -1 -}}
{{- $total = add $total (mul (atoi (regexFind "^[0-9]+" .)) (get $unit (regexReplaceAll "^[0-9]+" . ""))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{- define "ebbtide.validate" -}}
{{- $v := .Values -}}
{{- if and (gt (int $v.replicaCount) 1) (not $v.leaderElection.enabled) -}}
{{- fail (printf "replicaCount %d without leaderElection.enabled: every replica would plan and write (replicas, bitrate caps, planner memory); enable leaderElection or set replicaCount: 1" (int $v.replicaCount)) -}}
{{- end -}}
{{- if and $v.rbac.create (not $v.serviceAccount.create) (not $v.serviceAccount.name) -}}
{{- fail "serviceAccount.create=false with rbac.create=true needs serviceAccount.name: without it the chart's Roles would be bound to the namespace's `default` ServiceAccount, and every pod using it would get them" -}}
{{- end -}}
{{- if and (not $v.policy) (not $v.existingPolicyConfigMap) -}}
{{- fail "policy: give the policy under `policy:` (a mapping, e.g. --values my-values.yaml) or the name of your ConfigMap as existingPolicyConfigMap" -}}
{{- end -}}
{{- if and $v.rbac.create $v.rbac.namespaces (not $v.existingPolicyConfigMap) -}}
{{- $missing := list -}}
{{- range $v.policy.workloads -}}
{{- $ns := default "default" (default (dict) .target).namespace -}}
{{- if not (has $ns $v.rbac.namespaces) -}}
{{- $missing = append $missing (printf "%s (workload %s)" $ns .name) -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "rbac.namespaces %s does not hold %s: the controller could not read or scale it; add the namespace to rbac.namespaces, or leave rbac.namespaces empty (the policy's namespaces)" (toJson $v.rbac.namespaces) (join ", " $missing)) -}}
{{- end -}}
{{- end -}}
{{- $managedArgs := list "--policy" "--dry-run" "--no-dry-run" "--http-port" "--leader-elect" "--no-leader-elect" "--lease-name" "--lease-namespace" "--lease-duration" "--lease-retry-period" "--state-configmap" "--state-namespace" "--executor" "--scheduler" "--fit-workers" "--query-concurrency" "--identity" "--prometheus-url" "--log-level" "--once" "--at" -}}
{{- range $v.extraArgs -}}
{{- $flag := regexReplaceAll "=.*$" (toString .) "" -}}
{{- if has $flag $managedArgs -}}
{{- fail (printf "extraArgs: %s is set by the chart from its values (dryRun, port, leaderElection, persistState, fitting, prometheus, logLevel; --once/--at are not for a Deployment); set the value instead" $flag) -}}
{{- end -}}
{{- end -}}
{{- $managedEnv := list "EBBTIDE_POLICY" "EBBTIDE_DRY_RUN" "EBBTIDE_PROMETHEUS_URL" "EBBTIDE_HTTP_PORT" "EBBTIDE_LOG_LEVEL" "EBBTIDE_LEADER_ELECT" "EBBTIDE_LEASE_NAME" "EBBTIDE_LEASE_NAMESPACE" "EBBTIDE_LEASE_DURATION" "EBBTIDE_LEASE_RETRY_PERIOD" "EBBTIDE_STATE_CONFIGMAP" "EBBTIDE_STATE_NAMESPACE" "EBBTIDE_EXECUTOR" "EBBTIDE_SCHEDULER" "EBBTIDE_FIT_WORKERS" "EBBTIDE_QUERY_CONCURRENCY" "EBBTIDE_IDENTITY" "EBBTIDE_ONCE" "EBBTIDE_AT" "TMPDIR" "HOME" "MPLCONFIGDIR" -}}
{{- range $v.extraEnv -}}
{{- if has .name $managedEnv -}}
{{- fail (printf "extraEnv: %s is set by the chart from its values (a second entry would override it silently); set the value instead" .name) -}}
{{- end -}}
{{- end -}}
{{- if $v.leaderElection.enabled -}}
{{- $lease := int64 (include "ebbtide.durationMs" $v.leaderElection.leaseDuration) -}}
{{- $retry := int64 (include "ebbtide.durationMs" $v.leaderElection.retryPeriod) -}}
{{- if or (lt $retry 1000) (ge $retry $lease) -}}
{{- fail (printf "leaderElection.retryPeriod %s must be at least 1s and shorter than leaseDuration %s (each pod renews the Lease every retryPeriod; it expires after leaseDuration)" $v.leaderElection.retryPeriod $v.leaderElection.leaseDuration) -}}
{{- end -}}
{{- end -}}
{{- if $v.serviceMonitor.enabled -}}
{{- if gt (int64 (include "ebbtide.durationMs" $v.serviceMonitor.scrapeTimeout)) (int64 (include "ebbtide.durationMs" $v.serviceMonitor.interval)) -}}
{{- fail (printf "serviceMonitor.scrapeTimeout %s is longer than serviceMonitor.interval %s: Prometheus refuses such a scrape config" $v.serviceMonitor.scrapeTimeout $v.serviceMonitor.interval) -}}
{{- end -}}
{{- end -}}
{{- if $v.podDisruptionBudget.enabled -}}
{{- $maxU := toString $v.podDisruptionBudget.maxUnavailable -}}
{{- if or (lt (int $v.replicaCount) 2) (has $maxU (list "0" "0%")) -}}
{{- fail (printf "podDisruptionBudget with replicaCount %d and maxUnavailable %q would block every node drain: it needs replicaCount > 1 and room for one pod to go" (int $v.replicaCount) $maxU) -}}
{{- end -}}
{{- if eq $maxU "" -}}
{{- /* minAvailable is used: a number >= replicaCount, or a percentage that rounds up (as the
       disruption controller rounds it) to every replica, leaves no pod free to go */ -}}
{{- $minA := toString $v.podDisruptionBudget.minAvailable -}}
{{- $r := int $v.replicaCount -}}
{{- $blocks := false -}}
{{- if hasSuffix "%" $minA -}}
{{- $blocks = gt (mul (atoi (trimSuffix "%" $minA)) $r) (mul 100 (sub $r 1)) -}}
{{- else -}}
{{- $blocks = ge (atoi $minA) $r -}}
{{- end -}}
{{- if $blocks -}}
{{- fail (printf "podDisruptionBudget.minAvailable %s with replicaCount %d would block every node drain: it must leave at least one pod free to go (minAvailable below replicaCount)" $minA $r) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $v.persistState.enabled -}}
{{- $state := include "ebbtide.stateConfigMap" . -}}
{{- $taken := list (include "ebbtide.policyConfigMap" .) (printf "%s-dashboard" (include "ebbtide.fullname" .)) -}}
{{- range (include "ebbtide.bitrateConfigMaps" . | fromJsonArray) -}}
{{- $parts := splitList "/" . -}}
{{- if eq (index $parts 0) $.Release.Namespace -}}{{- $taken = append $taken (index $parts 1) -}}{{- end -}}
{{- end -}}
{{- if has $state $taken -}}
{{- fail (printf "persistState.configMapName %s is a ConfigMap the chart or the policy already uses in %s (the policy, the dashboard or a bitrate document): the planner memory would be written into it; choose another name" $state $.Release.Namespace) -}}
{{- end -}}
{{- end -}}
{{- end -}}
