{{/* The run's namespace: global.namespaces.training, else the release's. */}}
{{- define "training.namespace" -}}
{{- dig "namespaces" "training" "" .Values.global | default .Release.Namespace -}}
{{- end -}}

{{/* Standard labels plus the run's: a watcher selects the run's Job and pod by kai-ml.io/run. The
version label is the runner image's tag. */}}
{{- define "training.labels" -}}
{{- $labels := include "platform-lib.labels.standard" (dict "ctx" . "image" .Values.runner.image) | fromYaml -}}
{{- toYaml (set $labels "kai-ml.io/run" .Values.run.name) -}}
{{- end -}}

{{/* The Job's name, which is also the run's key prefix in the object store (KAIML_RUN_ID). Every
template names it first, so the values are checked before any of them is rendered. */}}
{{- define "training.job" -}}
{{- include "training.validate" . -}}
{{- printf "%s-%s" .Values.run.name (index .Values.groups 0).name -}}
{{- end -}}

{{/* Checks the schema cannot express: one group of exactly the one unit. */}}
{{- define "training.validate" -}}
{{- $v := .Values -}}
{{- if not $v.run.name -}}
{{- fail "run.name: empty; the deploy tool sets it from the training spec (deploy/workloads/train/spec.py)" -}}
{{- end -}}
{{- if ne (len $v.groups) 1 -}}
{{- fail (printf "groups: a training run is one Job, so exactly one group (got %d)" (len $v.groups)) -}}
{{- end -}}
{{- if ne (len $v.units) 1 -}}
{{- fail (printf "units: a training run has exactly one unit (got %d)" (len $v.units)) -}}
{{- end -}}
{{- if ne (toJson (index $v.groups 0).indexes) (toJson (list (index $v.units 0).index)) -}}
{{- fail (printf "groups[0].indexes: must be [%v], the one unit's index" (index $v.units 0).index) -}}
{{- end -}}
{{- end -}}
