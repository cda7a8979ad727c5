"""What a real node needs from the host, checked before anything is started, so that a host that
cannot run one gets a single paragraph that says what is missing instead of a failed kubelet."""

import os
import shutil
from pathlib import Path

from deploy.errors import ClusterError

# The cgroup v1 hierarchies the kubelet (cgroupfs driver) and runc write to.
CGROUP_V1 = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd")
CGROUP_FS = Path("/sys/fs/cgroup")
# Debian packages (installed by tools/host-packages.sh) and the binaries each one provides.
PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "/usr/lib/cni/ptp": "containernetworking-plugins",
    "/usr/lib/cni/host-local": "containernetworking-plugins",
    "/usr/lib/cni/loopback": "containernetworking-plugins",
    "buildah": "buildah",
    "docker-registry": "docker-registry",
    "mmdebstrap": "mmdebstrap",
    "openssl": "openssl",
    "ip": "iproute2",
    "nsenter": "util-linux",
    # In the node's network namespace: kube-proxy's and the policy engine's rules and sets.
    "iptables-restore": "iptables",
    "ipset": "ipset",
    # The node reaches the control plane (on loopback) through a forwarder on its link.
    "socat": "socat",
}


def cgroup_version() -> int:
    """2 on a pure cgroup v2 host, 1 where the v1 hierarchies are mounted (hybrid included)."""
    return 1 if (CGROUP_FS / "memory" / "memory.limit_in_bytes").exists() else 2


def missing_requirements() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("it runs as root (the kubelet, containerd and runc create cgroups, mounts and namespaces)")
    if cgroup_version() == 1:
        absent = [c for c in CGROUP_V1 if not (CGROUP_FS / c).is_dir()]
        if absent:
            problems.append(f"the cgroup v1 hierarchies {', '.join(absent)} are mounted under {CGROUP_FS}")
    elif not (CGROUP_FS / "cgroup.controllers").exists():
        problems.append(f"a cgroup filesystem is mounted at {CGROUP_FS}")
    packages = sorted({pkg for binary, pkg in PACKAGES.items() if not _found(binary)})
    if packages:
        problems.append(f"the Debian packages {', '.join(packages)} are installed (tools/host-packages.sh)")
    if not Path("/proc/self/ns/net").exists():
        problems.append("network namespaces are available")
    return problems


def require_host() -> None:
    problems = missing_requirements()
    if problems:
        raise ClusterError(
            "This host cannot run the local cluster's real node: it needs "
            + "; ".join(problems)
            + ". The real node starts real containers (a kubelet, containerd and runc beside the control "
            "plane), so it needs a Linux machine or VM where the tool runs as root. Start the cluster without "
            "it (`./deploy.sh cluster up --no-real-node`): the kwok fake nodes need none of this."
        )


def _found(binary: str) -> bool:
    if binary.startswith("/"):
        return Path(binary).exists()
    # Administrators' tools (iptables, ipset) live in the sbin folders, which a user's PATH may lack.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(binary, path=path) is not None


def main() -> int:
    """`python -m deploy.cluster.hostcheck`: CI's loud line about whether tests/realnode can pass here."""
    import sys

    try:
        require_host()
    except ClusterError as err:
        bar = "!" * 100
        print(f"{bar}\n!! tests/realnode WILL FAIL on this host (they never skip).\n!! {err}\n{bar}", file=sys.stderr)
        return 1
    print("== this host can run the real node: tests/realnode run real containers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
