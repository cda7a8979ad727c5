{{/* Credentials reach a container as files, never as environment variables (which leak into
child processes, crash reports and `kubectl describe`-style dumps): a Secret volume, read-only,
mode 0400. With the pod's fsGroup (65532) the kubelet adds group read, which is how the
non-root user reads it.
Params: name (the volume's), secret (the Secret's name), mountPath, items (optional list of
dicts key/path: only those keys; default: every key of the Secret, one file each).
Returns YAML with `volume` and `volumeMount`. */}}
{{- define "platform-lib.secretFiles" -}}
{{- $source := dict "secretName" .secret "defaultMode" 0400 -}}
{{- with .items -}}
{{- $_ := set $source "items" . -}}
{{- end -}}
volume:
  name: {{ .name }}
  secret: {{- toYaml $source | nindent 4 }}
volumeMount:
  name: {{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end -}}

{{/* Where the cache password is mounted, in the cache and in its clients alike. */}}
{{- define "platform-lib.cacheAuth.dir" -}}
/run/secrets/kai-ml/cache
{{- end -}}

{{/* The cache password (global.cacheAuth) as a platform-lib.secretFiles result, one file named
`password`; empty when global.cacheAuth.existingSecret is not set. */}}
{{- define "platform-lib.cacheAuth" -}}
{{- $auth := dig "cacheAuth" dict .Values.global -}}
{{- with $auth.existingSecret -}}
{{- $items := list (dict "key" ($auth.secretKey | default "password") "path" "password") -}}
{{- include "platform-lib.secretFiles" (dict "name" "cache-auth" "secret" . "mountPath" (include "platform-lib.cacheAuth.dir" $) "items" $items) -}}
{{- end -}}
{{- end -}}
