{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "slo-warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, plus the chart name unless the release name already contains it.
*/}}
{{- define "slo-warden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "slo-warden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "slo-warden.labels" -}}
helm.sh/chart: {{ include "slo-warden.chart" . }}
{{ include "slo-warden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: slo-warden
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels the Deployment and Service select on; never change them (Deployment selectors are immutable).
*/}}
{{- define "slo-warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slo-warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "slo-warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "slo-warden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "slo-warden.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
What the controller does with the resources it reconciles, in every namespace it watches:
one list for the ClusterRole (all namespaces) and for each per-namespace Role.
*/}}
{{- define "slo-warden.rules" -}}
# Watches ServiceLevelObjectives and writes their status.
- apiGroups: ["slo.warden.dev"]
  resources: ["servicelevelobjectives"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["slo.warden.dev"]
  resources: ["servicelevelobjectives/status"]
  verbs: ["get", "patch", "update"]
# Owns the generated PrometheusRules (server-side apply: patch; create for first writes).
- apiGroups: ["monitoring.coreos.com"]
  resources: ["prometheusrules"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Reads ErrorBudgetPolicies (a finalizer releases what a deleted one holds) and their overrides.
- apiGroups: ["slo.warden.dev"]
  resources: ["errorbudgetpolicies"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["slo.warden.dev"]
  resources: ["errorbudgetpolicies/status", "errorbudgetoverrides/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["slo.warden.dev"]
  resources: ["errorbudgetoverrides"]
  verbs: ["get", "list", "watch"]
# Enforcement: spec.paused and slo.warden.dev/* annotations of the targets (merge patches only),
# read from a watch cache.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
# The release ledger: which revision each Deployment and Rollout runs, from a watch cache.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch"]
# Reports problems and actions as Events (events.k8s.io/v1; core for older clients).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* freezeNamespace: the frozen label and annotations of a policy's own Namespace. */}}
{{- define "slo-warden.namespaceRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "patch"]
{{- end }}

{{/* With watchNamespaces, the webhooks judge only those namespaces (another installation, or
nobody, looks after the rest). Empty otherwise. */}}
{{- define "slo-warden.watchedNamespaces" -}}
{{- with .Values.watchNamespaces -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: In
    values:
      {{- toYaml (uniq .) | nindent 6 }}
{{- end }}
{{- end }}
