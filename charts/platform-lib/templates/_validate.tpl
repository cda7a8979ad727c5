{{/* Checks a schema cannot express (they compare two values). */}}
{{- define "platform-lib.validate.replicas" -}}
{{- $key := include "platform-lib.valuesPath" . -}}
{{- $hpa := .Values.autoscaling | default dict -}}
{{- $fewest := int .Values.replicaCount -}}
{{- if $hpa.enabled -}}
{{- if gt (int $hpa.minReplicas) (int $hpa.maxReplicas) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) must not exceed %s.autoscaling.maxReplicas (%d)" $key (int $hpa.minReplicas) $key (int $hpa.maxReplicas)) -}}
{{- end -}}
{{- $fewest = int $hpa.minReplicas -}}
{{- end -}}
{{- $pdb := .Values.podDisruptionBudget | default dict -}}
{{- if and $pdb.enabled (not (kindIs "string" $pdb.minAvailable)) (ge (int $pdb.minAvailable) $fewest) -}}
{{- fail (printf "%s.podDisruptionBudget.minAvailable (%d) must be below the smallest replica count (%d), or no node running it could ever be drained" $key (int $pdb.minAvailable) $fewest) -}}
{{- end -}}
{{- end -}}

{{/* The params of a library helper have the kinds it takes: a list or a map passed as YAML text
(the library's interface before it took values) would otherwise be indented blind.
Params: helper (its name, for the message), params (the dict the caller passed), kinds
(param name -> "slice" | "map" | "string"); an absent or empty param passes. */}}
{{- define "platform-lib.validate.params" -}}
{{- $words := dict "slice" "a list" "map" "a map" "string" "a string" -}}
{{- range $name, $kind := .kinds -}}
{{- $value := get $.params $name -}}
{{- if and $value (not (kindIs $kind $value)) -}}
{{- fail (printf "%s, included by chart %s: param %q must be %s, not %s: pass the value itself, the library renders it with toYaml" $.helper (include "platform-lib.valuesPath" $.params.ctx) $name (get $words $kind) (kindOf $value)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
