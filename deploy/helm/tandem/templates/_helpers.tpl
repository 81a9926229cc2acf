{{/* Labels of every object: those of deploy/base, and Helm's own. */}}
{{- define "tandem.labels" -}}
app.kubernetes.io/name: tandem
app.kubernetes.io/part-of: tandem
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The operator's image: by digest when image.digest is set (what runs is then exactly the image
that was pushed, whatever later happens to the tag), else by tag. */}}
{{- define "tandem.image" -}}
{{- if .Values.image.digest -}}
{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end -}}
{{- end }}

{{/* More than one replica: Kopf peering, one acts and the others stand by. */}}
{{- define "tandem.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{/* The ClusterKopfPeering where the replicas meet (--peering), and its ClusterRole. Cluster-scoped
in namespaced releases too, named after the release's namespace so that several releases do not
meet in one peering (only one of them would act). */}}
{{- define "tandem.peeringName" -}}
{{- if .Values.watchNamespaces -}}
tandem-{{ .Values.namespace.name }}
{{- else -}}
tandem
{{- end -}}
{{- end }}

{{- define "tandem.peeringRole" -}}
{{- if .Values.watchNamespaces -}}
tandem-peering-{{ .Values.namespace.name }}
{{- else -}}
tandem-peering
{{- end -}}
{{- end }}

{{/* The subject of every binding. */}}
{{- define "tandem.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: tandem
    namespace: {{ .Values.namespace.name }}
{{- end }}

{{/* Tandem's rules, the same for a ClusterRole (cluster-wide) and a Role per watched namespace. */}}
{{- define "tandem.rules" -}}
rules:
  # Watch Job pods (server-side label selector) to see when primaries end.
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
  {{- if .Values.exec.enabled }}
  # Deliver the stop from inside the sidecar's container. Exec needs both verbs: the websocket
  # upgrade is a GET, a plain call is a POST (create).
  - apiGroups: [""]
    resources: [pods/exec]
    verbs: [get, create]
  {{- end }}
  # Finish a pod by its phase: the primaries' outcome written as status.phase (the kubelet then
  # stops what still runs). Only the status subresource: no write to a pod's spec or metadata.
  - apiGroups: [""]
    resources: [pods/status]
    verbs: [patch]
  {{- if include "tandem.helperImage" . }}
  # Tandem's helper for sidecars without a shell (--helper-image). helperImage "" drops this
  # rule, and the flag, to turn that path off.
  - apiGroups: [""]
    resources: [pods/ephemeralcontainers]
    verbs: [patch]
  {{- end }}
  # Events on pods, Jobs and SidecarPolicies (kopf posts core/v1 Events).
  - apiGroups: [""]
    resources: [events]
    verbs: [create, patch]
  # The sweep reads Jobs once per sweep, to find pods whose Job is gone or finished.
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [list]
  # Read policies; patch adds and removes kopf's finalizer (the policy's status timer needs one).
  - apiGroups: [tandem.dev]
    resources: [sidecarpolicies]
    verbs: [get, list, watch, patch]
  # The Ready condition and the pod counters.
  - apiGroups: [tandem.dev]
    resources: [sidecarpolicies/status]
    verbs: [get, patch]
{{- end }}

{{/* Only with sweeper.action Delete (the sweep deletes pods; --sweep-allow-delete). */}}
{{- define "tandem.deleteRules" -}}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [delete]
{{- end }}

{{/* The node reader's cluster-scoped name: a namespaced release names it after its own namespace, so that several releases can share a cluster. */}}
{{- define "tandem.nodeReader" -}}
{{- if .Values.watchNamespaces -}}
tandem-node-reader-{{ .Values.namespace.name }}
{{- else -}}
tandem-node-reader
{{- end -}}
{{- end }}

{{/* The helper's image: none without exec (the helper is reached by exec). */}}
{{- define "tandem.helperImage" -}}
{{- if .Values.exec.enabled }}{{ .Values.helperImage }}{{ end -}}
{{- end }}

{{/* The admission policy's cluster-scoped name, per release namespace like the node reader's. */}}
{{- define "tandem.execOptIn" -}}
{{- if .Values.watchNamespaces -}}
tandem-exec-opt-in-{{ .Values.namespace.name }}
{{- else -}}
tandem-exec-opt-in
{{- end -}}
{{- end }}
