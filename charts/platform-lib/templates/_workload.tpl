{{/*
A component's Deployment. Params, a dict (values, not YAML text: the library renders each with
toYaml at its place; a string where a list or map belongs fails with the param named):
  ctx            the chart's root context; reads the shared workload values (the
                 "workload" schema definition: image, replicaCount, nodePool, ...)
  portName       string: name of the container port (default "http")
  command        list: container command (default: the image's entrypoint)
  args           list: container args
  env            list of env entries, before the values' extraEnv
  envFrom        list of envFrom entries
  volumes        list of volumes, after the /tmp emptyDir every pod gets
  volumeMounts   list of volumeMounts, after the /tmp mount
  annotations    map: extra pod annotations (e.g. a config checksum); the values'
                 podAnnotations and the Prometheus ones come after it (first wins)
  readinessProbe map: replaces the values' readinessProbe (a check the chart builds)
Example:
  {{- include "platform-lib.deployment" (dict "ctx" . "args" (list "--port" "8080")
        "env" (list (dict "name" "MODE" "value" "fast")) "annotations" (dict "checksum/config" $sum)) }}
*/}}
{{- define "platform-lib.deployment" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- include "platform-lib.validate.replicas" $ctx -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "platform-lib.metadata" (dict "ctx" $ctx "name" (include "platform-lib.fullname" $ctx)) | nindent 2 }}
spec:
  {{- if not ($v.autoscaling | default dict).enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels: {{- include "platform-lib.labels.matchLabels" $ctx | nindent 6 }}
  template:
    {{- include "platform-lib.podTemplate" . | nindent 4 }}
{{- end -}}

{{/* The pod template of platform-lib.deployment (same params). */}}
{{- define "platform-lib.podTemplate" -}}
{{- $kinds := dict "portName" "string" "command" "slice" "args" "slice" "env" "slice" "envFrom" "slice" "volumes" "slice" "volumeMounts" "slice" "annotations" "map" "readinessProbe" "map" -}}
{{- include "platform-lib.validate.params" (dict "helper" "platform-lib.deployment" "params" . "kinds" $kinds) -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- $key := include "platform-lib.valuesPath" $ctx -}}
{{- $name := include "platform-lib.name" $ctx -}}
{{- $image := dict "ctx" $ctx "image" $v.image -}}
{{- $annotations := merge (include "platform-lib.prometheusAnnotations" $ctx | fromYaml) (.annotations | default dict) ($v.podAnnotations | default dict) -}}
metadata:
  labels:
    {{- include "platform-lib.labels.standard" $ctx | nindent 4 }}
    kai-ml.io/node-pool: {{ $v.nodePool }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $annotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "platform-lib.serviceAccountName" $ctx }}
  # Only pods that call the API server get a token.
  automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
  enableServiceLinks: false
  priorityClassName: {{ include "platform-lib.priorityClassName" (dict "ctx" $ctx "priorityClassName" $v.priorityClassName "key" (printf "%s.priorityClassName" $key)) }}
  securityContext: {{- include "platform-lib.podSecurityContext" $ctx | nindent 4 }}
  {{- with include "platform-lib.imagePullSecrets" $ctx }}{{ . | nindent 2 }}{{ end }}
  {{- include "platform-lib.scheduling" (dict "ctx" $ctx "pool" $v.nodePool "key" (printf "%s.nodePool" $key)) | nindent 2 }}
  {{- with include "platform-lib.spread" $ctx | trim }}{{ . | nindent 2 }}{{ end }}
  containers:
    - name: {{ $name }}
      image: {{ include "platform-lib.image" $image | quote }}
      imagePullPolicy: {{ include "platform-lib.imagePullPolicy" $image }}
      {{- with .command }}
      command: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .args }}
      args: {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: {{ .portName | default "http" }}
          containerPort: {{ $v.containerPort }}
          protocol: TCP
      {{- with concat (.env | default list) ($v.extraEnv | default list) }}
      env: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .envFrom }}
      envFrom: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.livenessProbe }}
      livenessProbe: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .readinessProbe | default $v.readinessProbe }}
      readinessProbe: {{- toYaml . | nindent 8 }}
      {{- end }}
      resources: {{- include "platform-lib.resources" (dict "resources" $v.resources "key" (printf "%s.resources" $key) "ephemeral" true) | nindent 8 }}
      securityContext: {{- include "platform-lib.containerSecurityContext" $ctx | nindent 8 }}
      volumeMounts:
        # The root filesystem is read-only; /tmp is the scratch space.
        - name: tmp
          mountPath: /tmp
        {{- with .volumeMounts }}{{ toYaml . | nindent 8 }}{{ end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- with .volumes }}{{ toYaml . | nindent 4 }}{{ end }}
{{- end -}}

{{/* The pod's ServiceAccount: the chart's own when serviceAccount.create, else the named one. */}}
{{- define "platform-lib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "platform-lib.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The component's own ServiceAccount (serviceAccount.create). */}}
{{- define "platform-lib.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "platform-lib.metadata" (dict "ctx" . "name" (include "platform-lib.serviceAccountName" .)) | nindent 2 }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- end }}
{{- end -}}

{{/* ClusterIP Service on service.port to the named container port (portName, default "http"). Params: ctx, portName. */}}
{{- define "platform-lib.service" -}}
{{- $ctx := .ctx -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "platform-lib.metadata" (dict "ctx" $ctx "name" (include "platform-lib.fullname" $ctx)) | nindent 2 }}
spec:
  type: ClusterIP
  selector: {{- include "platform-lib.labels.matchLabels" $ctx | nindent 4 }}
  ports:
    - name: {{ .portName | default "http" }}
      port: {{ $ctx.Values.service.port }}
      targetPort: {{ .portName | default "http" }}
      protocol: TCP
{{- end -}}

{{/* CPU-based HorizontalPodAutoscaler (autoscaling.*), when enabled. */}}
{{- define "platform-lib.hpa" -}}
{{- with .Values.autoscaling }}
{{- if .enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  {{- include "platform-lib.metadata" (dict "ctx" $ "name" (include "platform-lib.fullname" $)) | nindent 2 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "platform-lib.fullname" $ }}
  minReplicas: {{ .minReplicas }}
  maxReplicas: {{ .maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .targetCPUUtilizationPercentage }}
{{- end }}
{{- end }}
{{- end -}}

{{/* PodDisruptionBudget (podDisruptionBudget.*), when enabled. */}}
{{- define "platform-lib.pdb" -}}
{{- with .Values.podDisruptionBudget }}
{{- if .enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "platform-lib.metadata" (dict "ctx" $ "name" (include "platform-lib.fullname" $)) | nindent 2 }}
spec:
  minAvailable: {{ .minAvailable }}
  # A pod that is not Ready protects nothing: it may be evicted even when the budget is
  # spent, so a crash-looping pod cannot block a node drain.
  unhealthyPodEvictionPolicy: {{ .unhealthyPodEvictionPolicy | default "AlwaysAllow" }}
  selector:
    matchLabels: {{- include "platform-lib.labels.matchLabels" $ | nindent 6 }}
{{- end }}
{{- end }}
{{- end -}}
