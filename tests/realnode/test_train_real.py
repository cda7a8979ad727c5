"""A training run for real on the real node: the runner image's torch trains the runner's own cnn in a
container, writes its checkpoints and final model to a real S3-compatible store (moto, listening on the
node's bridge address, where the node's pods reach this machine, through platform-policy's egress rule for
it), and `train artifacts` downloads them."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from realnode_env import POOL, RealCluster

from deploy.cluster.objectstore import LocalObjectStore
from deploy.paths import REPO

sys.path.insert(0, str(REPO / "tests" / "train"))
from train_cli import leaked, write_credentials, write_spec

pytestmark = pytest.mark.realnode

STORE_PORT = 9000


def test_a_training_run_checkpoints_to_the_store_and_its_artifacts_download(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    ip = real_cluster.local.real_node().net.host_ip  # the host end of the node's link: pods reach this machine there
    # The port that tests/fixtures/realnode-values.yaml's egress rule (training-local-store) allows.
    store = LocalObjectStore(host=ip, port=STORE_PORT, log_path=tmp_path / "moto.log")
    access = store.start()
    try:
        credentials = write_credentials(access, tmp_path / "store.env")
        outputs: list[str] = []

        def cli(*args: str) -> str:
            done = real_cluster.cli(*args, timeout=900)
            outputs.extend([done.stdout, done.stderr])
            assert done.returncode == 0, done.stderr + done.stdout
            return done.stdout + done.stderr

        cli("secrets", "set", "training/r2-credentials", "--from-env-file", str(credentials), "--env", "dev")
        spec = write_spec(tmp_path, "real-cnn", nodePool=POOL, datasetArgs={"samples": 128, "classes": 2,
                                                                             "imageSize": 8})  # fmt: skip
        said = cli("train", "submit", str(spec), *real_cluster.image_flags(), "--executor", "kubernetes",
                   "--set", f"objectStore.endpoint={access.endpoint}", "--timeout", "10m")  # fmt: skip
        assert "1 of 1 runs have a result" in said, said
        results = (real_cluster.runs / "train-real-cnn" / "results.jsonl").read_text()
        [record] = [json.loads(x) for x in results.splitlines()]
        assert record["node"] == real_cluster.node
        result = record["result"]
        assert result["device"]["torch"].startswith("1.13") and result["device"]["uid"] == 65532
        metrics = result["metrics"]
        assert metrics["steps"] == 16 and metrics["epochLoss"][1] < metrics["epochLoss"][0]
        # The last checkpoint (step 15: every 3 steps, the final step writes the model instead) is in the store.
        names = set(access.client().keys(access.bucket, "training/real-cnn-train/"))
        assert "training/real-cnn-train/checkpoints/step-000000015.pt" in names
        assert result["artifacts"]["checkpoint"] == "training/real-cnn-train/checkpoints/step-000000015.pt"

        into = tmp_path / "artifacts"
        cli("train", "artifacts", "real-cnn", str(into), "--env", "dev", "--credentials-env-file", str(credentials))
        assert json.loads((into / "metrics.json").read_text())["weightsSha256"] == metrics["weightsSha256"]
        assert (into / "model.pt").stat().st_size > 0
        [log] = (into / "logs").glob("real-cnn-train-*.log")
        assert "KAIML_PROGRESS" in log.read_text()
        assert yaml.safe_load(spec.read_text())["nodePool"] == POOL
        assert not leaked(access, outputs, [real_cluster.runs, into])
    finally:
        store.stop()
