{{/* The name of the namespace with key .key of global.namespaces. Params: ctx, key. */}}
{{- define "platform-policy.namespace" -}}
{{- include "platform-lib.namespaceOf" . -}}
{{- end -}}

{{/* A NetworkPolicy peer: pods with .podLabels in the namespace with key .namespace.
Params: ctx, peer ({namespace, podLabels}). */}}
{{- define "platform-policy.peer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ include "platform-policy.namespace" (dict "ctx" .ctx "key" .peer.namespace) }}
  {{- include "platform-policy.podSelector" .peer.podLabels | nindent 2 }}
{{- end -}}

{{/* podSelector of the given labels; empty selects every pod. */}}
{{- define "platform-policy.podSelector" -}}
{{- if . -}}
podSelector:
  matchLabels: {{- toYaml . | nindent 4 }}
{{- else -}}
podSelector: {}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy ports from [{port, protocol}]; the protocol defaults to TCP. */}}
{{- define "platform-policy.ports" -}}
{{- $ports := list -}}
{{- range . -}}
{{- $ports = append $ports (dict "port" .port "protocol" (.protocol | default "TCP")) -}}
{{- end -}}
{{- toYaml $ports -}}
{{- end -}}

{{/* A NetworkPolicy's metadata. Params: ctx, name, key (of the namespace). */}}
{{- define "platform-policy.metadata" -}}
{{- include "platform-lib.metadata" (dict "ctx" .ctx "name" .name "namespace" (include "platform-policy.namespace" (dict "ctx" .ctx "key" .key))) -}}
{{- end -}}

{{/* Egress from some pods to CIDRs. Params: ctx, name, rule ({namespace, podLabels, cidrs, except, ports}). */}}
{{- define "platform-policy.cidrEgress" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "platform-policy.metadata" (dict "ctx" .ctx "name" .name "key" .rule.namespace) | nindent 2 }}
spec:
  {{- include "platform-policy.podSelector" .rule.podLabels | nindent 2 }}
  policyTypes: [Egress]
  egress:
    - to:
        {{- range .rule.cidrs }}
        - ipBlock:
            cidr: {{ . }}
            {{- with $.rule.except }}
            except: {{- toYaml . | nindent 14 }}
            {{- end }}
        {{- end }}
      ports:
        {{- range .rule.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
{{- end -}}
