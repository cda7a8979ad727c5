"""One real node beside the kwok fake nodes: a kubelet (built from the control plane's own
Kubernetes source), Debian's containerd and runc, and the CNI bridge plugin, so that pods pinned to
it run as real containers whose logs come from the container runtime.

Everything it creates is its own and is removed by `down()`: a cgroup subtree (`/kaiml-<name>` in
every hierarchy; the host's cgroup mounts are left as they are), a Linux bridge whose address is the
node's IP, the pods' network namespaces, the mounts under its folders, and its processes."""

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.cluster import hostcheck, procs
from deploy.cluster.registry import LocalRegistry
from deploy.errors import ClusterError
from deploy.paths import state_dir
from deploy.platform.nodepools import NodePool

Log = Callable[[str], None]
# Every real node carries this label, so that a sweep (or a test) can select it.
REAL_LABEL = "kai-ml.io/real-node"
CNI_BIN = Path("/usr/lib/cni")
NETNS_DIR = Path("/run/netns")
CNI_CACHE = Path("/var/lib/cni/results")
COMPONENTS = ("registry", "containerd", "coredns", "kubelet")
CLUSTER_DOMAIN = "cluster.local"


def _index(name: str) -> int:
    """A small number per cluster name: its bridge, subnet and cgroup root never meet another's."""
    return 20 + int(hashlib.sha256(name.encode()).hexdigest(), 16) % 200


