{{/* The effective tag of an image: the component's own tag, else global.image.tag, else the
chart's appVersion, so that an image is never left floating on "latest". The one resolution
behind both the image reference (platform-lib.image) and the app.kubernetes.io/version label
(platform-lib.labels.standard); with a digest the tag names what the digest pins.
Params: ctx (the chart's root context), image (the component's image values). */}}
{{- define "platform-lib.image.tag" -}}
{{- (.image | default dict).tag | default (dig "image" "tag" "" .ctx.Values.global) | default .ctx.Chart.AppVersion | toString -}}
{{- end -}}

{{/* Image reference. Params: ctx, image (the component's image values: registry, repository,
tag, digest, pullPolicy). The component's registry and tag win over global.image; a digest wins
over the tag (platform-lib.image.tag). */}}
{{- define "platform-lib.image" -}}
{{- $global := dig "image" dict .ctx.Values.global -}}
{{- $registry := .image.registry | default $global.registry | default "" | trimSuffix "/" -}}
{{- $ref := ternary (printf "%s/%s" $registry .image.repository) .image.repository (ne $registry "") -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (include "platform-lib.image.tag" .) -}}
{{- end -}}
{{- end -}}

{{/* Pull policy. Params as platform-lib.image. */}}
{{- define "platform-lib.imagePullPolicy" -}}
{{- .image.pullPolicy | default (dig "image" "pullPolicy" "" .ctx.Values.global) | default "IfNotPresent" -}}
{{- end -}}

{{/* imagePullSecrets from global.image.pullSecrets (a list of Secret names). Params: the root context. */}}
{{- define "platform-lib.imagePullSecrets" -}}
{{- with dig "image" "pullSecrets" list .Values.global -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
