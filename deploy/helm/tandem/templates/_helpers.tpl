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
{{- if and (eq .Values.image.repository "local.invalid/tandem/operator") (not .Values.image.digest) (not .Values.localCluster) -}}
{{- fail "image.repository is the placeholder local.invalid/tandem/operator, an image built only on the project's local cluster: set image.repository to your registry's (and image.digest to pin it), or localCluster=true on that local cluster" -}}
{{- end -}}
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

{{/* Tandem's ServiceAccount: its name, and the user name the API server gives its token. The
ServiceAccount, every binding's subject, the pods and the exec admission policy all use these. */}}
{{- define "tandem.serviceAccountName" -}}
tandem
{{- end }}

{{- define "tandem.serviceAccountUser" -}}
{{ printf "system:serviceaccount:%s:%s" .Values.namespace.name (include "tandem.serviceAccountName" .) }}
{{- end }}

{{/* The subject of every binding. */}}
{{- define "tandem.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: {{ include "tandem.serviceAccountName" . }}
    namespace: {{ .Values.namespace.name }}
{{- end }}

{{/* The rules' header: what the role leaves out. */}}
{{- define "tandem.rbacHeader" -}}
{{- if .Values.exec.enabled -}}
# Least privilege: each rule says why it exists. No secrets, no wildcards, no delete.
{{- else -}}
# Least privilege: each rule says why it exists. No secrets, no wildcards, no delete, and no
# exec: this install finishes pods by their phase only (--no-exec). exec.enabled adds
# pods/exec, for namespaces that opt in (docs/exec-opt-in.md).
{{- end -}}
{{- end }}

{{/* Tandem's rules, the same for a ClusterRole (cluster-wide) and a Role per watched namespace. */}}
{{- define "tandem.rules" -}}
rules:
  # Read pods to see when primaries end. RBAC cannot narrow this to Job pods: the rule covers
  # every pod's spec and status; only the watch itself is narrowed (a server-side label selector).
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
  # Finish a pod by its phase: the primaries' outcome written as status.phase (the kubelet then
  # stops what still runs). Only the status subresource, which takes no spec change; the API
  # server does take a pod's labels and annotations through it. Tandem writes one annotation,
  # tandem.dev/finished, with the phase: that makes the kubelet act on the write at once.
  - apiGroups: [""]
    resources: [pods/status]
    verbs: [patch]
  # Events on pods, Jobs and SidecarPolicies (kopf posts core/v1 Events; it never patches one).
  - apiGroups: [""]
    resources: [events]
    verbs: [create]
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
  {{- /* Only with exec.enabled (no exec: --no-exec), last as deploy/components/exec adds them. */}}
  {{- if .Values.exec.enabled }}
  # Deliver the stop from inside the sidecar's container. Exec needs both verbs: the websocket
  # upgrade is a GET, a plain call is a POST (create).
  - apiGroups: [""]
    resources: [pods/exec]
    verbs: [get, create]
  {{- end }}
  {{- if include "tandem.helperImage" . }}
  # Tandem's helper for sidecars without a shell (--helper-image). helperImage "" drops this
  # rule, and the flag, to turn that path off.
  - apiGroups: [""]
    resources: [pods/ephemeralcontainers]
    verbs: [patch]
  {{- end }}
{{- end }}

{{/* Only with sweeper.action Delete (the sweep deletes pods; --sweep-allow-delete). */}}
{{- define "tandem.deleteRules" -}}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [delete]
{{- end }}

{{/* The helper's image: none without exec (the helper is reached by exec). The local cluster's
placeholder only with localCluster, as the operator's image. */}}
{{- define "tandem.helperImage" -}}
{{- if and .Values.exec.enabled .Values.helperImage -}}
{{- if and (hasPrefix "local.invalid/" .Values.helperImage) (not .Values.localCluster) -}}
{{- fail (printf "helperImage %s is a placeholder built only on the project's local cluster: set your helper image (name@sha256:<digest>), or localCluster=true on that local cluster" .Values.helperImage) -}}
{{- end -}}
{{ .Values.helperImage }}
{{- end -}}
{{- end }}

{{/* The admission policy's cluster-scoped name, per release namespace like the job hazards'. */}}
{{- define "tandem.execOptIn" -}}
{{- if .Values.watchNamespaces -}}
tandem-exec-opt-in-{{ .Values.namespace.name }}
{{- else -}}
tandem-exec-opt-in
{{- end -}}
{{- end }}

{{- /* The job-hazards admission policy: one cluster-wide, or one per namespaced release (bound to
its watched namespaces), so that releases and a kustomize install never share its name. */}}
{{- define "tandem.jobHazards" -}}
{{- if .Values.watchNamespaces -}}
tandem-job-hazards-{{ .Values.namespace.name }}
{{- else -}}
tandem-job-hazards
{{- end -}}
{{- end }}

{{- /* The status-writes admission policy: per release namespace, as the job hazards'. */}}
{{- define "tandem.statusWrites" -}}
{{- if .Values.watchNamespaces -}}
tandem-status-writes-{{ .Values.namespace.name }}
{{- else -}}
tandem-status-writes
{{- end -}}
{{- end }}
