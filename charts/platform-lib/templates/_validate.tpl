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
