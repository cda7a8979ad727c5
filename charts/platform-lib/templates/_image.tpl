{{/* Image reference. Params: ctx, image (the component's image values).
The component's registry and tag win over global.image; with no tag anywhere the
chart's appVersion is used, so an image is never left floating on "latest". */}}
{{- define "platform-lib.image" -}}
{{- $global := dig "image" dict .ctx.Values.global -}}
{{- $registry := .image.registry | default $global.registry | default "" | trimSuffix "/" -}}
{{- $ref := ternary (printf "%s/%s" $registry .image.repository) .image.repository (ne $registry "") -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (.image.tag | default $global.tag | default .ctx.Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* Pull policy. Params as platform-lib.image. */}}
{{- define "platform-lib.imagePullPolicy" -}}
{{- .image.pullPolicy | default (dig "image" "pullPolicy" "" .ctx.Values.global) | default "IfNotPresent" -}}
{{- end -}}

{{/* imagePullSecrets from global.image.pullSecrets (a list of Secret names). */}}
{{- define "platform-lib.imagePullSecrets" -}}
{{- with dig "image" "pullSecrets" list .Values.global -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
