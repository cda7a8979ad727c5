"""The local object store (deploy/cluster/objectstore.py) and the runner's use of it
(runner/training/store.py): a real server that checks signatures, Secret-like credential files,
checkpoint-then-pointer writes, and a checkpoint that does not match its pointer refused."""

import io
import json
import socket
import stat
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from deploy.cluster.objectstore import LocalObjectStore, StoreAccess
from runner.errors import RunnerError
from runner.training.store import RunStore, settings_from_env


def test_the_server_checks_the_key_pair(objectstore: StoreAccess) -> None:
    good = objectstore.client()
    good.put_object(objectstore.bucket, "probe", io.BytesIO(b"ok"), 2)
    host = objectstore.endpoint.removeprefix("http://")
    for access, secret, code in (
        (objectstore.access_key, "not-the-secret", "SignatureDoesNotMatch"),
        ("AKIANOSUCHKEY0000000", objectstore.secret_key, "InvalidAccessKeyId"),
    ):
        bad = Minio(host, access_key=access, secret_key=secret, secure=False, region=objectstore.region)
        with pytest.raises(S3Error) as caught:
            bad.put_object(objectstore.bucket, "probe", io.BytesIO(b"no"), 2)
        assert caught.value.code == code
    response = good.get_object(objectstore.bucket, "probe")
    assert response.read() == b"ok"
    response.close()
    response.release_conn()


def test_credentials_are_files_as_a_secret_volume_gives_them(objectstore: StoreAccess, tmp_path: Path) -> None:
    directory = objectstore.write_secret_dir(tmp_path / "secret")
    assert sorted(p.name for p in directory.iterdir()) == ["access-key", "secret-key"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in directory.iterdir())
    assert objectstore.secret_key not in repr(objectstore) and objectstore.access_key not in repr(objectstore)
    settings = settings_from_env({**objectstore.env(), "KAIML_OBJECTSTORE_CREDENTIALS_DIR": str(directory)})
    assert settings.credentials.secret_key == objectstore.secret_key
    assert objectstore.secret_key not in repr(settings)


@pytest.fixture
def run_store(objectstore: StoreAccess, tmp_path: Path, request: pytest.FixtureRequest) -> RunStore:
    directory = objectstore.write_secret_dir(tmp_path / "secret")
    settings = settings_from_env({**objectstore.env(), "KAIML_OBJECTSTORE_CREDENTIALS_DIR": str(directory)})
    return RunStore(settings, f"unit-{request.node.name}")


def _names(objectstore: StoreAccess, prefix: str) -> set[str]:
    return {o.object_name for o in objectstore.client().list_objects(objectstore.bucket, prefix + "/", True)}


def test_checkpoint_object_then_pointer_then_the_old_one_goes(run_store: RunStore, objectstore: StoreAccess) -> None:
    assert run_store.latest() is None
    first = run_store.save(2, b"two", previous=None)
    second = run_store.save(4, b"four", previous=first)
    assert _names(objectstore, run_store.base) == {second, run_store.pointer_key}
    latest = run_store.latest()
    assert latest is not None and (latest.key, latest.step, latest.payload) == (second, 4, b"four")


def test_a_checkpoint_that_does_not_match_its_pointer_is_refused(run_store: RunStore, objectstore: StoreAccess):
    key = run_store.save(3, b"three", previous=None)
    client = objectstore.client()
    client.put_object(objectstore.bucket, key, io.BytesIO(b"torn"), 4)
    with pytest.raises(RunnerError, match="does not match the sha256"):
        run_store.latest()
    client.remove_object(objectstore.bucket, key)
    with pytest.raises(RunnerError, match="which does not exist"):
        run_store.latest()
    pointer = json.dumps({"key": key}).encode()
    client.put_object(objectstore.bucket, run_store.pointer_key, io.BytesIO(pointer), len(pointer))
    with pytest.raises(RunnerError, match="is not a checkpoint pointer"):
        run_store.latest()


def test_an_unreachable_store_is_a_retried_failure(tmp_path: Path, objectstore: StoreAccess) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = objectstore.write_secret_dir(tmp_path / "secret")
    env = {**objectstore.env(), "KAIML_OBJECTSTORE_ENDPOINT": f"http://127.0.0.1:{port}"}
    # No retries here: the runner's default (5, with backoff) would only make the test slow.
    store = RunStore(settings_from_env({**env, "KAIML_OBJECTSTORE_CREDENTIALS_DIR": str(directory)}), "x", retries=0)
    with pytest.raises(RunnerError, match=f"object store http://127.0.0.1:{port}, bucket kaiml-training"):
        store.latest()


def test_stop_ends_the_server() -> None:
    store = LocalObjectStore(bucket="other-bucket")
    access = store.start()
    port = int(access.endpoint.rsplit(":", 1)[1])
    assert access.client().bucket_exists("other-bucket")
    store.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
