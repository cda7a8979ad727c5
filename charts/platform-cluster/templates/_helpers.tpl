{{/* Standard labels with this chart's own version. platform-lib's labels take the version from
global.image.tag, the tag of the environment's images; this release is shared by every
environment on the cluster and runs no image, so that tag would relabel (and upgrade) it
whenever an environment deploys another tag. */}}
{{- define "platform-cluster.labels" -}}
{{- $global := omit (.Values.global | default dict) "image" -}}
{{- include "platform-lib.labels.standard" (dict "Values" (dict "global" $global) "Chart" .Chart "Release" .Release) -}}
{{- end -}}
