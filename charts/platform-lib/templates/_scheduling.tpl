{{/* A node pool's definition from global.nodePools, as YAML.
Params: ctx, pool (its name), key (the values key that named it, for the message). */}}
{{- define "platform-lib.nodePool" -}}
{{- $pools := dig "nodePools" dict .ctx.Values.global -}}
{{- if not (hasKey $pools .pool) -}}
{{- fail (printf "%s: node pool %q is not in global.nodePools (known: %s)" .key .pool (keys $pools | sortAlpha | join ", ")) -}}
{{- end -}}
{{- toYaml (index $pools .pool) -}}
{{- end -}}

{{/* Pod scheduling onto one pool: nodeSelector is exactly the pool's labels and the
tolerations exactly match its taints, so adding a pool is a values edit.
Params as platform-lib.nodePool. */}}
{{- define "platform-lib.scheduling" -}}
{{- $pool := include "platform-lib.nodePool" . | fromYaml -}}
nodeSelector: {{- toYaml $pool.labels | nindent 2 }}
{{- with $pool.taints }}
tolerations:
{{- range . }}
  - key: {{ .key | quote }}
    operator: Equal
    value: {{ .value | default "" | quote }}
    effect: {{ .effect }}
{{- end }}
{{- end }}
{{- end -}}

{{/* affinity and topologySpreadConstraints: the presets podAntiAffinity (soft | hard)
and zoneSpread need the release's selector labels, so they are built here; the raw
affinity / topologySpreadConstraints values pass through (a raw podAntiAffinity wins).
zoneSpread falls back key by key to global.zoneSpread (see platform-lib.zoneSpread). */}}
{{- define "platform-lib.spread" -}}
{{- $v := .Values -}}
{{- $selector := dict "matchLabels" (include "platform-lib.labels.matchLabels" . | fromYaml) -}}
{{- $affinity := deepCopy ($v.affinity | default dict) -}}
{{- if and $v.podAntiAffinity (not $affinity.podAntiAffinity) -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" $selector -}}
{{- if eq $v.podAntiAffinity "hard" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- else -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- end -}}
{{- end -}}
{{- with $affinity -}}
affinity: {{- toYaml . | nindent 2 }}
{{ end -}}
{{- $spread := $v.topologySpreadConstraints | default list -}}
{{- $zone := include "platform-lib.zoneSpread" . | fromYaml -}}
{{- if $zone.enabled -}}
{{- $spread = prepend $spread (dict "maxSkew" $zone.maxSkew "topologyKey" "topology.kubernetes.io/zone" "whenUnsatisfiable" $zone.whenUnsatisfiable "labelSelector" $selector) -}}
{{- end -}}
{{- with $spread -}}
topologySpreadConstraints: {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The component's zoneSpread, each key it leaves out taken from global.zoneSpread, then
from the defaults (off, maxSkew 1, ScheduleAnyway), as YAML. Key by key with hasKey rather than
sprig merge, which would let a global `true` override a component's `enabled: false`. */}}
{{- define "platform-lib.zoneSpread" -}}
{{- $own := .Values.zoneSpread | default dict -}}
{{- $global := dig "zoneSpread" dict .Values.global -}}
{{- $zone := dict -}}
{{- range $key, $default := dict "enabled" false "maxSkew" 1 "whenUnsatisfiable" "ScheduleAnyway" -}}
{{- $fallback := ternary (index $global $key) $default (hasKey $global $key) -}}
{{- $_ := set $zone $key (ternary (index $own $key) $fallback (hasKey $own $key)) -}}
{{- end -}}
{{- toYaml $zone -}}
{{- end -}}
