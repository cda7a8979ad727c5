"""Fixtures of the runner's tests: CPU only, tiny models, few iterations."""

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from deploy.cluster.objectstore import LocalObjectStore, StoreAccess
from runner.cli import main
from runner.result import MARKER, SCHEMA_FILE


@pytest.fixture(autouse=True)
def _cpu_and_no_cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs on CPU, and no in-cluster variable of the calling shell leaks in."""
    monkeypatch.setenv("KAIML_DEVICE", "cpu")
    for name in (
        "JOB_COMPLETION_INDEX",
        "KAIML_CONFIG_INDEXES",
        "KAIML_CONFIG_DIR",
        "KAIML_SWEEP",
        "KAIML_CONFIG_ERROR_EXIT_CODE",
        "RANK",
        "WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "KAIML_RUN_ID",
        "KAIML_OBJECTSTORE_ENDPOINT",
        "KAIML_OBJECTSTORE_BUCKET",
        "KAIML_OBJECTSTORE_CREDENTIALS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def validate() -> Callable[[dict[str, Any]], None]:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    return validator.validate


RunOutcome = tuple[int, list[str], dict[str, Any]]


@pytest.fixture
def run_runner(tmp_path: Path) -> Callable[..., RunOutcome]:
    """Runs `python -m runner` in this process: (exit code, stdout lines, the KAIML_RESULT record)."""

    def run(config: dict[str, Any] | None = None, argv: list[str] | None = None) -> RunOutcome:
        if config is not None:
            path = tmp_path / "config.json"
            path.write_text(json.dumps(config))
            argv = ["--config", str(path), *(argv or [])]
        out = io.StringIO()
        code = main(argv or [], stdout=out)
        lines = out.getvalue().splitlines()
        records = [json.loads(line[len(MARKER) + 1 :]) for line in lines if line.startswith(MARKER + " ")]
        assert len(records) == 1, lines
        return code, lines, records[0]

    return run


@pytest.fixture(scope="session")
def objectstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreAccess]:
    """One real S3-compatible server (moto's server mode on 127.0.0.1, signatures checked) for the
    session; each test keeps to its own KAIML_RUN_ID."""
    store = LocalObjectStore(log_path=tmp_path_factory.mktemp("objectstore") / "moto.log")
    try:
        yield store.start()
    finally:
        store.stop()


@pytest.fixture
def store_env(objectstore: StoreAccess, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """What a training pod gets: the backend ConfigMap's settings as env vars, the Secret as
    read-only files, and a run id of its own."""
    secret = objectstore.write_secret_dir(tmp_path / "secret")
    return {
        **objectstore.env(),
        "KAIML_OBJECTSTORE_CREDENTIALS_DIR": str(secret),
        "KAIML_RUN_ID": f"test-{request.node.name}".replace("[", "-").replace("]", "")[:60],
    }
