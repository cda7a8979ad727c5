"""The Secrets an environment's values name (the charts never create credentials), made the way the
README tells an operator to: the platform namespace first, which the first deploy then adopts."""

from typing import Any

from kubernetes import client

from deploy.platform.values import load_environment


def credentials(env: str) -> tuple[str, dict[str, dict[str, str]]] | None:
    """The platform namespace and the Secrets (name -> data) that ENV's values name, if any: the
    processing credentials and the cache's password."""
    values = load_environment(env)
    cache = values["global"].get("cacheAuth") or {}
    wanted = {
        (values.get("distributedProcessing") or {}).get("credentials", {}).get("existingSecret"): "TOKEN",
        cache.get("existingSecret"): cache.get("secretKey", "password"),
    }
    secrets = {name: {key: f"s3cr3t-value-{key}"} for name, key in wanted.items() if name}
    return (values["global"]["namespaces"]["platform"], secrets) if secrets else None


def create_credentials(api_client: Any, env: str) -> None:
    """Create ENV's platform namespace and the Secrets its values name (nothing for an env that names none)."""
    found = credentials(env)
    if not found:
        return
    namespace, secrets = found
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    for name, data in secrets.items():
        core.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
        )
