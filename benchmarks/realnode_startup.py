"""Pod start-up on the local cluster's real node with the runner image cached: for N pods created at
once, create-to-Running (the first watch event that shows the pod Running or already done) and
create-to-result (the pod Succeeded, its output line in the container log), p50 and p99.

    .venv/bin/python benchmarks/realnode_startup.py [--pods 50]

Starts a cluster of its own (`kaiml-startup-bench`, with a real node; needs root), pushes the runner
image to its registry, pulls it once with a warm-up pod, then measures. The upstream SLO for pod
start-up (image cached) is p99 <= 5 s."""

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deploy.cluster.controlplane import LocalCluster
from deploy.cluster.realnode import REAL_LABEL
from deploy.images import build as images
from deploy.platform.nodepools import node_pools
from deploy.platform.values import load_environment

NAMESPACE = "startup-bench"
POOL = "real-cpu"  # values/dev.yaml's pool of the local cluster's real node


def pod(name: str, image: str) -> dict[str, Any]:
    """A pod as the benchmark chart makes them: restricted security context, read-only root."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "startup-bench"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "nodeSelector": {REAL_LABEL: "true"},
            "tolerations": [{"key": REAL_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "runner",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "print('result')"],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(core: Any, image: str, count: int, rate: float = 0) -> tuple[list[float], list[float]]:
    """Create `count` pods (all at once, or `rate` per second) and time each one from its own creation."""
    from kubernetes import watch

    created: dict[str, float] = {}
    running: dict[str, float] = {}
    done: dict[str, float] = {}
    stream = watch.Watch()
    names = [f"p{i:03d}" for i in range(count)]

    start = time.monotonic()

    def create(name: str) -> None:
        if rate:
            time.sleep(max(0.0, start + names.index(name) / rate - time.monotonic()))
        created[name] = time.monotonic()
        core.create_namespaced_pod(NAMESPACE, pod(name, image))

    version = core.list_namespaced_pod(NAMESPACE).metadata.resource_version
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(create, n) for n in names]
        for event in stream.stream(
            core.list_namespaced_pod,
            NAMESPACE,
            resource_version=version,
            label_selector="app=startup-bench",
            timeout_seconds=300,
        ):
            obj, now = event["object"], time.monotonic()
            name, phase = obj.metadata.name, obj.status.phase
            if phase in ("Running", "Succeeded", "Failed"):
                running.setdefault(name, now)
            if phase in ("Succeeded", "Failed"):
                done.setdefault(name, now)
                if phase == "Failed":
                    raise SystemExit(f"pod {name} failed: {obj.status}")
            if len(done) == count:
                stream.stop()
        for f in futures:
            f.result()
    print(f"{count} pods done in {time.monotonic() - start:.1f}s")
    logs = {core.read_namespaced_pod_log(n, NAMESPACE).strip() for n in names[:5]}
    assert logs == {"result"}, logs
    return [running[n] - created[n] for n in names], [done[n] - created[n] for n in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="pods created per second (repeatable; default: one run with all pods at once, then one at 2/s)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    args = parser.parse_args()
    from kubernetes import client

    cluster = LocalCluster("kaiml-startup-bench", real_node_pool=POOL)
    try:
        cluster.up(node_pools(load_environment("dev")), log=print)
        registry = cluster.real_node().info()["registry"]
        ref = images.build_runner("bench", log=print)
        image = f"{registry}/{ref}"
        images.push(ref, image)
        core = client.CoreV1Api(cluster.api_client())
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        warm_start = time.monotonic()
        measure(core, image, 1)  # pulls the image: every measured pod finds it cached
        print(f"warm-up pod (image pull included) in {time.monotonic() - warm_start:.1f}s")
        for rate in args.rate or [0, 2]:
            core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)
            while core.list_namespaced_pod(NAMESPACE).items:
                time.sleep(0.5)
            to_running, to_result = measure(core, image, args.pods, rate)
            how = f"{rate:g} pods/s" if rate else "all at once"
            for label, values in (("create-to-Running", to_running), ("create-to-result", to_result)):
                print(
                    f"{how}: {label}: p50 {pct(values, 0.5):.2f}s p99 {pct(values, 0.99):.2f}s "
                    f"mean {statistics.mean(values):.2f}s max {max(values):.2f}s ({len(values)} pods)"
                )
    finally:
        if not args.keep:
            cluster.down()


if __name__ == "__main__":
    main()
