{{/* The run's namespace: global.namespaces.benchmarks, else the release's. */}}
{{- define "run.namespace" -}}
{{- dig "namespaces" "benchmarks" "" .Values.global | default .Release.Namespace -}}
{{- end -}}

{{/* Standard labels plus the run's: the deploy tool follows every pod of a run by kai-ml.io/run. */}}
{{- define "run.labels" -}}
{{ include "platform-lib.labels.standard" . }}
kai-ml.io/run: {{ .Values.run.name }}
{{- end -}}

{{/* The ranks of this release and nothing else (the Service's and the NetworkPolicy's selector). */}}
{{- define "run.selector" -}}
{{ include "platform-lib.labels.matchLabels" . }}
kai-ml.io/run: {{ .Values.run.name }}
{{- end -}}

{{/* Rank 0's stable DNS name: the first node's Job, completion index 0, under the headless Service. */}}
{{- define "run.coordinator" -}}
{{- printf "%s-%s-0.%s" .Values.run.name (index .Values.groups 0).name .Values.run.name -}}
{{- end -}}

{{/* Checks the schema cannot express: the groups' ranks are 0..N-1 in order, consecutive within each
group (a rank is its group's first plus the completion index), each a unit; names and nodes unique. */}}
{{- define "run.validate" -}}
{{- $v := .Values -}}
{{- if not $v.run.name -}}
{{- fail "run.name: empty; the deploy tool sets it from the run spec (deploy/workloads/runs/spec.py)" -}}
{{- end -}}
{{- if not $v.groups -}}
{{- fail "groups: empty; the deploy tool writes one group per named node (deploy/workloads/runs/spec.py)" -}}
{{- end -}}
{{- $units := dict -}}
{{- range $v.units -}}
{{- $_ := set $units (toString .index) true -}}
{{- end -}}
{{- $next := 0 -}}
{{- $names := dict -}}
{{- $nodes := dict -}}
{{- range $v.groups -}}
{{- if hasKey $names .name -}}
{{- fail (printf "groups: the name %q appears twice (one Job per node)" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- if hasKey $nodes .node -}}
{{- fail (printf "groups.%s.node: %q is also the node of group %s (one group per node; raise ranks per node instead)" .name .node (get $nodes .node)) -}}
{{- end -}}
{{- $_ := set $nodes .node .name -}}
{{- $group := .name -}}
{{- range .indexes -}}
{{- if ne (int .) $next -}}
{{- fail (printf "groups.%s.indexes: rank %v where rank %d was expected (ranks run 0..N-1 in order, consecutive within a group)" $group . $next) -}}
{{- end -}}
{{- if not (hasKey $units (toString .)) -}}
{{- fail (printf "groups.%s.indexes: rank %v is not the index of any of units" $group .) -}}
{{- end -}}
{{- $next = add1 $next -}}
{{- end -}}
{{- end -}}
{{- if ne (len $v.units) $next -}}
{{- fail (printf "units: %d units for %d ranks in groups" (len $v.units) $next) -}}
{{- end -}}
{{- end -}}

{{/* The run's world size. */}}
{{- define "run.worldSize" -}}
{{- $n := 0 -}}
{{- range .Values.groups }}{{ $n = add $n (len .indexes) }}{{ end -}}
{{- $n -}}
{{- end -}}
