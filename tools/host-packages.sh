#!/usr/bin/env bash
# Install (once; idempotent) the Debian packages the local cluster's real node and the image build
# need: containerd + runc (the container runtime), the CNI plugins (pod network), buildah and
# mmdebstrap (images without a Docker engine), docker-registry (the local OCI registry), busybox-static
# (the pod sandbox image), openssl (the node's client certificates), iptables and ipset (kube-proxy's
# and the policy engine's rules, inside the node's network namespace) and socat (the node's path to the
# control plane on loopback). Needs root and apt.
#
# Debian 12's containerd 1.6.20 and runc 1.1.5 are used rather than containerd 2.x from the Go proxy:
# they run on this project's cgroup v1 hosts (containerd 2.x and recent runc deprecate v1), they
# serve the CRI v1 API that the 1.36 kubelet speaks, and apt gives them security updates.
set -euo pipefail
packages=(containerd runc containernetworking-plugins buildah mmdebstrap docker-registry busybox-static openssl iproute2 util-linux iptables ipset socat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[host-packages] all installed: ${packages[*]}" >&2
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[host-packages] need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "[host-packages] installing ${missing[*]}" >&2
# The packages' services must not start: the real node runs its own containerd and registry.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 || {
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
}
