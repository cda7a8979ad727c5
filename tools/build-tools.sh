#!/usr/bin/env bash
# Build (once) and cache every binary the project needs that no package
# registry ships: the Kubernetes control plane and kubelet, etcd, kwok and the chart tools.
#
# Binaries are built from the Go module proxy with the ordinary `go` client
# into ${XDG_CACHE_HOME:-~/.cache}/kai-ml-platform/tools/<tool>-<version>/ and
# linked into <repo>/.tools/bin, so a fresh clone reuses them in seconds.
#
# Usage: tools/build-tools.sh [tool ...]     (default: every tool but helmfile, which only
#        benchmarks/deploy_noop.py uses: tools/build-tools.sh helmfile)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
source "$repo/tools/versions.env"

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/kai-ml-platform/tools
bin_dir=$repo/.tools/bin
mkdir -p "$cache_root" "$bin_dir"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# link_tool NAME VERSION BINARY...: link cached binaries into .tools/bin.
link_tool() {
  local dir=$cache_root/$1-$2; shift 2
  local b
  for b in "$@"; do [[ -x $dir/$b ]] && ln -sf "$dir/$b" "$bin_dir/$b"; done
  return 0
}

# cached NAME VERSION BINARY...: true when every binary is already in the cache.
cached() {
  local dir=$cache_root/$1-$2; shift 2
  local b
  for b in "$@"; do [[ -x $dir/$b ]] || return 1; done
}

# Run a long go build while printing a heartbeat, so a cold build is never silent.
with_heartbeat() {
  local what=$1; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && log "  still building $what ($((SECONDS - start))s)"
  done
  wait "$pid"
}

# build_in_wrapper NAME VERSION LDFLAGS GOMOD PKG:BIN...: build main packages from a
# throwaway wrapper module whose go.mod is GOMOD. Needed where the upstream module
# uses local replace directives that `go install` refuses, or where the proxy
# refuses the module's version list that `go install` asks for (chart-testing).
build_in_wrapper() {
  local name=$1 version=$2 ldflags=$3 gomod=$4; shift 4
  local out=$cache_root/$name-$version work
  work=$(mktemp -d)
  printf '%s\n' "$gomod" >"$work/go.mod"
  local pb
  mkdir -p "$out.tmp"
  for pb in "$@"; do
    log "  compiling ${pb##*:} (${pb%%:*})"
    (cd "$work" && with_heartbeat "${pb##*:}" go build -mod=mod -trimpath -ldflags "$ldflags" -o "$out.tmp/${pb##*:}" "${pb%%:*}")
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$work"
}

