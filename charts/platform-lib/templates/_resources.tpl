{{/* Container resources; requests and limits are both required because every
platform namespace has a ResourceQuota on them. Params: resources, key, ephemeral (also
require ephemeral-storage in both: the long-running workloads set it themselves rather
than take the LimitRange's default, so that it is sized for their emptyDirs). */}}
{{- define "platform-lib.resources" -}}
{{- if not (and (.resources).requests (.resources).limits) -}}
{{- fail (printf "%s: both requests and limits are required (the namespace quotas count them)" .key) -}}
{{- end -}}
{{- if and .ephemeral (not (and (hasKey .resources.requests "ephemeral-storage") (hasKey .resources.limits "ephemeral-storage"))) -}}
{{- fail (printf "%s: requests and limits of ephemeral-storage are both required (size them for the pod's emptyDirs, /tmp included)" .key) -}}
{{- end -}}
{{- toYaml .resources -}}
{{- end -}}

{{/* priorityClassName, falling back to global.priorityClassName.
Params: ctx, priorityClassName, key. */}}
{{- define "platform-lib.priorityClassName" -}}
{{- $name := .priorityClassName | default (dig "priorityClassName" "" .ctx.Values.global) -}}
{{- if not $name -}}
{{- fail (printf "%s: no priority class: set it or global.priorityClassName" .key) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Prometheus scrape annotations (metrics.enabled, metrics.path; the port is metrics.port or containerPort). */}}
{{- define "platform-lib.prometheusAnnotations" -}}
{{- with .Values.metrics }}
{{- if .enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | default $.Values.containerPort | toString | quote }}
prometheus.io/path: {{ .path | quote }}
{{- end }}
{{- end }}
{{- end -}}
