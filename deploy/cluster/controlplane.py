"""A real control plane on loopback: etcd, kube-apiserver (secure port, RBAC, default admission
plugins), kube-controller-manager, kube-scheduler and the kwok controller, started by kwokctl's
binary runtime from the project's own builds. Nothing is downloaded at run time."""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy import tools
from deploy.cluster import supervise
from deploy.cluster.fakenodes import KWOK_ANNOTATION, apply_nodes, fake_nodes
from deploy.cluster.hostcheck import require_host
from deploy.cluster.nodeaddons import KUBERNETES_SERVICE_IP
from deploy.cluster.nodenet import NodeNetwork
from deploy.cluster.procs import alive as _alive
from deploy.cluster.procs import stop as _stop
from deploy.cluster.realnode import RealNode
from deploy.errors import ClusterError
from deploy.paths import REPO, state_dir
from deploy.platform.nodepools import NodePool

DEFAULT_NAME = "kaiml"
STAGES = Path(__file__).with_name("stages.yaml")
# The controller manager's and scheduler's own request rate to the API server. Their defaults (20
# and 50 per second) are sized for small clusters and would make the Job controller, not the
# control plane, the limit of a benchmark fleet: a 1,000-pod sweep would wait 50 s on the client's
# rate limiter alone. Large clusters raise them the same way.
CLIENT_RATE = {"kube-api-qps": "200", "kube-api-burst": "400"}
Log = Callable[[str], None]
# kwokctl picks each port by counting down from 32767 to the first free one, so clusters created at
# the same time (parallel CI jobs, a test and a benchmark) pick the same ports and one component
# loses; ports the kernel hands out are spread over its ephemeral range instead.
PORT_OPTIONS = (
    "etcdPort", "etcdPeerPort", "kubeApiserverPort", "kubeControllerManagerPort", "kubeSchedulerPort",
    "kwokControllerPort",
)  # fmt: skip


def _versions() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / "tools" / "versions.env").read_text().splitlines())
    return {k.strip(): v.strip() for k, v in (p for p in pairs if len(p) == 2) if not k.startswith("#")}


