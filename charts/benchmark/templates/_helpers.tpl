{{/* The sweep's namespace: global.namespaces.benchmarks, else the release's. */}}
{{- define "benchmark.namespace" -}}
{{- dig "namespaces" "benchmarks" "" .Values.global | default .Release.Namespace -}}
{{- end -}}

{{/* Standard labels plus the sweep's: a watcher selects every pod of a sweep by
kai-ml.io/benchmark. The version label is the runner image's tag. */}}
{{- define "benchmark.labels" -}}
{{- $labels := include "platform-lib.labels.standard" (dict "ctx" . "image" .Values.runner.image) | fromYaml -}}
{{- toYaml (set $labels "kai-ml.io/benchmark" .Values.sweep.name) -}}
{{- end -}}

{{/* Checks the schema cannot express: every group's indexes are configs, each config is in
exactly one group, group names are unique, a spot group is on a spot pool, and the config-error
exit code is not retried. */}}
{{- define "benchmark.validate" -}}
{{- $v := .Values -}}
{{- if not $v.sweep.name -}}
{{- fail "sweep.name: empty; the deploy tool sets it from the sweep file (deploy/workloads/bench/sweep.py)" -}}
{{- end -}}
{{- if not $v.groups -}}
{{- fail "groups: empty; the deploy tool writes the sweep's scheduling groups (deploy/workloads/bench/sweep.py)" -}}
{{- end -}}
{{- $configs := dict -}}
{{- range $v.configs -}}
{{- if hasKey $configs (toString .index) -}}
{{- fail (printf "configs: index %v appears twice" .index) -}}
{{- end -}}
{{- $_ := set $configs (toString .index) "" -}}
{{- end -}}
{{- $names := dict -}}
{{- range $v.groups -}}
{{- if hasKey $names .name -}}
{{- fail (printf "groups: the name %q appears twice (one Job per group)" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- $group := .name -}}
{{- $rerunOf := .rerunOf -}}
{{- if .spot -}}
{{- $pool := include "platform-lib.nodePool" (dict "ctx" $ "pool" .nodePool "key" (printf "groups.%s.nodePool" $group)) | fromYaml -}}
{{- if not $pool.spot -}}
{{- fail (printf "groups.%s.spot: true, but node pool %s is not spot capacity (`spot: true` in global.nodePools): a spot group runs on a spot pool" $group .nodePool) -}}
{{- end -}}
{{- end -}}
{{- if and $rerunOf (not (hasKey $names $rerunOf)) -}}
{{- fail (printf "groups.%s.rerunOf: %q is not a group listed before it" $group $rerunOf) -}}
{{- end -}}
{{- range .indexes -}}
{{- if not (hasKey $configs (toString .)) -}}
{{- fail (printf "groups.%s.indexes: %v is not the index of any of configs" $group .) -}}
{{- end -}}
{{- /* A re-run group runs again configs of the group it repeats; any other overlap is an error. */ -}}
{{- if and (get $configs (toString .)) (not $rerunOf) -}}
{{- fail (printf "groups.%s.indexes: config %v is also in group %s" $group . (get $configs (toString .))) -}}
{{- end -}}
{{- if not $rerunOf -}}
{{- $_ := set $configs (toString .) $group -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $index, $group := $configs -}}
{{- if not $group -}}
{{- fail (printf "configs: config %s is in no group of groups" $index) -}}
{{- end -}}
{{- end -}}
{{- if has $v.runner.configErrorExitCode $v.runner.retryableExitCodes -}}
{{- fail (printf "runner.retryableExitCodes: %v is runner.configErrorExitCode, which fails the config at once" $v.runner.configErrorExitCode) -}}
{{- end -}}
{{- end -}}
