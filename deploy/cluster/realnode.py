"""One real node beside the kwok fake nodes: a kubelet and kube-proxy (built from the control plane's
own Kubernetes source), Debian's containerd and runc, and the CNI ptp plugin, so that pods pinned to
it run as real containers whose logs come from the container runtime and reach each other through
ClusterIP Services.

Everything it creates is its own and is removed by `down()`: a cgroup subtree (`/kaiml-<name>` in
every hierarchy; the host's cgroup mounts are left as they are), the node's network namespace with
its veth link (deploy/cluster/nodenet.py: every iptables rule of the node lives in there), the pods'
network namespaces, the mounts under its folders, and its processes."""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.cluster import hostcheck, nodeaddons, procs
from deploy.cluster.nodeaddons import CLUSTER_DOMAIN, DNS_SERVICE_IP, SERVICE_CIDR
from deploy.cluster.nodenet import NETNS_DIR, NodeNetwork
from deploy.cluster.registry import LocalRegistry
from deploy.errors import ClusterError
from deploy.paths import state_dir
from deploy.platform.nodepools import NodePool

Log = Callable[[str], None]
# Every real node carries this label, so that a sweep (or a test) can select it.
REAL_LABEL = "kai-ml.io/real-node"
# The pool `cluster up` puts a new cluster's real node in (values/dev.yaml: REAL_LABEL and a taint of it).
DEFAULT_REAL_POOL = "real-cpu"
CNI_CACHE = Path("/var/lib/cni/results")
COMPONENTS = ("registry", "containerd", "apiforward", "kubelet", "kube-proxy", "kube-router")


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
    def net(self) -> NodeNetwork:
        return NodeNetwork(self.cluster)

    @property
    def subnet_prefix(self) -> str:
        return self.net.prefix

    @property
    def node_ip(self) -> str:
        return self.net.node_ip

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
        return self.dir.exists() or self.run_dir.exists() or self.net.exists()

    def pool_name(self) -> str | None:
        """The pool of the node `up()` made (None: none was made); its node is named `<pool>-real`."""
        info = self.info()
        node = str(info.get("node", ""))
        return info.get("pool") or (node.removesuffix("-real") if node.endswith("-real") else None)

    def processes(self) -> dict[str, int]:
        """The running processes of the node, by component."""
        found = {}
        for name in ("registry/registry", *COMPONENTS[1:]):
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

        bins = tools.ensure(("kubelet", "kube-proxy", "kube-router", "coredns", "kubectl"))
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
        self.net.up()
        self.net.write_cni(self.dir / "cni", self.dir / "cni-bin", self.dir / "cni-ipam")
        self._cgroups()
        self._start_containerd(registry, sandbox)
        node = f"{self.pool.name}-real"
        server = self._start_apiforward(kubeconfig)
        self._credentials("kubelet", f"system:node:{node}", "system:nodes", server, pki)
        # kube-proxy's identity: the built-in system:node-proxier ClusterRole is bound to this user.
        self._credentials("kube-proxy", "system:kube-proxy", None, server, pki)
        self._credentials("kube-router", nodeaddons.KUBE_ROUTER_USER, None, server, pki)
        self._credentials("coredns", nodeaddons.COREDNS_USER, None, server, pki)
        dns_image = nodeaddons.coredns_image(registry, bins["coredns"], tools_version("COREDNS_VERSION"), log)
        addons = [
            *nodeaddons.rbac(),
            *nodeaddons.cluster_dns(dns_image, self.dir / "coredns.kubeconfig", {REAL_LABEL: "true"}),
        ]
        _apply(bins["kubectl"], kubeconfig, addons)
        self._start_kubelet(node, bins["kubelet"])
        self._start_kube_proxy(node, bins["kube-proxy"])
        info = {"node": node, "pool": self.pool.name, "ip": self.node_ip, "registry": registry, "sandboxImage": sandbox}
        self.info_file.write_text(json.dumps(info, indent=2) + "\n")
        log(f"real node {node} ({self.node_ip}) started in {time.monotonic() - started:.1f}s")
        return info

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
  # The kubelet, in the node's namespace, proxies exec/attach/port-forward to this address.
  stream_server_address = "{self.net.host_ip}"
  stream_server_port = "0"
  disable_apparmor = {"false" if _apparmor_usable() else "true"}

