"""What the rendered manifests expect to find in the cluster, checked before anything is applied.

- Secrets that pods reference (envFrom, env valueFrom, secret volumes, projected volumes) and that
  no release of the run creates: the charts never create credentials from values, so such a Secret
  must exist, or the pods would sit in CreateContainerConfigError on a real cluster.
- Namespaces that the run's releases create but that already exist outside Helm: an operator who
  made a namespace first, to give the credentials Secret a home, would otherwise see the first deploy
  fail on Helm's ownership check. Such a namespace is adopted (Helm's ownership label and annotations
  added, nothing else touched); one owned by another release is left for Helm to refuse."""

from collections.abc import Callable, Iterator
from typing import Any

import yaml

from deploy.errors import PreflightError
from deploy.kube.reader import METADATA
from deploy.platform.values import FAST_LOADER

Ref = tuple[str, str]  # (namespace, name)


def documents(manifests: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(release, object) for every object of the rendered manifests."""
    for release, text in manifests.items():
        for doc in yaml.load_all(text, Loader=FAST_LOADER):
            if isinstance(doc, dict) and doc.get("kind"):
                yield release, doc


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") if isinstance(spec, dict) else None
    return (template or {}).get("spec") if isinstance(template, dict) else None


def secret_names(spec: dict[str, Any]) -> set[str]:
    """Names of the Secrets a pod spec needs (references marked optional are left out)."""
    names = set()
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in c.get("envFrom") or []:
            ref = source.get("secretRef") or {}
            if ref.get("name") and not ref.get("optional"):
                names.add(ref["name"])
        for var in c.get("env") or []:
            ref = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name") and not ref.get("optional"):
                names.add(ref["name"])
    for vol in spec.get("volumes") or []:
        secret = vol.get("secret") or {}
        if secret.get("secretName") and not secret.get("optional"):
            names.add(secret["secretName"])
        for source in (vol.get("projected") or {}).get("sources") or []:
            ref = source.get("secret") or {}
            if ref.get("name") and not ref.get("optional"):
                names.add(ref["name"])
    return names


def needed_secrets(manifests: dict[str, str], release_namespace: str) -> dict[Ref, list[str]]:
    """Secrets the pods need that no manifest of the run creates -> the workloads that need them."""
    needed: dict[Ref, list[str]] = {}
    created: set[Ref] = set()
    for release, obj in documents(manifests):
        namespace = (obj.get("metadata") or {}).get("namespace") or release_namespace
        name = (obj.get("metadata") or {}).get("name", "?")
        if obj["kind"] == "Secret":
            created.add((namespace, name))
        spec = pod_spec(obj)
        for secret in sorted(secret_names(spec) if spec else ()):
            needed.setdefault((namespace, secret), []).append(f"{release}: {obj['kind']} {name}")
    return {ref: users for ref, users in needed.items() if ref not in created}


def check_secrets(api_client: Any, manifests: dict[str, str], release_namespace: str) -> None:
    """PreflightError naming every needed Secret that is not in the cluster (nothing applied yet)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    missing = []
    for (namespace, name), users in sorted(needed_secrets(manifests, release_namespace).items()):
        try:
            # Metadata only: the deployer never reads a credential's value.
            core.read_namespaced_secret(
                name, namespace, _headers={"Accept": METADATA}, _preload_content=False, _request_timeout=10
            )
        except ApiException as err:
            if err.status != 404:
                raise
            missing.append(f"{namespace}/{name} (needed by {', '.join(users)})")
    if missing:
        raise PreflightError(
            f"Secrets that the releases reference do not exist: {'; '.join(missing)}. Nothing was applied. The "
            "charts never create credentials from values: create each one first, e.g. `kubectl create namespace "
            "NS` (a namespace made before the first deploy is adopted by it) and `kubectl -n NS create secret "
            "generic NAME --from-env-file=FILE`, or point the component's existingSecret at one that exists."
        )


def adopt_namespaces(
    api_client: Any, manifests: dict[str, str], release_namespace: str, log: Callable[[str], None]
) -> list[str]:
    """Give each existing namespace that a release creates, and that no Helm release owns, to that
    release; return their names."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    adopted = []
    for release, obj in documents(manifests):
        if obj["kind"] != "Namespace":
            continue
        name = obj["metadata"]["name"]
        try:
            current = core.read_namespace(name, _request_timeout=10)
        except ApiException as err:
            if err.status == 404:
                continue
            raise
        annotations = current.metadata.annotations or {}
        if "meta.helm.sh/release-name" in annotations:
            continue  # Helm's already, this release's or another's (Helm says so itself)
        core.patch_namespace(
            name,
            {
                "metadata": {
                    "labels": {"app.kubernetes.io/managed-by": "Helm"},
                    "annotations": {
                        "meta.helm.sh/release-name": release,
                        "meta.helm.sh/release-namespace": release_namespace,
                    },
                }
            },
            _request_timeout=10,
        )
        log(f"adopting namespace {name} into release {release} (it was created before the platform; kept as is)")
        adopted.append(name)
    return adopted
