"""examples/sweeps/resnet-gpus.yaml on the local control plane: its TorchScript file comes from the
PersistentVolumeClaim `models` of the benchmarks namespace. Launched before the claim exists, its
configs wait and `bench status` says why; once the claim is there (bound to a volume) they run,
with the volume mounted read-only where modelPath points."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_cli import cli
from test_bench_disruption import NAMESPACE, core, sweep_pods, wait_for  # noqa: F401 (the fixture)

from deploy.kube import watch as kube
from deploy.paths import REPO

pytestmark = pytest.mark.cluster

EXAMPLE = REPO / "examples" / "sweeps" / "resnet-gpus.yaml"
VOLUME = "kaiml-test-models"


@pytest.fixture
def launched(kubeconfig: Path, platform: Path, core: Any) -> Iterator[None]:  # noqa: F811 (the fixture)
    yield
    cli(kubeconfig, platform, "bench", "delete", "resnet-gpus", "--env", "dev")
    for delete, args in ((core.delete_namespaced_persistent_volume_claim, ("models", NAMESPACE)),
                         (core.delete_persistent_volume, (VOLUME,))):  # fmt: skip
        try:
            delete(*args)
        except Exception as err:  # absent already
            assert getattr(err, "status", None) == 404, err


def test_the_resnet_example_waits_for_its_model_volume_then_runs(
    kubeconfig: Path,
    platform: Path,
    core: Any,  # noqa: F811 (the fixture)
    launched: None,
) -> None:
    done = cli(kubeconfig, platform, "bench", "run", str(EXAMPLE), "--env", "dev", "--no-follow")
    assert done.returncode == 0, done.stderr

    def pending_reasons() -> list[str] | None:
        status = cli(kubeconfig, platform, "bench", "status", "resnet-gpus", "--env", "dev", "-o", "json")
        assert status.returncode == 0, status.stderr
        reasons = [why for row in json.loads(status.stdout) for why in row["pending"]]
        return reasons if any("volume claim not found: models" in why for why in reasons) else None

    wait_for("the missing claim in bench status", pending_reasons, timeout=90)

    core.create_persistent_volume(
        {
            "metadata": {"name": VOLUME},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "hostPath": {"path": "/var/lib/kaiml-test-models"},
                "storageClassName": "",
                "claimRef": {"namespace": NAMESPACE, "name": "models"},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        NAMESPACE,
        {
            "metadata": {"name": "models"},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": VOLUME,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )

    def running() -> list[dict[str, Any]] | None:
        pods = [p for p in sweep_pods(core, "resnet-gpus") if kube.get(p, "status", "phase") == "Running"]
        return pods or None

    # Pods that found no claim sit in the scheduler's unschedulable queue; the claim's events usually move
    # them at once, else the scheduler retries them within 5 minutes (podMaxInUnschedulablePodsDuration).
    pods = wait_for("a resnet-gpus pod running with its model volume", running, timeout=330)
    spec = pods[0]["spec"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in spec["volumes"]
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "models"]
    assert mount["mountPath"] == "/models" and mount["readOnly"] is True
