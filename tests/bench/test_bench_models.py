"""examples/sweeps/resnet-gpus.yaml on the local control plane: its TorchScript file comes from the
PersistentVolumeClaim `models` of the benchmarks namespace. Launched before the claim exists, its
configs wait and `bench status` says why, their pods carrying the volume read-only where modelPath
points."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_cli import cli
from test_bench_disruption import NAMESPACE, core, sweep_pods, wait_for  # noqa: F401 (the fixture)

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

    # The pods wait with the volume in their spec, mounted read-only where modelPath points. (That they then
    # run and read the model is shown on the real node, tests/realnode/test_real_node.py.)
    pods = sweep_pods(core, "resnet-gpus")
    assert pods
    spec = pods[0]["spec"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in spec["volumes"]
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "models"]
    assert mount["mountPath"] == "/models" and mount["readOnly"] is True
