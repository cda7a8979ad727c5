"""The real node's own network: a network namespace per cluster, joined to this machine by one veth
pair, in which the kubelet, kube-proxy, the NetworkPolicy engine and the pods' side of their links
live. Everything they program (kube-proxy's Service chains, the policy engine's chains and ipsets,
the kubelet's own chains, forwarding) is the namespace's, so two local clusters never share a rule and
the host's own iptables are never touched; deleting the namespace removes all of it at once.

    host namespace                            node namespace kaiml-<cluster>
    kaiml<N>  10.213.N.1/30  <-- veth -->  eth0  10.213.N.2/30  (the node's InternalIP)
    control plane, registry and CNI         kubelet, kube-proxy, kube-router;
    reached there through a forwarder       each pod: a veth with a /32 route (CNI ptp)
    on 10.213.N.1 (the API server)          pods 10.213.N.10-250

The control plane listens on loopback only; from the node it is reached at 10.213.N.1, where a
forwarder (socat) passes the API server's port on to 127.0.0.1. Pods are attached point-to-point (CNI
`ptp`), so all their traffic is routed through the namespace's netfilter hooks (no bridge, hence no
br_netfilter) and Services and policies apply to pod-to-pod traffic on the node too."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from deploy.cluster import procs
from deploy.errors import ClusterError

CNI_BIN = Path("/usr/lib/cni")
NETNS_DIR = Path("/run/netns")
UPLINK = "eth0"  # the node's side of the veth pair, inside its namespace


def cluster_index(name: str) -> int:
    """A small number per cluster name: its addresses, interface and namespace never meet another's."""
    return 20 + int(hashlib.sha256(name.encode()).hexdigest(), 16) % 200


@dataclass(frozen=True)
class NodeNetwork:
    cluster: str

    @property
    def index(self) -> int:
        return cluster_index(self.cluster)

    @property
    def netns(self) -> str:
        return f"kaiml-{self.cluster}"

    @property
    def host_if(self) -> str:
        return f"kaiml{self.index}"

    @property
    def prefix(self) -> str:
        return f"10.213.{self.index}."

    @property
    def pod_cidr(self) -> str:
        return self.prefix + "0/24"

    @property
    def host_ip(self) -> str:
        """The host's end of the link: where the node reaches the control plane and the registry."""
        return self.prefix + "1"

    @property
    def node_ip(self) -> str:
        """The node's InternalIP, inside its namespace."""
        return self.prefix + "2"

    def enter(self) -> list[str]:
        """The command prefix that runs a program in the node's namespace (network only: it shares
        this machine's mounts, so the kubelet's volume mounts are containerd's too)."""
        return ["nsenter", f"--net={NETNS_DIR / self.netns}", "--"]

    def exists(self) -> bool:
        return (NETNS_DIR / self.netns).exists()

    def up(self) -> None:
        """The namespace, its link to the host, addresses, routes and forwarding (idempotent)."""
        link = Path(f"/sys/class/net/{self.host_if}")
        if link.exists() and (not (NETNS_DIR / self.netns).exists() or (link / "bridge").exists()):
            # Names and addresses come from a hash of the cluster's name: another cluster has this one.
            raise ClusterError(
                f"the real node of local cluster {self.cluster!r} needs the interface {self.host_if} and the "
                f"addresses {self.pod_cidr}, and another local cluster on this machine holds them. Take that one "
                f"down, or give this cluster another name (--name)."
            )
        if not (NETNS_DIR / self.netns).exists():
            procs.run(["ip", "netns", "add", self.netns])
        ns = ["ip", "-n", self.netns]
        if not Path(f"/sys/class/net/{self.host_if}").exists():
            procs.run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", UPLINK, "netns", self.netns])
        procs.run(["ip", "addr", "replace", f"{self.host_ip}/30", "dev", self.host_if])
        procs.run(["ip", "link", "set", self.host_if, "up"])
        procs.run([*ns, "addr", "replace", f"{self.node_ip}/30", "dev", UPLINK])
        procs.run([*ns, "link", "set", UPLINK, "up"])
        procs.run([*ns, "link", "set", "lo", "up"])
        procs.run([*ns, "route", "replace", "default", "via", self.host_ip])
        # The pods are behind the node: the host reaches them (and answers them) through it.
        procs.run(["ip", "route", "replace", self.pod_cidr, "via", self.node_ip, "dev", self.host_if])
        # Forwarding in the node's namespace only (a per-namespace setting; the host's stays as it is).
        procs.run([*self.enter(), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])

    def down(self) -> None:
        """The namespace goes with everything in it (rules, ipsets, the pods' links); the host's end
        of the veth goes with its peer, its route with it."""
        if not self.exists():
            return  # an interface of this name without our namespace is another cluster's
        procs.run(["ip", "netns", "delete", self.netns], check=False)
        link = Path(f"/sys/class/net/{self.host_if}")
        if link.exists() and not (link / "bridge").exists():  # (a process that still held the namespace)
            procs.run(["ip", "link", "delete", self.host_if], check=False)

    def write_cni(self, conf_dir: Path, bin_dir: Path, ipam_dir: Path) -> None:
        """containerd (in the host's namespace) runs the CNI plugins from `bin_dir`: there `ptp` runs
        the Debian plugin inside the node's namespace, so each pod's host-side link is the node's."""
        bin_dir.mkdir(parents=True, exist_ok=True)
        wrapper = bin_dir / "ptp"
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(self.enter())} {CNI_BIN / "ptp"} "$@"\n')
        wrapper.chmod(0o755)
        for plugin in ("host-local", "loopback"):
            link = bin_dir / plugin
            if not link.is_symlink():
                link.symlink_to(CNI_BIN / plugin)
        conf_dir.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": f"kaiml-{self.cluster}",
            "plugins": [
                {
                    "type": "ptp",
                    # No masquerading: pods reach this machine only, never beyond it.
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(ipam_dir),
                        "ranges": [
                            [
                                {
                                    "subnet": self.pod_cidr,
                                    "rangeStart": self.prefix + "10",
                                    "rangeEnd": self.prefix + "250",
                                    "gateway": self.node_ip,
                                }
                            ]
                        ],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                }
            ],
        }
        (conf_dir / "10-kaiml.conflist").write_text(json.dumps(conflist, indent=2))
