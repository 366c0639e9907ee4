{{/* Names, labels and the small computed values every template shares. */}}

{{- define "rlops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rlops.fullname" -}}
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

{{- define "rlops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rlops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "rlops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rlops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rlops
{{- end }}

{{- define "rlops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rlops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rlops.progressSecretName" -}}
{{- default (printf "%s-progress" (include "rlops.fullname" .)) .Values.operator.progressSecret.existingSecret }}
{{- end }}

{{- define "rlops.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The rules on the resources the operator reconciles, the same in a ClusterRole or a Role.
Sweeps create and delete their trials (child RLExperiments); experiments create RayJobs
and the Secret holding each one's progress token (create, and patch when the key changed;
never get, list or watch: the operator reads no Secret of the users').
No pods, no pods/exec: KubeRay runs the pods.
*/}}
{{- define "rlops.workloadRules" -}}
- apiGroups: [rlops.dev]
  resources: [rlexperiments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [rlops.dev]
  resources: [sweeps]
  verbs: [get, list, watch, update, patch]
- apiGroups: [rlops.dev]
  resources: [rlexperiments/status, sweeps/status]
  verbs: [get, update, patch]
- apiGroups: [rlops.dev]
  resources: [rlexperiments/finalizers, sweeps/finalizers]
  verbs: [update]
- apiGroups: [ray.io]
  resources: [rayjobs]
  verbs: [get, list, watch, create, update, patch, delete]
# A Sweep's shared RayCluster (sharedCluster): created while it runs, deleted at its end.
- apiGroups: [ray.io]
  resources: [rayclusters]
  verbs: [create, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The validating webhook: on in cluster mode; in namespaced mode only with cert-manager
(a self-signed CA would need the right to update a cluster-scoped object). */}}
{{- define "rlops.webhookEnabled" -}}
{{- if and .Values.webhook.enabled (or (not .Values.watchNamespaces) (eq .Values.webhook.certificate "certManager")) -}}
true
{{- end -}}
{{- end }}

{{- define "rlops.webhookName" -}}
{{ include "rlops.fullname" . }}-validation
{{- end }}

{{- define "rlops.webhookHost" -}}
{{ printf "%s.%s.svc" (include "rlops.fullname" .) .Release.Namespace }}
{{- end }}
