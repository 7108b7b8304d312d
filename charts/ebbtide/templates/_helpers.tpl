{{/* Names, labels and derived values shared by the templates. */}}

{{- define "ebbtide.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ebbtide.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ebbtide.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebbtide.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ebbtide.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ebbtide.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ebbtide
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "ebbtide.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ebbtide.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ebbtide.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ebbtide.leaseName" -}}
{{- default (include "ebbtide.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "ebbtide.stateConfigMap" -}}
{{- default (printf "%s-state" (include "ebbtide.fullname" .)) .Values.persistState.configMapName -}}
{{- end -}}

{{- define "ebbtide.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "ebbtide.fullname" .)) .Values.existingPolicyConfigMap -}}
{{- end -}}

{{- define "ebbtide.policyKey" -}}
{{- if .Values.existingPolicyConfigMap -}}{{ .Values.existingPolicyConfigMapKey }}{{- else -}}policy.yaml{{- end -}}
{{- end -}}

{{/* True (non-empty) when the chart creates the Prometheus Secret. */}}
{{- define "ebbtide.createSecret" -}}
{{- if not .Values.prometheus.existingSecret -}}
{{- if or .Values.prometheus.url (has .Values.prometheus.auth.type (list "bearerToken" "basicAuth")) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ebbtide.secretName" -}}
{{- default (printf "%s-prometheus" (include "ebbtide.fullname" .)) .Values.prometheus.existingSecret -}}
{{- end -}}

{{/* Secret key names: the chart's own Secret uses fixed names. */}}
{{- define "ebbtide.secretKey" -}}
{{- $root := index . 0 -}}{{- $which := index . 1 -}}
{{- if $root.Values.prometheus.existingSecret -}}
{{- index $root.Values.prometheus.existingSecretKeys $which -}}
{{- else -}}
{{- index (dict "url" "url" "bearerToken" "token" "password" "password") $which -}}
{{- end -}}
{{- end -}}

{{/* Whether EBBTIDE_PROMETHEUS_URL comes from the Secret. */}}
{{- define "ebbtide.urlFromSecret" -}}
{{- if or .Values.prometheus.existingSecret .Values.prometheus.url -}}true{{- end -}}
{{- end -}}

{{- define "ebbtide.credentialsDir" -}}/etc/ebbtide/prometheus{{- end -}}

{{/*
The policy as rendered into the chart's ConfigMap: `.Values.policy`, with the Prometheus
credential file paths matching `prometheus.auth` (the only field the chart writes).
*/}}
{{- define "ebbtide.policy" -}}
{{- $policy := deepCopy .Values.policy -}}
{{- $auth := .Values.prometheus.auth -}}
{{- if ne $auth.type "none" -}}
{{- $prom := deepCopy (default (dict) (get $policy "prometheus")) -}}
{{- $_ := unset $prom "bearer_token_file" -}}
{{- $_ = unset $prom "basic_auth" -}}
{{- $dir := include "ebbtide.credentialsDir" . -}}
{{- if eq $auth.type "bearerToken" -}}
{{- $_ = set $prom "bearer_token_file" (printf "%s/%s" $dir (include "ebbtide.secretKey" (list . "bearerToken"))) -}}
{{- else if eq $auth.type "serviceAccountToken" -}}
{{- $_ = set $prom "bearer_token_file" "/var/run/secrets/kubernetes.io/serviceaccount/token" -}}
{{- else if eq $auth.type "basicAuth" -}}
{{- $_ = set $prom "basic_auth" (dict "username" (required "prometheus.auth.basicAuth.username is required with auth.type basicAuth" $auth.basicAuth.username) "password_file" (printf "%s/%s" $dir (include "ebbtide.secretKey" (list . "password")))) -}}
{{- end -}}
{{- $_ = set $policy "prometheus" $prom -}}
{{- end -}}
{{- toYaml $policy -}}
{{- end -}}

{{/*
Bitrate ConfigMaps the controller may write: `bitrate.configMaps` plus the policy's
`bitrate.target` (schema defaults: namespace `default`, name `ebbtide-bitrate`), deduplicated,
as a list of "namespace/name" strings.
*/}}
{{- define "ebbtide.bitrateConfigMaps" -}}
{{- $out := list -}}
{{- range .Values.bitrate.configMaps -}}
{{- $out = append $out (printf "%s/%s" .namespace .name) -}}
{{- end -}}
{{- if and (not .Values.existingPolicyConfigMap) .Values.policy -}}
{{- if .Values.policy.bitrate -}}
{{- $target := default (dict) .Values.policy.bitrate.target -}}
{{- $out = append $out (printf "%s/%s" (default "default" $target.namespace) (default "ebbtide-bitrate" $target.name)) -}}
{{- end -}}
{{- end -}}
{{- $out | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
Namespaces the workload Roles are made in, as a JSON list: `rbac.namespaces` when set; else,
with the policy given inline (and not `rbac.clusterWide`), the namespaces of its workloads'
targets; else none (a ClusterRole: the chart cannot read an existingPolicyConfigMap's policy).
*/}}
{{- define "ebbtide.rbacNamespaces" -}}
{{- $out := list -}}
{{- if .Values.rbac.namespaces -}}
{{- $out = .Values.rbac.namespaces -}}
{{- else if and (not .Values.rbac.clusterWide) (not .Values.existingPolicyConfigMap) .Values.policy -}}
{{- range .Values.policy.workloads -}}
{{- $out = append $out (default "default" (default (dict) .target).namespace) -}}
{{- end -}}
{{- end -}}
{{- $out | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
Workload kinds the Roles name, as a JSON list of resources ("deployments", "statefulsets"): the
inline policy's target kinds; both with an existingPolicyConfigMap (a policy the chart cannot read).
*/}}
{{- define "ebbtide.workloadResources" -}}
{{- $out := list -}}
{{- if and (not .Values.existingPolicyConfigMap) .Values.policy -}}
{{- range .Values.policy.workloads -}}
{{- $kind := (default (dict) .target).kind -}}
{{- if eq $kind "StatefulSet" -}}{{- $out = append $out "statefulsets" -}}{{- else -}}{{- $out = append $out "deployments" -}}{{- end -}}
{{- end -}}
{{- else -}}
{{- $out = list "deployments" "statefulsets" -}}
{{- end -}}
{{- $out | uniq | sortAlpha | toJson -}}
{{- end -}}

{{- define "ebbtide.alertSelector" -}}
{{- default (printf "job=%q,namespace=%q" (include "ebbtide.fullname" .) .Release.Namespace) .Values.prometheusRule.selector -}}
{{- end -}}

{{/* True (non-empty) when the controller runs live on the placeholder policy of values.yaml
(workload `web`, Deployment default/web): NOTES.txt warns. */}}
{{- define "ebbtide.livePlaceholder" -}}
{{- if and (not .Values.dryRun) (not .Values.existingPolicyConfigMap) .Values.policy -}}
{{- range .Values.policy.workloads -}}
{{- if and (eq .name "web") (eq (toJson .target) (toJson (dict "kind" "Deployment" "namespace" "default" "name" "web"))) -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