@dataclass
class LocalCluster:
    name: str = DEFAULT_NAME
    # Extra kwok configuration documents (e.g. ClusterLogs: what `kubectl logs` returns for matching
    # pods), applied when the cluster is created.
    kwok_config: tuple[dict[str, Any], ...] = ()
    # The node pool whose labels and taints a real node (kubelet + containerd, deploy/cluster/realnode.py)
    # carries beside the fake nodes; None: fake nodes only.
    real_node_pool: str | None = None

    @property
    def workdir(self) -> Path:
        return state_dir() / "kwok"

    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.cluster_dir / "kubeconfig.yaml"

    @property
    def _unused_kubeconfig(self) -> Path:
        """kwokctl insists on a kubeconfig to add the cluster's context to (and remove it from): a
        path of our own keeps it away from the user's ~/.kube/config."""
        return self.workdir / f"{self.name}.unused-kubeconfig.yaml"

    def exists(self) -> bool:
        return self.kubeconfig.exists()

    def _kwokctl(self, *args: str, capture: bool = False, timeout: float | None = None) -> str:
        env = {**os.environ, "KWOK_WORKDIR": str(self.workdir)}
        cmd = [str(tools.tool("kwokctl")), "--name", self.name, *args]
        try:
            done = subprocess.run(cmd, env=env, text=True, capture_output=capture, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"`kwokctl {' '.join(args)}` did not finish within {timeout:.0f}s.") from None
        if done.returncode != 0:
            detail = (done.stderr or "").strip()[-2000:] if capture else "see the output above"
            raise ClusterError(f"`kwokctl {' '.join(args)}` failed (exit {done.returncode}): {detail}")
        return done.stdout or ""

    def _config_file(self, bins: dict[str, Path]) -> Path:
        v = _versions()
        options = {
            "runtime": "binary",
            "securePort": True,
            "kubeAuthorization": True,  # RBAC (and Node) authorization
            "kubeAdmission": True,  # keep kube-apiserver's default admission plugins
            "bindAddress": "127.0.0.1",
            "kubeVersion": v["KUBERNETES_VERSION"],
            "etcdVersion": v["ETCD_VERSION"].lstrip("v"),
            "kwokVersion": v["KWOK_VERSION"],
            "kubeApiserverBinary": str(bins["kube-apiserver"]),
            "kubeControllerManagerBinary": str(bins["kube-controller-manager"]),
            "kubeSchedulerBinary": str(bins["kube-scheduler"]),
            "kubectlBinary": str(bins["kubectl"]),
            "kwokControllerBinary": str(bins["kwok"]),
            "etcdBinary": str(bins["etcd"]),
            **_free_ports(PORT_OPTIONS),
        }
        if self.real_node_pool:
            # Pods on the real node reach the API server as in any cluster, at the `kubernetes` Service
            # (10.0.0.1): its endpoint is where the node reaches the control plane, and the serving
            # certificate names that Service's address too.
            options["kubeApiserverCertSANs"] = [KUBERNETES_SERVICE_IP, NodeNetwork(self.name).host_ip]
        doc = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
            "componentsPatches": [
                {"name": name, "extraArgs": [{"key": k, "value": v} for k, v in CLIENT_RATE.items()]}
                for name in ("kube-controller-manager", "kube-scheduler")
            ]
            + self._real_node_patches(),
        }
        path = self.workdir / f"{self.name}.kwokctl.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Our Stages replace kwok's defaults: the same, plus per-pod delays (see stages.yaml).
        extra = "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in self.kwok_config)
        path.write_text(yaml.safe_dump(doc, sort_keys=False) + "---\n" + STAGES.read_text() + extra)
        return path

    def _real_node_patches(self) -> list[dict[str, Any]]:
        """kwok manages only its own (annotated) nodes, so that it leaves a real node's pods to the
        kubelet; the API server reaches a kubelet at its InternalIP (kwok's nodes have only the Hostname
        `localhost`) with its admin certificate (signed by the cluster CA that the kubelet trusts), so
        `kubectl logs` works for real pods as for kwok's."""
        pki = self.cluster_dir / "pki"
        apiserver = {"advertise-address": NodeNetwork(self.name).host_ip} if self.real_node_pool else {}
        args = {
            "kube-apiserver": {
                **apiserver,
                "kubelet-client-certificate": str(pki / "admin.crt"),
                "kubelet-client-key": str(pki / "admin.key"),
                "kubelet-preferred-address-types": "InternalIP,Hostname",
            },
            "kwok-controller": {
                "manage-all-nodes": "false",
                "manage-nodes-with-annotation-selector": f"{KWOK_ANNOTATION}=fake",
            },
        }
        return [{"name": n, "extraArgs": [{"key": k, "value": v} for k, v in a.items()]} for n, a in args.items()]

    def real_node(self) -> RealNode:
        return RealNode(self.name)

    def up(self, pools: dict[str, NodePool], log: Log = print, build: bool = True) -> Path:
        """Start the cluster, or bring an existing one back from its data (every component that is
        not running started again, by its supervisor); create the pools' fake nodes, wait until it
        schedules; return the kubeconfig path. Never removes a cluster: only `down` does."""
        if self.real_node_pool:  # before anything starts: one paragraph for what cannot work
            if self.real_node_pool not in pools:
                raise ClusterError(
                    f"--real-node {self.real_node_pool}: the real node joins a node pool of the environment, "
                    f"and it defines none of that name (pools: {', '.join(sorted(pools))}). Name one with --real-node "
                    "POOL, or start the kwok fake nodes only with --no-real-node."
                )
            require_host()
        bins = tools.ensure(tools.CONTROL_PLANE, build=build)
        if self.exists():
            if stopped := self.stopped_components():
                log(f"local cluster {self.name!r}: {', '.join(stopped)} not running: restarting from its data")
        elif self.cluster_dir.exists():
            raise ClusterError(
                f"{self.cluster_dir} holds a local cluster {self.name!r} that was never completed (no kubeconfig): "
                f"remove it with `./deploy.sh cluster down --name {self.name}`, then start again."
            )
        else:
            self._create(bins, log)
        supervise.launch(self.cluster_dir)
        from kubernetes import client

        nodes = fake_nodes(pools)
        try:
            self.wait_ready(log, nodes=False)
            log(f"creating {len(nodes)} fake nodes from {len(pools)} node pools")
            apply_nodes(client.CoreV1Api(self.api_client()), nodes)
            if self.real_node_pool:
                real = RealNode(self.name, pools[self.real_node_pool])
                real.up(self.kubeconfig, self.cluster_dir / "pki", log)
                real.wait_ready(client.CoreV1Api(self.api_client()), log)
            self.wait_ready(log)
        except ClusterError as err:
            raise ClusterError(
                f"{err} Its components' logs are in {self.cluster_dir / 'logs'}; `./deploy.sh cluster status "
                f"--name {self.name}` lists them. Its data is kept: only `./deploy.sh cluster down --name {self.name}` "
                "removes it."
            ) from None
        return self.kubeconfig

    def _create(self, bins: dict[str, Path], log: Log) -> None:
        log(f"starting local control plane {self.name!r} (Kubernetes {_versions()['KUBERNETES_VERSION']})")
        cfg = self._config_file(bins)
        started = time.monotonic()
        try:
            # kwokctl's own log is JSON noise on success; it is shown when creation fails.
            self._kwokctl(
                "create",
                "cluster",
                "--config",
                str(cfg),
                "--kubeconfig",
                str(self._unused_kubeconfig),
                "--wait",
                "3m",
                capture=True,
            )
        except ClusterError:
            self.down()  # what this call half-created, never a cluster that was there before
            raise
        log(f"control plane answered after {time.monotonic() - started:.1f}s")

    def down(self) -> None:
        """Stop every process of the cluster and remove its state; a no-op when there is none."""
        self.real_node().down()
        if not self.cluster_dir.exists():
            return
        supervise.stop(self.cluster_dir)  # first: it would restart what is being stopped
        pids = self._pids()
        # A half-created or crashed cluster can confuse kwokctl; the pids below go regardless.
        with contextlib.suppress(ClusterError):
            self._kwokctl("delete", "cluster", "--kubeconfig", str(self._unused_kubeconfig), capture=True, timeout=120)
        _stop(list(pids.values()))
        shutil.rmtree(self.cluster_dir, ignore_errors=True)

    def _pids(self) -> dict[str, int]:
        pids = {}
        for pidfile in (self.cluster_dir / "pids").glob("*.pid"):
            try:
                pids[pidfile.stem] = int(pidfile.read_text().strip())
            except ValueError:
                continue
        return pids

    def api_client(self) -> Any:
        from kubernetes import config  # the kubernetes package takes a third of a second to import

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def healthy(self) -> bool:
        from kubernetes import client

        try:
            api_client = self.api_client()
            api_client.configuration.retries = 0  # one quick question, not three slow ones
            client.VersionApi(api_client).get_code(_request_timeout=3)
            return True
        except Exception:
            return False

    def wait_ready(self, log: Log = print, timeout: float = 180, nodes: bool = True) -> None:
        """Ready means: every component runs, the API answers, every fake node is Ready, and the
        controller manager has made the default ServiceAccount (without it no pod is admitted).
        With nodes=False: the API answers."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        core = client.CoreV1Api(self.api_client())
        deadline = time.monotonic() + timeout
        waiting_for = "the API server"
        while time.monotonic() < deadline:
            try:
                listed = core.list_node(_request_timeout=10).items
                if not nodes:
                    return
                not_ready = [n.metadata.name for n in listed if not _node_ready(n)]
                if stopped := self.stopped_components():
                    waiting_for = f"{', '.join(stopped)} to be restarted"
                elif not_ready:
                    waiting_for = f"{len(not_ready)} nodes to become Ready"
                else:
                    core.read_namespaced_service_account("default", "default", _request_timeout=10)
                    log(f"local cluster {self.name!r} is ready: {len(listed)} nodes")
                    return
            except ApiException as err:
                waiting_for = "the default ServiceAccount" if err.status == 404 else f"the API ({err.reason})"
            except Exception as err:  # connection refused while starting
                waiting_for = f"the API server ({type(err).__name__})"
            time.sleep(0.5)
        raise ClusterError(
            f"local cluster {self.name!r} not ready after {timeout:.0f}s: still waiting for {waiting_for}."
        )

    def component_states(self) -> dict[str, bool]:
        """Each component kwokctl made (etcd, kube-apiserver, ...) and the supervisor: running or not."""
        states = {c.name: supervise.running(c) for c in supervise.components(self.cluster_dir)}
        states["supervisor"] = supervise.supervisor_pid(self.cluster_dir) is not None
        return states

    def stopped_components(self) -> list[str]:
        return [name for name, up in self.component_states().items() if not up]

    def running(self) -> bool:
        """Whole: every component and the supervisor run, and the API answers."""
        return self.exists() and not self.stopped_components() and self.healthy()

    def memory_rss(self) -> dict[str, int]:
        """Resident memory (bytes) of each control-plane process, from /proc."""
        usage = {}
        pids = {**self._pids(), "supervisor": supervise.supervisor_pid(self.cluster_dir)}
        for component, pid in pids.items():
            if pid is None or not _alive(pid):
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    usage[component] = int(line.split()[1]) * 1024
        return usage


def _free_ports(names: tuple[str, ...]) -> dict[str, int]:
    """A port the kernel chose, free now, for each name (all held open together, so all differ)."""
    held = []
    try:
        for _ in names:
            sock = socket.socket()
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
        return {name: sock.getsockname()[1] for name, sock in zip(names, held, strict=True)}
    finally:
        for sock in held:
            sock.close()


def _node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


def cluster_logs(name: str, logs_file: Path, namespaces: list[str] | None = None) -> dict[str, Any]:
    """A kwok ClusterLogs document: `kubectl logs` of every pod (of these namespaces) returns the file.
    kwok selects pods by namespace and name only, never by label, and the first document that matches wins."""
    selector = {"matchNamespaces": namespaces} if namespaces else {}
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterLogs",
        "metadata": {"name": name},
        "spec": {"selector": selector, "logs": [{"logsFile": str(logs_file), "follow": False}]},
    }