[{cri}.cni]
  bin_dir = "{self.dir / "cni-bin"}"
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

    def _start_apiforward(self, kubeconfig: Path) -> str:
        """The API server listens on loopback; the node reaches it at the host's end of its link,
        through a forwarder there. Returns the URL the node's components use."""
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        port = server.rsplit(":", 1)[1]
        procs.start(
            ["socat", f"TCP-LISTEN:{port},bind={self.net.host_ip},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
            self.dir / "apiforward.pid",
            self.dir / "apiforward.log",
        )
        return f"https://{self.net.host_ip}:{port}"

    def _credentials(self, name: str, user: str, group: str | None, server: str, pki: Path) -> None:
        """A client certificate for `user` (in `group`), signed by the cluster's CA, and a kubeconfig
        `<name>.kubeconfig` for the API server at `server`. The kubelet's (system:node:<name>, group
        system:nodes) lets the Node authorizer limit it to its own node and pods."""
        key, cert = self.dir / "pki" / f"{name}.key", self.dir / "pki" / f"{name}.crt"
        key.parent.mkdir(exist_ok=True)
        shutil.copyfile(pki / "ca.crt", _ca(self.dir))
        csr = key.with_suffix(".csr")
        subject = (f"/O={group}" if group else "") + f"/CN={user}"
        procs.run(
            ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-subj", subject, "-out", str(csr)]
        )  # fmt: skip
        serial = str(int.from_bytes(os.urandom(8), "big"))
        procs.run(
            ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
             "-set_serial", serial, "-days", "365", "-out", str(cert)]
        )  # fmt: skip
        cluster = {
            "server": server,
            "certificate-authority": str(pki / "ca.crt"),
            # The serving certificate names localhost (and 127.0.0.1), not the forwarder's address.
            "tls-server-name": "localhost",
        }
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": cluster}],
            "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
            "contexts": [{"name": "node", "context": {"cluster": "local", "user": user}}],
            "current-context": "node",
        }
        (self.dir / f"{name}.kubeconfig").write_text(yaml.safe_dump(config))

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
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "rotateCertificates": False,
        }
        (self.dir / "kubelet.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        labels = {**self.pool.labels, REAL_LABEL: "true"}
        cmd = [
            *self.net.enter(),
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

    def _start_kube_proxy(self, node: str, kube_proxy: Path) -> None:
        """ClusterIP Services for the node's pods: kube-proxy in iptables mode inside the node's
        namespace, so its chains are this node's alone. It leaves every machine-wide setting as it is:
        no conntrack table sizing, no route_localnet (no localhost NodePorts), no oom_score_adj."""
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(self.dir / "kube-proxy.kubeconfig")},
            "hostnameOverride": node,
            "clusterCIDR": self.net.pod_cidr,
            "bindAddress": self.node_ip,
            "healthzBindAddress": f"{self.node_ip}:10256",
            "metricsBindAddress": f"{self.node_ip}:10249",
            "oomScoreAdj": 0,
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False},
            "nodePortAddresses": ["primary"],
        }
        (self.dir / "kube-proxy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = [*self.net.enter(), str(kube_proxy), f"--config={self.dir / 'kube-proxy.yaml'}", "--v=1"]
        procs.start(cmd, self.dir / "kube-proxy.pid", self.dir / "kube-proxy.log")

    def _start_kube_router(self, node: str, kube_router: Path) -> None:
        """NetworkPolicy for the node's pods: kube-router's firewall controller alone (no routing, no
        service proxy: kube-proxy serves Services), with its chains and ipsets in the node's namespace."""
        cmd = [
            *self.net.enter(),
            str(kube_router),
            f"--kubeconfig={self.dir / 'kube-router.kubeconfig'}",
            f"--hostname-override={node}",
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            "--run-loadbalancer=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--health-port=0",
            "--v=1",
        ]
        procs.start(cmd, self.dir / "kube-router.pid", self.dir / "kube-router.log")

    def wait_ready(self, core: Any, log: Log = print, timeout: float = 120) -> None:
        """Until the kubelet has registered the node and reports it Ready (`core`: a CoreV1Api), then
        start the policy engine and wait for the cluster DNS pod."""
        from kubernetes.client.rest import ApiException

        from deploy import tools

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
                    break
            except ApiException as err:
                if err.status != 404:
                    raise
            time.sleep(0.5)
        else:
            raise ClusterError(
                f"the real node {name} is not Ready after {timeout:.0f}s; the end of {self.dir / 'kubelet.log'}:\n"
                + procs.tail(self.dir / "kubelet.log")
            )
        if procs.pid_alive(self.dir / "kubelet.pid"):
            # It identifies its node once, when it starts: only after the kubelet has registered it.
            if not procs.pid_alive(self.dir / "kube-router.pid"):
                self._start_kube_router(name, tools.tool("kube-router"))
        else:
            raise ClusterError(f"the real node's kubelet exited; the end of {self.dir / 'kubelet.log'}:\n"
                               + procs.tail(self.dir / "kubelet.log"))  # fmt: skip
        self._wait(lambda: _dns_ready(core), "ready cluster DNS pod", self.dir / "kubelet.log", timeout)
        log(f"cluster DNS ready on the real node after {time.monotonic() - started:.1f}s")

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
        if not self.exists() and not self._cgroup_dirs():
            return
        procs.stop_pidfile(self.dir / "kubelet.pid")
        self._kill_containers()
        for component in ("kube-router", "containerd", "kube-proxy", "apiforward"):
            procs.stop_pidfile(self.dir / f"{component}.pid")
        # Each container's shim outlives containerd by design; ours are started with our socket.
        procs.stop(procs.with_arg(str(self.socket)), grace=2)
        self.registry.stop()
        self._remove_netns()
        self.net.down()
        for result in CNI_CACHE.glob(f"kaiml-{self.cluster}-*"):
            result.unlink(missing_ok=True)
        _unmount_under(self.dir, self.run_dir)
        self._remove_cgroups()
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
            if ns.name == self.net.netns:
                continue
            addrs = procs.run(["ip", "-n", ns.name, "-4", "-o", "addr"], check=False)
            if f" {self.subnet_prefix}" in addrs:
                procs.run(["ip", "netns", "delete", ns.name], check=False)


def _dns_ready(core: Any) -> bool:
    pods = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
    return any(c.type == "Ready" and c.status == "True" for p in pods for c in (p.status.conditions or []))


def _apply(kubectl: Path, kubeconfig: Path, docs: list[dict[str, Any]]) -> None:
    """Create or update these objects (kubectl reads them on stdin: the Secret never touches a disk)."""
    done = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
        input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ClusterError(f"the real node's add-ons (cluster DNS, RBAC) were refused: {done.stderr.strip()}")


def tools_version(key: str) -> str:
    from deploy.paths import REPO

    for line in (REPO / "tools" / "versions.env").read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip()
    raise ClusterError(f"internal: {key} is not in tools/versions.env")


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
