{{/*
Names. Every helper takes the including chart's root context unless it says otherwise.
*/}}

{{/* The component's name as a DNS label. Umbrella aliases are camelCase
(distributedProcessing), so the chart name is kebab-cased before use. */}}
{{- define "platform-lib.name" -}}
{{- default (kebabcase .Chart.Name) .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name, at most 63 characters; the release name alone when it
already contains the component name. */}}
{{- define "platform-lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "platform-lib.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "platform-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where the values of this chart live, for error messages: under the umbrella
.Chart.Name is the alias, which is the values key. */}}
{{- define "platform-lib.valuesPath" -}}
{{- .Chart.Name -}}
{{- end -}}

{{/* The platform namespace: global.namespaces.platform, else the release's. */}}
{{- define "platform-lib.namespace" -}}
{{- dig "namespaces" "platform" "" .Values.global | default .Release.Namespace -}}
{{- end -}}

{{/* The namespace named by a key of global.namespaces; fails when it is empty.
Params: ctx, key (platform | benchmarks | training | monitoring). */}}
{{- define "platform-lib.namespaceOf" -}}
{{- $ns := dig "namespaces" .key "" .ctx.Values.global -}}
{{- if not $ns -}}
{{- fail (printf "global.namespaces.%s: no namespace name is set, but %s uses it" .key (include "platform-lib.valuesPath" .ctx)) -}}
{{- end -}}
{{- $ns -}}
{{- end -}}
