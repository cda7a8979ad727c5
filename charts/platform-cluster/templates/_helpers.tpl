{{/* Standard labels with this chart's own version. platform-lib's labels take the version from
the chart's image tag, else global.image.tag (the tag of the environment's images); this release
is shared by every environment on the cluster and runs no image, so that tag would relabel (and
upgrade) it whenever an environment deploys another tag: its version is its appVersion. */}}
{{- define "platform-cluster.labels" -}}
{{- include "platform-lib.labels.standard" (dict "ctx" . "image" (dict "tag" .Chart.AppVersion)) -}}
{{- end -}}
