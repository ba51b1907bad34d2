{{/*
The labels of every object the chart templates: those of artifacts/deploy (app.kubernetes.io/name), and Helm's.
The Pod template has the selector labels only, so that upgrading the chart alone does not roll the Pods.
*/}}
{{- define "berth.labels" -}}
app.kubernetes.io/name: berth
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select berth's Pods: the Deployment's, the metrics Service's and the budget's. */}}
{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: berth
app.kubernetes.io/component: controller
{{- end }}

{{- define "berth.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/*
Exactly what berth does with Apps and what they own, and nothing more: the rules of the ClusterRole of
artifacts/deploy/rbac.yaml, and of the Role of artifacts/deploy/namespaced/rbac.yaml in each watched namespace.
No wildcards, and of Secrets only their metadata.
*/}}
{{- define "berth.appRules" -}}
# Apps are watched, and their status is written with server-side apply.
- apiGroups: [berth.dev]
  resources: [apps]
  verbs: [list, watch]
- apiGroups: [berth.dev]
  resources: [apps/status]
  verbs: [patch]
# Owned objects carry blockOwnerDeletion, which clusters enforcing OwnerReferencesPermissionEnforcement allow
# only to those who may update the owner's finalizers.
- apiGroups: [berth.dev]
  resources: [apps/finalizers]
  verbs: [update]
# Deployments: watched (all of them, to see one of an App's name that berth does not own), created, applied and
# patched; get only to re-read one whose ownership must be handed over after a create.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# ReplicaSets: listed (not watched, not cached) only when a Pod of an App fails during or after a rollout, to tell
# the failing revision's Pods from the others and to read the template of the revision to roll back to.
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
# Services: the same, and deleted when an App drops its port.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
# PodDisruptionBudgets and HorizontalPodAutoscalers: the same, and deleted when an App no longer asks for one.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
# The Apps' routes: HTTPRoutes (Gateway API) or Ingresses, as --route-kind says; the same verbs.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, delete]
# Secrets and ConfigMaps: the metadata of those the Apps' Pods read (name and version, never their data: berth asks
# for PartialObjectMetadata), so that a change of one rolls its Apps out. The rule itself would allow reading the
# data: --namespace limits it to the namespaces berth manages (see the README, "Rollouts").
- apiGroups: [""]
  resources: [secrets]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list, watch]
# berth's Pods, for the Degraded condition.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# Events about Apps (core/v1, which `kubectl describe` orders and counts). An Event that repeats is counted,
# which client-go's recorder does with a patch.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