@dataclass
class RealNode:
    cluster: str  # the local cluster's name
    pool: NodePool | None = None  # the pool whose labels and taints the node carries (needed by up())

    # -- where things are
    @property
    def dir(self) -> Path:
        return state_dir() / "realnode" / self.cluster

    @property
    def run_dir(self) -> Path:
        """Sockets and containerd's state: short paths (a unix socket path has at most 107 bytes)."""
        return Path("/run/kaiml") / self.cluster

    @property
    def registry(self) -> LocalRegistry:
        from deploy.images.build import cache_dir

        return LocalRegistry(self.dir / "registry", cache_dir() / "registry")

    @property
    def bridge(self) -> str:
        return f"kaiml{_index(self.cluster)}"

    @property
    def subnet_prefix(self) -> str:
        return f"10.213.{_index(self.cluster)}."

    @property
    def node_ip(self) -> str:
        return self.subnet_prefix + "1"

    @property
    def cgroup_root(self) -> str:
        return f"/kaiml-{self.cluster}"

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def info_file(self) -> Path:
        return self.dir / "node.json"

    def info(self) -> dict[str, Any]:
        """What `up()` recorded: node name, IP, registry, sandbox image (empty when not up)."""
        try:
            return json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return {}

    def exists(self) -> bool:
        return self.dir.exists() or self.run_dir.exists()

    def processes(self) -> dict[str, int]:
        """The running processes of the node, by component."""
        found = {}
        for name in ("registry/registry", "containerd", "coredns", "kubelet"):
            pid = procs.read_pid(self.dir / f"{name}.pid")
            if pid is not None and procs.alive(pid):
                found[Path(name).name] = pid
        return found

    # -- up
    def up(self, kubeconfig: Path, pki: Path, log: Log = print) -> dict[str, Any]:
        """Start the registry, containerd and the kubelet (reusing running ones) and return the
        node's info once the node is registered; the caller waits for Ready."""
        if self.pool is None:
            raise ClusterError("internal: RealNode.up() needs the node pool the real node joins.")
        hostcheck.require_host()
        from deploy import tools
        from deploy.images import build as images

        bins = tools.ensure(("kubelet", "coredns"))
        if self.processes().keys() >= set(COMPONENTS) and self.info():
            return self.info()
        if self.exists():
            log("removing the stale real node first")
            self.down()
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        registry = self.registry.start()
        log(f"local registry on {registry}")
        sandbox = images.push_sandbox(registry, log=log)
        self._network()
        self._cgroups()
        self._start_containerd(registry, sandbox)
        node = f"{self.pool.name}-real"
        self._node_credentials(node, kubeconfig, pki)
        self._start_coredns(bins["coredns"], kubeconfig)
        self._start_kubelet(node, bins["kubelet"])
        info = {"node": node, "ip": self.node_ip, "registry": registry, "sandboxImage": sandbox}
        self.info_file.write_text(json.dumps(info, indent=2) + "\n")
        log(f"real node {node} ({self.node_ip}) started in {time.monotonic() - started:.1f}s")
        return info

    def _network(self) -> None:
        """A bridge of our own, with the node's IP: the kubelet refuses a loopback node IP, and the
        CNI bridge plugin attaches the pods to this same bridge."""
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            procs.run(["ip", "link", "add", self.bridge, "type", "bridge"])
        addrs = procs.run(["ip", "-4", "-o", "addr", "show", "dev", self.bridge])
        if f"{self.node_ip}/24" not in addrs:
            procs.run(["ip", "addr", "add", f"{self.node_ip}/24", "dev", self.bridge])
        procs.run(["ip", "link", "set", self.bridge, "up"])
        cni = self.dir / "cni"
        cni.mkdir(exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": f"kaiml-{self.cluster}",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    # No masquerading: pods reach this machine only, never beyond it.
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.dir / "cni-ipam"),
                        "ranges": [
                            [
                                {
                                    "subnet": self.subnet_prefix + "0/24",
                                    "rangeStart": self.subnet_prefix + "10",
                                    "rangeEnd": self.subnet_prefix + "250",
                                    "gateway": self.node_ip,
                                }
                            ]
                        ],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
            ],
        }
        (cni / "10-kaiml.conflist").write_text(json.dumps(conflist, indent=2))

    def _cgroups(self) -> None:
        """The kubelet's cgroup root, in every v1 hierarchy (it refuses to start when one is
        missing), with the parent's cpus and memory nodes (a new cpuset has none)."""
        if hostcheck.cgroup_version() == 2:
            (hostcheck.CGROUP_FS / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
            return
        for controller in hostcheck.CGROUP_V1:
            path = hostcheck.CGROUP_FS / controller / self.cgroup_root.lstrip("/")
            path.mkdir(exist_ok=True)
            if controller == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (path / knob).write_text((path.parent / knob).read_text())

    def _start_containerd(self, registry: str, sandbox: str) -> None:
        certs = self.dir / "certs.d" / registry
        certs.mkdir(parents=True, exist_ok=True)
        # The local registry speaks plain HTTP on loopback.
        (certs / "hosts.toml").write_text(
            f'server = "http://{registry}"\n\n[host."http://{registry}"]\n  capabilities = ["pull", "resolve"]\n'
        )
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{self.dir / "containerd"}"
state = "{self.run_dir / "containerd"}"

[grpc]
  address = "{self.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{self.dir / "opt"}"

[{cri}]
  sandbox_image = "{sandbox}"
  # This host refuses a negative oom_score_adj; without this runc fails every pod sandbox.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = {"false" if _apparmor_usable() else "true"}

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{self.dir / "cni"}"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.registry]
  config_path = "{self.dir / "certs.d"}"
"""
        (self.dir / "containerd.toml").write_text(config)
        procs.start(
            ["containerd", "--config", str(self.dir / "containerd.toml")],
            self.dir / "containerd.pid",
            self.dir / "containerd.log",
        )
        self._wait(lambda: self.socket.exists(), "containerd's socket", self.dir / "containerd.log", 30)

    def _node_credentials(self, node: str, kubeconfig: Path, pki: Path) -> None:
        """A client certificate for the node (system:node:<name>, group system:nodes), signed by the
        cluster's CA, so that the Node authorizer limits the kubelet to its own node and pods."""
        key, cert = self.dir / "pki" / "node.key", self.dir / "pki" / "node.crt"
        key.parent.mkdir(exist_ok=True)
        shutil.copyfile(pki / "ca.crt", _ca(self.dir))
        csr = key.with_suffix(".csr")
        procs.run(
            [
                "openssl",
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-subj",
                f"/O=system:nodes/CN=system:node:{node}",
                "-out",
                str(csr),
            ]
        )
        serial = str(int.from_bytes(os.urandom(8), "big"))
        procs.run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr),
                "-CA",
                str(pki / "ca.crt"),
                "-CAkey",
                str(pki / "ca.key"),
                "-set_serial",
                serial,
                "-days",
                "365",
                "-out",
                str(cert),
            ]
        )
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "local", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}
            ],
            "users": [{"name": node, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
            "contexts": [{"name": "node", "context": {"cluster": "local", "user": node}}],
            "current-context": "node",
        }
        (self.dir / "kubelet.kubeconfig").write_text(yaml.safe_dump(config))

    def _start_coredns(self, coredns: Path, kubeconfig: Path) -> None:
        """Cluster DNS for the node's pods, as a process of the node on its IP: Services and headless
        Services (the ranks of a multi-node job) by name. Nothing is forwarded beyond the cluster."""
        corefile = self.dir / "Corefile"
        corefile.write_text(
            f""".:53 {{
    bind {self.node_ip}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""
        )
        procs.start([str(coredns), "-conf", str(corefile)], self.dir / "coredns.pid", self.dir / "coredns.log")

    def _start_kubelet(self, node: str, kubelet: Path) -> None:
        assert self.pool is not None
        pki = self.dir / "pki"
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # Hosts with cgroup v1 (this project's machines) are refused by default since 1.35.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",  # no systemd as PID 1
            "cgroupRoot": self.cgroup_root,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": self.node_ip,
            "healthzBindAddress": self.node_ip,
            "readOnlyPort": 0,
            "podLogsDir": str(self.dir / "pod-logs"),
            # Requests from the API server (logs, exec) carry its kubelet client certificate, signed by
            # the cluster CA; everything else is checked with TokenReview/SubjectAccessReview.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(_ca(self.dir))},
            },
            "authorization": {"mode": "Webhook"},
            "registerWithTaints": [{k: t[k] for k in ("key", "value", "effect") if k in t} for t in self.pool.taints],
            "failSwapOn": False,
            "serializeImagePulls": False,
            # A shared developer machine: do not evict pods because its disk is fuller than a node's.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            "maxPods": 110,
            "clusterDNS": [self.node_ip],
            "clusterDomain": CLUSTER_DOMAIN,
            "rotateCertificates": False,
        }
        (self.dir / "kubelet.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        labels = {**self.pool.labels, REAL_LABEL: "true"}
        cmd = [
            str(kubelet),
            f"--config={self.dir / 'kubelet.yaml'}",
            f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
            f"--root-dir={self.dir / 'kubelet'}",
            f"--cert-dir={pki}",
            f"--hostname-override={node}",
            f"--node-ip={self.node_ip}",
            "--node-labels=" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "--v=1",
        ]
        procs.start(cmd, self.dir / "kubelet.pid", self.dir / "kubelet.log")

    def wait_ready(self, core: Any, log: Log = print, timeout: float = 120) -> None:
        """Until the kubelet has registered the node and reports it Ready (`core`: a CoreV1Api)."""
        from kubernetes.client.rest import ApiException

        name, started = self.info()["node"], time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if not procs.pid_alive(self.dir / "kubelet.pid"):
                break
            try:
                node = core.read_node(name)
                conditions = {c.type: c for c in node.status.conditions or []}
                if "Ready" in conditions and conditions["Ready"].status == "True":
                    log(f"real node {name} Ready after {time.monotonic() - started:.1f}s")
                    return
            except ApiException as err:
                if err.status != 404:
                    raise
            time.sleep(0.5)
        raise ClusterError(
            f"the real node {name} is not Ready after {timeout:.0f}s; the end of {self.dir / 'kubelet.log'}:\n"
            + procs.tail(self.dir / "kubelet.log")
        )

    def _wait(self, ready: Callable[[], bool], what: str, logfile: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.2)
        raise ClusterError(
            f"the real node: no {what} after {timeout:.0f}s; the end of {logfile}:\n{procs.tail(logfile)}"
        )

    # -- down
    def down(self) -> None:
        """Stop the node and remove everything it made; a no-op when there is none."""
        if not self.exists() and not Path(f"/sys/class/net/{self.bridge}").exists() and not self._cgroup_dirs():
            return
        procs.stop_pidfile(self.dir / "kubelet.pid")
        self._kill_containers()
        procs.stop_pidfile(self.dir / "containerd.pid")
        procs.stop_pidfile(self.dir / "coredns.pid")
        # Each container's shim outlives containerd by design; ours are started with our socket.
        procs.stop(procs.with_arg(str(self.socket)), grace=2)
        self.registry.stop()
        self._remove_netns()
        if Path(f"/sys/class/net/{self.bridge}").exists():
            procs.run(["ip", "link", "delete", self.bridge], check=False)
        for result in CNI_CACHE.glob(f"kaiml-{self.cluster}-*"):
            result.unlink(missing_ok=True)
        _unmount_under(self.dir, self.run_dir)
        self._remove_cgroups()
        if not _kubelets_running():
            _remove_kubelet_chains()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def _cgroup_dirs(self) -> list[Path]:
        """Our cgroup folders in every mounted hierarchy, deepest first."""
        root = self.cgroup_root.lstrip("/")
        tops = [p / root for p in hostcheck.CGROUP_FS.iterdir() if (p / root).is_dir()]
        if (hostcheck.CGROUP_FS / root).is_dir():
            tops.append(hostcheck.CGROUP_FS / root)
        found = [d for top in tops for d, _, _ in os.walk(top)]
        return sorted({Path(d) for d in found}, key=lambda p: len(p.parts), reverse=True)

    def _kill_containers(self) -> None:
        """Every process in our cgroup subtree (the pods' containers) is killed; the kubelet is
        stopped first, so nothing starts new ones."""
        for _ in range(20):
            pids = set()
            for d in self._cgroup_dirs():
                try:
                    pids |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
                except OSError:
                    continue
            if not pids:
                return
            procs.stop(sorted(pids), grace=0)
            time.sleep(0.1)

    def _remove_cgroups(self) -> None:
        for d in self._cgroup_dirs():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy for a moment after its last process exits
                    time.sleep(0.1)

    def _remove_netns(self) -> None:
        """The pods' network namespaces: those with an address in our subnet."""
        if not NETNS_DIR.is_dir():
            return
        for ns in NETNS_DIR.iterdir():
            addrs = procs.run(["ip", "-n", ns.name, "-4", "-o", "addr"], check=False)
            if f" {self.subnet_prefix}" in addrs:
                procs.run(["ip", "netns", "delete", ns.name], check=False)


def _kubelets_running() -> bool:
    """Whether any kubelet still runs here (another cluster's real node), whose chains must stay."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "kubelet" and procs.alive(int(comm.parent.name)):
                return True  # (a stopped kubelet waiting to be reaped is gone)
        except OSError:
            continue
    return False


def _remove_kubelet_chains() -> None:
    """The iptables chains every kubelet makes (its canaries, and KUBE-FIREWALL, which drops packets
    to 127.0.0.0/8 from other sources): the last real node to go removes them."""
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for chain in ("INPUT", "OUTPUT"):
            procs.run([tool, "-t", "filter", "-D", chain, "-j", "KUBE-FIREWALL"], check=False)
        for table, chain in (
            ("filter", "KUBE-FIREWALL"),
            *((t, "KUBE-KUBELET-CANARY") for t in ("mangle", "filter", "nat")),
            ("mangle", "KUBE-IPTABLES-HINT"),
        ):
            procs.run([tool, "-t", table, "-F", chain], check=False)
            procs.run([tool, "-t", table, "-X", chain], check=False)


def _ca(node_dir: Path) -> Path:
    return node_dir / "pki" / "cluster-ca.crt"


def _apparmor_usable() -> bool:
    enabled = Path("/sys/module/apparmor/parameters/enabled")
    return enabled.exists() and enabled.read_text().strip() == "Y" and shutil.which("apparmor_parser") is not None


def _unmount_under(*roots: Path) -> None:
    """Unmount everything mounted below these folders (pod volumes, container root filesystems,
    sandbox shm), deepest first."""
    prefixes = tuple(str(r.resolve()) + "/" for r in roots if r.exists())
    if not prefixes:
        return
    for _ in range(3):
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefixes):
                points.append(point)
        if not points:
            return
        for point in sorted(set(points), key=len, reverse=True):
            if procs.run(["umount", point], check=False, timeout=30) == "" and _mounted(point):
                procs.run(["umount", "-l", point], check=False, timeout=30)


def _mounted(point: str) -> bool:
    return any(line.split()[4] == point for line in Path("/proc/self/mountinfo").read_text().splitlines())
