{{/* Selector labels: small on purpose, selectors are immutable. */}}
{{- define "platform-lib.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "platform-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels (app.kubernetes.io/*, helm.sh/chart, the environment) plus
global.commonLabels; the standard ones win a clash. */}}
{{- define "platform-lib.labels.standard" -}}
{{- $version := dig "image" "tag" "" .Values.global | default .Chart.AppVersion | toString -}}
{{- $labels := include "platform-lib.labels.matchLabels" . | fromYaml -}}
{{- $_ := set $labels "app.kubernetes.io/component" (include "platform-lib.name" .) -}}
{{- $_ = set $labels "app.kubernetes.io/part-of" "kai-ml-platform" -}}
{{- $_ = set $labels "app.kubernetes.io/managed-by" .Release.Service -}}
{{- $_ = set $labels "app.kubernetes.io/version" (regexReplaceAll "[^-A-Za-z0-9_.]" $version "_" | trunc 63 | trimSuffix "-") -}}
{{- $_ = set $labels "helm.sh/chart" (include "platform-lib.chart" .) -}}
{{- with dig "environment" "" .Values.global -}}
{{- $_ = set $labels "kai-ml.io/environment" . -}}
{{- end -}}
{{- toYaml (merge $labels (dig "commonLabels" dict .Values.global)) -}}
{{- end -}}

{{/* Standard labels as a metadata block with name and namespace.
Params: ctx, name, namespace (default: the platform namespace). */}}
{{- define "platform-lib.metadata" -}}
name: {{ .name }}
namespace: {{ .namespace | default (include "platform-lib.namespace" .ctx) }}
labels: {{- include "platform-lib.labels.standard" .ctx | nindent 2 }}
{{- end -}}
