{{/* The run's namespace: global.namespaces.load, else the release's. */}}
{{- define "loadgen.namespace" -}}
{{- dig "namespaces" "load" "" .Values.global | default .Release.Namespace -}}
{{- end -}}

{{/* Standard labels plus the run's: a watcher selects every pod of a run by kai-ml.io/run. */}}
{{- define "loadgen.labels" -}}
{{ include "platform-lib.labels.standard" . }}
kai-ml.io/run: {{ .Values.run.name }}
{{- end -}}

{{/* The controller's headless Service: workers and record processors resolve it to the pod's IP
(no ClusterIP proxying needed, as on a node without kube-proxy). */}}
{{- define "loadgen.controllerHost" -}}
{{ .Values.run.name }}-controller.{{ include "loadgen.namespace" . }}.svc
{{- end -}}

{{/* Checks the schema cannot express: the three roles, each once; the controller reports unit 0
and the other roles report nothing of their own. */}}
{{- define "loadgen.validate" -}}
{{- $v := .Values -}}
{{- if not $v.run.name -}}
{{- fail "run.name: empty; the deploy tool sets it (deploy/workloads/load/plan.py)" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $v.groups -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "groups: the role %q appears twice (one Job per role)" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- if and (eq .name "controller") (ne (toJson .indexes) "[0]") -}}
{{- fail (printf "groups.controller.indexes: want [0] (one controller, reporting unit 0), got %s" (toJson .indexes)) -}}
{{- end -}}
{{- if and (ne .name "controller") (has 0 .indexes) -}}
{{- fail (printf "groups.%s.indexes: only the controller reports a result; its pods are -1" .name) -}}
{{- end -}}
{{- end -}}
{{- range list "controller" "worker" "record-processor" -}}
{{- if not (hasKey $seen .) -}}
{{- fail (printf "groups: no %s group (the run needs a controller, workers and record processors)" .) -}}
{{- end -}}
{{- end -}}
{{- if and $v.networkPolicy.enabled (not $v.endpoint.cidrs) (not $v.endpoint.namespace) -}}
{{- fail "endpoint: give cidrs or namespace (where the workers may connect); the deploy tool sets them from --endpoint" -}}
{{- end -}}
{{- if not $v.controller.args -}}
{{- fail "controller.args: empty; the deploy tool writes the run's knobs (deploy/workloads/load/plan.py)" -}}
{{- end -}}
{{- end -}}
