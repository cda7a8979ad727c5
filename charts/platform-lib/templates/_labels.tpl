{{/* Selector labels: small on purpose, selectors are immutable. Params: the root context. */}}
{{- define "platform-lib.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "platform-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A value made fit for a label: characters a label value cannot hold become "_", at most 63
characters, no "-" at the end. Params: the value. */}}
{{- define "platform-lib.labels.value" -}}
{{- regexReplaceAll "[^-A-Za-z0-9_.]" (toString .) "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels (app.kubernetes.io/*, helm.sh/chart, the environment) plus
global.commonLabels; the standard ones win a clash. Returns YAML (a map).
Params: the root context, or a dict of
  ctx    the root context
  image  the image values whose tag is the version (default: the chart's .Values.image)
app.kubernetes.io/version is the effective tag of the chart's image (platform-lib.image.tag), the
same resolution as the image reference: the cache that runs redis:7.4 is labelled 7.4. A chart
without an image of its own gets global.image.tag, else its appVersion. */}}
{{- define "platform-lib.labels.standard" -}}
{{- $ctx := . -}}
{{- if hasKey . "ctx" -}}
{{- $ctx = .ctx -}}
{{- end -}}
{{- $image := $ctx.Values.image | default dict -}}
{{- if hasKey . "image" -}}
{{- $image = .image | default dict -}}
{{- end -}}
{{- $version := include "platform-lib.image.tag" (dict "ctx" $ctx "image" $image) -}}
{{- $labels := include "platform-lib.labels.matchLabels" $ctx | fromYaml -}}
{{- $_ := set $labels "app.kubernetes.io/component" (include "platform-lib.name" $ctx) -}}
{{- $_ = set $labels "app.kubernetes.io/part-of" "kai-ml-platform" -}}
{{- $_ = set $labels "app.kubernetes.io/managed-by" $ctx.Release.Service -}}
{{- $_ = set $labels "app.kubernetes.io/version" (include "platform-lib.labels.value" $version) -}}
{{- $_ = set $labels "helm.sh/chart" (include "platform-lib.chart" $ctx) -}}
{{- with dig "environment" "" $ctx.Values.global -}}
{{- $_ = set $labels "kai-ml.io/environment" . -}}
{{- end -}}
{{- toYaml (merge $labels (dig "commonLabels" dict $ctx.Values.global)) -}}
{{- end -}}

{{/* Standard labels as a metadata block with name and namespace. Returns YAML (a map).
Params: ctx, name, namespace (default: the platform namespace), image (optional, as
platform-lib.labels.standard). */}}
{{- define "platform-lib.metadata" -}}
{{- $labels := dict "ctx" .ctx -}}
{{- if hasKey . "image" -}}
{{- $_ := set $labels "image" .image -}}
{{- end -}}
name: {{ .name }}
namespace: {{ .namespace | default (include "platform-lib.namespace" .ctx) }}
labels: {{- include "platform-lib.labels.standard" $labels | nindent 2 }}
{{- end -}}