# go_install NAME VERSION LDFLAGS MODULE/PKG:BIN...: plain `go install` of modules
# without local replace directives.
go_install() {
  local name=$1 version=$2 ldflags=$3; shift 3
  local out=$cache_root/$name-$version pb
  mkdir -p "$out.tmp"
  for pb in "$@"; do
    log "  compiling ${pb##*:} (${pb%%:*}@$version)"
    with_heartbeat "${pb##*:}" env GOBIN="$out.tmp" go install -trimpath -ldflags "$ldflags" "${pb%%:*}@$version"
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

kubernetes_gomod() {
  local v=$KUBERNETES_VERSION staging_v
  staging_v=v0.${v#v1.}
  # The staging modules come from the .mod the proxy serves for this exact version.
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  echo "module kai-ml-platform/k8s-build"
  echo "go $(awk '/^go /{print $2; exit}' "$modfile")"
  echo "require k8s.io/kubernetes $v"
  awk -v sv="$staging_v" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "replace " $1 " => " $1 " " sv}' "$modfile"
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  cached kubernetes "$v" kube-apiserver kube-controller-manager kube-scheduler kubectl && return
  log "building Kubernetes $v control plane (cold: about 5 minutes on 2 cores)"
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build_in_wrapper kubernetes "$v" "$ld" "$(kubernetes_gomod)" \
    k8s.io/kubernetes/cmd/kube-apiserver:kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager:kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler:kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl:kubectl
}

# The local cluster's real node: a kubelet from the same module and version as the control plane.
# Its own cache folder, so that the control plane's cache entry is not rebuilt for it.
build_kubelet() {
  local v=$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  cached kubelet "$v" kubelet && return
  log "building kubelet $v (cold: about 5 minutes on 2 cores, less after the control plane)"
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build_in_wrapper kubelet "$v" "$ld" "$(kubernetes_gomod)" k8s.io/kubernetes/cmd/kubelet:kubelet
}

# The real node's Services (ClusterIP): kube-proxy from the same module and version, in iptables mode
# inside the node's own network namespace (deploy/cluster/nodenet.py), so its chains are the node's.
build_kube_proxy() {
  local v=$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  cached kube-proxy "$v" kube-proxy && return
  log "building kube-proxy $v (cold: about 3 minutes on 2 cores, less after the kubelet)"
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build_in_wrapper kube-proxy "$v" "$ld" "$(kubernetes_gomod)" k8s.io/kubernetes/cmd/kube-proxy:kube-proxy
}

# NetworkPolicy on the real node: kube-router with only its firewall (network policy) controller,
# in the node's network namespace (iptables + ipset there). Why this version: see versions.env.
build_kube_router() {
  cached kube-router "$KUBE_ROUTER_VERSION" kube-router && return
  log "building kube-router $KUBE_ROUTER_VERSION (network policy controller; cold: about 4 minutes on 2 cores)"
  go_install kube-router "$KUBE_ROUTER_VERSION" \
    "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router:kube-router
}

# Cluster DNS of the real node's pods (Services, headless Services of multi-node ranks).
build_coredns() {
  cached coredns "$COREDNS_VERSION" coredns && return
  log "building coredns $COREDNS_VERSION"
  go_install coredns "$COREDNS_VERSION" "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    github.com/coredns/coredns:coredns
}

build_etcd() {
  cached etcd "$ETCD_VERSION" etcd && return
  log "building etcd $ETCD_VERSION"
  build_in_wrapper etcd "$ETCD_VERSION" "-s -w" \
    "$(printf 'module kai-ml-platform/etcd-build\ngo 1.24\nrequire go.etcd.io/etcd/server/v3 %s' "$ETCD_VERSION")" \
    go.etcd.io/etcd/server/v3:etcd
}

build_kwok() {
  cached kwok "$KWOK_VERSION" kwok kwokctl && return
  log "building kwok $KWOK_VERSION"
  go_install kwok "$KWOK_VERSION" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    sigs.k8s.io/kwok/cmd/kwok:kwok sigs.k8s.io/kwok/cmd/kwokctl:kwokctl
}

build_helm() {
  cached helm "$HELM_VERSION" helm && return
  log "building helm $HELM_VERSION"
  go_install helm "$HELM_VERSION" \
    "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    helm.sh/helm/v4/cmd/helm:helm
}

build_chart_testing() {
  cached chart-testing "$CHART_TESTING_VERSION" ct && return
  log "building chart-testing $CHART_TESTING_VERSION"
  build_in_wrapper chart-testing "$CHART_TESTING_VERSION" \
    "-s -w -X github.com/helm/chart-testing/v3/ct/cmd.Version=$CHART_TESTING_VERSION" \
    "$(printf 'module kai-ml-platform/ct-build\ngo 1.24.0\nrequire github.com/helm/chart-testing/v3 %s' "$CHART_TESTING_VERSION")" \
    github.com/helm/chart-testing/v3/ct:ct
}

build_helm_docs() {
  cached helm-docs "$HELM_DOCS_VERSION" helm-docs && return
  log "building helm-docs $HELM_DOCS_VERSION"
  go_install helm-docs "$HELM_DOCS_VERSION" "-s -w -X main.version=$HELM_DOCS_VERSION" \
    github.com/norwoodj/helm-docs/cmd/helm-docs:helm-docs
}

# upstream_replaces MODULE VERSION: the module's own (non-local) replace directives, which a
# wrapper module must repeat since Go applies only the main module's.
upstream_replaces() {
  local modfile
  modfile=$(go mod download -json "$1@$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  awk '/^replace \(/ {r = 1; next} r && /^\)/ {r = 0}
       r && $2 == "=>" && $3 !~ /^\./ {print "replace " $1 " => " $3 " " $4}
       /^replace [^(]/ && $4 !~ /^\./ {print}' "$modfile"
}

# helmfile: only for benchmarks/deploy_noop.py's comparison (not in the default set: its ~2,600
# packages would add a quarter of an hour to a cold CI run). `tools/build-tools.sh helmfile`.
build_helmfile() {
  cached helmfile "$HELMFILE_VERSION" helmfile && return
  log "building helmfile $HELMFILE_VERSION (for the benchmark; cold: about 10 minutes on 2 cores)"
  local go_line
  go_line=$(go mod download -json "github.com/helmfile/helmfile@$HELMFILE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])' | xargs awk '/^go /{print; exit}')
  build_in_wrapper helmfile "$HELMFILE_VERSION" \
    "-s -w -X go.szostok.io/version.version=$HELMFILE_VERSION -X go.szostok.io/version.dirtyBuild=false" \
    "$(printf 'module kai-ml-platform/helmfile-build\n%s\nrequire github.com/helmfile/helmfile %s\n' \
      "$go_line" "$HELMFILE_VERSION"; upstream_replaces github.com/helmfile/helmfile "$HELMFILE_VERSION")" \
    github.com/helmfile/helmfile:helmfile
}

link_all() {
  link_tool helm "$HELM_VERSION" helm
  link_tool chart-testing "$CHART_TESTING_VERSION" ct
  link_tool helm-docs "$HELM_DOCS_VERSION" helm-docs
  link_tool etcd "$ETCD_VERSION" etcd
  link_tool kwok "$KWOK_VERSION" kwok kwokctl
  link_tool kubernetes "$KUBERNETES_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
  link_tool helmfile "$HELMFILE_VERSION" helmfile
  link_tool kubelet "$KUBERNETES_VERSION" kubelet
  link_tool kube-proxy "$KUBERNETES_VERSION" kube-proxy
  link_tool coredns "$COREDNS_VERSION" coredns
  link_tool kube-router "$KUBE_ROUTER_VERSION" kube-router
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(helm helm_docs chart_testing etcd kwok kubernetes kubelet kube_proxy kube_router coredns)
start=$SECONDS
for t in "${tools[@]}"; do "build_${t//-/_}"; done
link_all
log "tools ready in $((SECONDS - start))s: $bin_dir"
