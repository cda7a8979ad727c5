"""What the real node's cluster runs as Kubernetes objects, as a real cluster's add-ons do: cluster DNS
(CoreDNS in a pod of kube-system labelled `k8s-app: kube-dns`, behind the `kube-dns` Service, so that
the charts' NetworkPolicies, which allow DNS to exactly those pods, hold for real) and the RBAC of the
node's own agents (kube-router's policy controller, CoreDNS), each with a client certificate of its own."""

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

Log = Callable[[str], None]
CLUSTER_DOMAIN = "cluster.local"
# The local control plane's Services take their addresses from kube-apiserver's default range,
# 10.0.0.0/24 (`kubernetes` is 10.0.0.1); kube-dns has a fixed one there, as kubeadm's 10.96.0.10.
SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
DNS_SERVICE_IP = "10.0.0.10"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53
READY_PORT = 8181
COREDNS_USER = "system:kaiml:coredns"
KUBE_ROUTER_USER = "system:kaiml:kube-router"
_READ = ["get", "list", "watch"]


def coredns_image(registry: str, coredns: Path, version: str, log: Log) -> str:
    """A scratch image holding the CoreDNS binary built here (static), pushed to the node's registry."""
    from deploy.images import build as images

    ref = f"kaiml/coredns:{version}"
    if not images.image_exists(ref):
        log(f"building the CoreDNS image {ref}")
        ctr = images.buildah("from", "scratch").strip()
        try:
            images.buildah("copy", ctr, str(coredns), "/coredns")
            images.buildah("config", "--entrypoint", '["/coredns", "-conf", "/etc/coredns/Corefile"]',
                           "--user", "65532:65532", ctr)  # fmt: skip
            images.buildah("commit", "--quiet", ctr, ref)
        finally:
            images.buildah("rm", ctr)
    target = f"{registry}/{ref}"
    images.push(ref, target)
    return target


def _cluster_role(name: str, user: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
    ]  # fmt: skip


def rbac() -> list[dict[str, Any]]:
    """Read-only access for the node's agents, to what each one watches."""
    return [
        *_cluster_role(
            "kaiml:kube-router",
            KUBE_ROUTER_USER,
            [
                {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
                 "verbs": _READ},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
            ],
        ),
        *_cluster_role(
            "kaiml:coredns",
            COREDNS_USER,
            [
                {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": _READ},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
            ],
        ),
    ]  # fmt: skip


def embedded_kubeconfig(kubeconfig: Path) -> str:
    """The kubeconfig with its certificate files inlined (for a Secret)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in config[section]:
            fields = entry[key]
            for field in ("certificate-authority", "client-certificate", "client-key"):
                if field in fields:
                    fields[f"{field}-data"] = base64.b64encode(Path(fields.pop(field)).read_bytes()).decode()
    return yaml.safe_dump(config)


def cluster_dns(image: str, kubeconfig: Path, node_selector: dict[str, str]) -> list[dict[str, Any]]:
    """CoreDNS in kube-system on the real node, under the restricted profile, and the kube-dns Service
    at the address every kubelet of the cluster hands its pods."""
    meta = {"namespace": "kube-system", "labels": DNS_LABELS}
    corefile = f""".:{DNS_PORT} {{
    errors
    ready :{READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig /etc/coredns/access/kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""
    container = {
        "name": "coredns",
        "image": image,
        "ports": [{"name": f"dns-{p.lower()}", "containerPort": DNS_PORT, "protocol": p} for p in ("UDP", "TCP")],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": READY_PORT}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/coredns", "readOnly": True},
            {"name": "access", "mountPath": "/etc/coredns/access", "readOnly": True},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_spec = {
        "nodeSelector": node_selector,
        "tolerations": [{"operator": "Exists"}],
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
            # Port 53 without a capability: a namespaced ("safe") sysctl of the pod's own network.
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": str(DNS_PORT)}],
        },
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": "coredns"}},
            {"name": "access", "secret": {"secretName": "coredns-access", "defaultMode": 0o440}},
        ],
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", **meta},
         "data": {"Corefile": corefile}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "coredns-access", **meta},
         "stringData": {"kubeconfig": embedded_kubeconfig(kubeconfig)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", **meta},
         "spec": {"replicas": 1, "selector": {"matchLabels": DNS_LABELS},
                  "template": {"metadata": {"labels": DNS_LABELS}, "spec": pod_spec}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", **meta},
         "spec": {"clusterIP": DNS_SERVICE_IP, "selector": DNS_LABELS,
                  "ports": [{"name": f"dns-{p.lower()}", "port": DNS_PORT, "protocol": p} for p in ("UDP", "TCP")]}},
    ]  # fmt: skip
