{{/* vim: set filetype=mustache: */}}

{{- define "promshard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name, leaving room for the "-workers" suffix (63 - 8). */}}
{{- define "promshard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "promshard.master.fullname" -}}
{{- printf "%s-master" (include "promshard.fullname" .) }}
{{- end }}

{{- define "promshard.workers.fullname" -}}
{{- printf "%s-workers" (include "promshard.fullname" .) }}
{{- end }}

{{- define "promshard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "promshard.labels" -}}
helm.sh/chart: {{ include "promshard.chart" . }}
{{ include "promshard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: promshard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "promshard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "promshard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "promshard.master.labels" -}}
{{ include "promshard.labels" . }}
app.kubernetes.io/component: master
{{- end }}

{{- define "promshard.master.selectorLabels" -}}
{{ include "promshard.selectorLabels" . }}
app.kubernetes.io/component: master
{{- end }}

{{- define "promshard.workers.labels" -}}
{{ include "promshard.labels" . }}
app.kubernetes.io/component: workers
{{- end }}

{{- define "promshard.workers.selectorLabels" -}}
{{ include "promshard.selectorLabels" . }}
app.kubernetes.io/component: workers
{{- end }}

{{- define "promshard.master.serviceAccountName" -}}
{{- if .Values.master.serviceAccount.create }}
{{- default (include "promshard.master.fullname" .) .Values.master.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.master.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "promshard.workers.serviceAccountName" -}}
{{- if .Values.workers.serviceAccount.create }}
{{- default (include "promshard.workers.fullname" .) .Values.workers.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.workers.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "promshard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "promshard.leaderElection.namespace" -}}
{{- default .Release.Namespace .Values.master.leaderElection.namespace }}
{{- end }}

{{- define "promshard.leaderElection.leaseName" -}}
{{- default (include "promshard.master.fullname" .) .Values.master.leaderElection.leaseName }}
{{- end }}

{{- define "promshard.master.replicas" -}}
{{- if .Values.master.leaderElection.enabled }}
{{- .Values.master.leaderElection.replicas }}
{{- else }}
{{- 1 }}
{{- end }}
{{- end }}

{{- define "promshard.masterGrpcURL" -}}
{{- printf "http://%s.%s.svc:%v" (include "promshard.master.fullname" .) .Release.Namespace .Values.master.service.grpcPort }}
{{- end }}

{{/*
The scrape jobs that end up in prometheus.yml, as a YAML list: the enabled
defaultScrapeConfigs (sorted by key, `enabled` stripped, rendered through `tpl` so they can
name the release), then scrapeConfigs (verbatim).
*/}}
{{- define "promshard.scrapeConfigs" -}}
{{- $jobs := list }}
{{- range $key, $job := .Values.defaultScrapeConfigs }}
{{- if $job.enabled }}
{{- $jobs = append $jobs (tpl (omit $job "enabled" | toYaml) $ | fromYaml) }}
{{- end }}
{{- end }}
{{- range .Values.scrapeConfigs }}
{{- $jobs = append $jobs . }}
{{- end }}
{{- toYaml $jobs }}
{{- end }}

{{/* The whole prometheus.yml. */}}
{{- define "promshard.prometheusYml" -}}
{{- $cfg := dict "global" (.Values.prometheusGlobal | default dict) }}
{{- $jobs := include "promshard.scrapeConfigs" . | fromYamlArray }}
{{- $_ := set $cfg "scrape_configs" $jobs }}
{{- if .Values.remoteWrite }}
{{- $_ := set $cfg "remote_write" .Values.remoteWrite }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Least-privilege discovery RBAC: the Kubernetes kinds the rendered config's
kubernetes_sd_configs read, as "apiGroup/resource" strings (core group empty), one
per line, sorted and unique. Mirrors Prometheus's kubernetes discovery:
  node           nodes
  pod            pods               (+ nodes with attach_metadata.node)
  service        services
  endpoints      endpoints, pods, services (+ nodes with attach_metadata.node)
  endpointslice  discovery.k8s.io/endpointslices, pods, services (+ nodes ditto)
  ingress        networking.k8s.io/ingresses
  any role with attach_metadata.namespace: namespaces
*/}}
{{- define "promshard.discoveryResources" -}}
{{- $res := list }}
{{- $jobs := include "promshard.scrapeConfigs" . | fromYamlArray }}
{{- range $jobs }}
{{- range (get . "kubernetes_sd_configs" | default list) }}
{{- $role := .role | toString }}
{{- $meta := .attach_metadata | default dict }}
{{- if eq $role "node" }}
{{- $res = append $res "/nodes" }}
{{- else if eq $role "pod" }}
{{- $res = append $res "/pods" }}
{{- else if eq $role "service" }}
{{- $res = append $res "/services" }}
{{- else if eq $role "endpoints" }}
{{- $res = concat $res (list "/endpoints" "/pods" "/services") }}
{{- else if eq $role "endpointslice" }}
{{- $res = concat $res (list "discovery.k8s.io/endpointslices" "/pods" "/services") }}
{{- else if eq $role "ingress" }}
{{- $res = append $res "networking.k8s.io/ingresses" }}
{{- else }}
{{- fail (printf "kubernetes_sd_configs: unknown role %q (want node, pod, service, endpoints, endpointslice or ingress)" $role) }}
{{- end }}
{{- if and $meta.node (has $role (list "pod" "endpoints" "endpointslice")) }}
{{- $res = append $res "/nodes" }}
{{- end }}
{{- if $meta.namespace }}
{{- $res = append $res "/namespaces" }}
{{- end }}
{{- end }}
{{- end }}
{{- range ($res | uniq | sortAlpha) }}
{{ . }}
{{- end }}
{{- end }}

{{/* ClusterRole rules from promshard.discoveryResources, one rule per API group. */}}
{{- define "promshard.discoveryRules" -}}
{{- $byGroup := dict }}
{{- range (include "promshard.discoveryResources" . | trim | splitList "\n") }}
{{- if . }}
{{- $parts := splitList "/" . }}
{{- $group := index $parts 0 }}
{{- $_ := set $byGroup $group (append (get $byGroup $group | default list) (index $parts 1)) }}
{{- end }}
{{- end }}
{{- range $group := keys $byGroup | sortAlpha }}
- apiGroups: [{{ $group | quote }}]
  resources: {{ get $byGroup $group | toJson }}
  verbs: ["list", "watch"]
{{- end }}
{{- end }}

{{/* topologySpreadConstraints with the workers' labelSelector filled in where absent. */}}
{{- define "promshard.workers.topologySpreadConstraints" -}}
{{- $sel := include "promshard.workers.selectorLabels" . | fromYaml }}
{{- $out := list }}
{{- range .Values.workers.topologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $sel) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* Self-metrics selectors used by the alerts and the dashboard. */}}
{{- define "promshard.masterSelector" -}}
{{- default (printf "job=%q" (include "promshard.master.fullname" .)) .Values.prometheusRule.masterSelector }}
{{- end }}

{{- define "promshard.workersSelector" -}}
{{- default (printf "job=%q" (include "promshard.workers.fullname" .)) .Values.prometheusRule.workersSelector }}
{{- end }}

{{/*
The `job` labels of the enabled default jobs that scrape the cluster's components (all but
promshard itself and the annotated pods), as a regex alternation: a job's label is the
replacement of its relabel rule targeting `job` (the kubelet's four jobs are all "kubelet"),
else its job_name.
*/}}
{{- define "promshard.componentJobs" -}}
{{- $names := list }}
{{- range $key, $job := .Values.defaultScrapeConfigs }}
{{- if and $job.enabled (not (has $key (list "promshard" "annotatedPods"))) }}
{{- $name := $job.job_name }}
{{- range ($job.relabel_configs | default list) }}
{{- if and (eq (.target_label | default "") "job") .replacement }}
{{- $name = .replacement }}
{{- end }}
{{- end }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- $names | uniq | sortAlpha | join "|" }}
{{- end }}
