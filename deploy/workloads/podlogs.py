"""The logs of a run's pods: read (whole, or the last lines), followed, and kept in the run folder
(runs/<workload>-<run>/<its logs_dir>/<pod>.log) before its release goes, so that `stop`/`delete` and TTL lose none."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deploy.kube import watch as kube
from deploy.workloads.kind import Workload


def pods(api_client: Any, workload: Workload, namespace: str, run: str) -> list[dict[str, Any]]:
    """The run's pods, oldest first."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    found, _ = kube.list_all(core.list_namespaced_pod, namespace, label_selector=f"{workload.run_label}={run}")
    return sorted(found, key=lambda p: (kube.get(p, "metadata", "creationTimestamp", default=""),
                                        kube.get(p, "metadata", "name")))  # fmt: skip


def read(api_client: Any, workload: Workload, namespace: str, pod: str, tail: int | None = None) -> str | None:
    """The pod's log (its last `tail` lines), None when it has none (not started, or its node keeps none)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    try:
        return core.read_namespaced_pod_log(pod, namespace, container=workload.container, tail_lines=tail)
    except ApiException as err:
        if err.status in (400, 404):
            return None
        raise


def stream(api_client: Any, workload: Workload, namespace: str, pod: str, tail: int | None) -> Iterator[str]:
    """The pod's log lines as they are written, until the container ends."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    response = core.read_namespaced_pod_log(
        pod, namespace, container=workload.container, follow=True, tail_lines=tail, _preload_content=False
    )
    try:
        pending = b""
        for chunk in response.stream(4096):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode(errors="replace")
        if pending:
            yield pending.decode(errors="replace")
    finally:
        response.release_conn()


def save(api_client: Any, workload: Workload, namespace: str, run: str, folder: Path) -> list[Path]:
    """Each of the run's pods' logs to folder/<workload.logs_dir>/<pod>.log, through the workload's filter (a pod
    without a log is left out)."""
    kept = []
    for pod in pods(api_client, workload, namespace, run):
        name = kube.get(pod, "metadata", "name")
        text = read(api_client, workload, namespace, name)
        if text is None:
            continue
        if workload.log_filter is not None:
            text = workload.log_filter(text)
        path = folder / workload.logs_dir / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        kept.append(path)
    return kept
