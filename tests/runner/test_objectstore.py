"""The local object store (deploy/cluster/objectstore.py) and the runner's use of it
(runner/training/store.py): a real server that checks signatures, Secret-like credential files,
checkpoint-then-pointer writes, and a checkpoint that does not match its pointer refused."""

import json
import socket
import stat
from pathlib import Path

import pytest

from deploy.cluster.objectstore import LocalObjectStore, StoreAccess
from runner.errors import RunnerError
from runner.training.s3 import Client, S3Error
from runner.training.store import RunStore, settings_from_env


def test_the_server_checks_the_key_pair(objectstore: StoreAccess) -> None:
    good = objectstore.client()
    good.put(objectstore.bucket, "probe", b"ok")
    for access, secret, code in (
        (objectstore.access_key, "not-the-secret", "SignatureDoesNotMatch"),
        ("AKIANOSUCHKEY0000000", objectstore.secret_key, "InvalidAccessKeyId"),
    ):
        bad = Client(objectstore.endpoint, objectstore.region, access_key=access, secret_key=secret, retries=0)
        with pytest.raises(S3Error) as caught:
            bad.put(objectstore.bucket, "probe", b"no")
        assert caught.value.code == code and caught.value.status == 403
        with pytest.raises(S3Error) as caught:
            bad.keys(objectstore.bucket)
        assert caught.value.code == code
    assert good.get(objectstore.bucket, "probe") == b"ok"
    assert "probe" in good.keys(objectstore.bucket)


def test_listing_pages_through_every_key_under_a_prefix(objectstore: StoreAccess) -> None:
    """ListObjectsV2 pages (two keys a page here): more than a page, keys that need encoding (the continuation
    token too, signed as a query), a prefix that leaves a neighbour out."""
    client = objectstore.client()
    names = [f"listing/a b+c=/{n}" for n in range(5)]
    for name in [*names, "listing-other/x"]:
        client.put(objectstore.bucket, name, b"")
    assert client.keys(objectstore.bucket, "listing/", page=2) == names
    assert client.keys(objectstore.bucket, "listing/") == names
    assert client.keys(objectstore.bucket, "listing/none/") == []


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
    return set(objectstore.client().keys(objectstore.bucket, prefix + "/"))


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
    client.put(objectstore.bucket, key, b"torn")
    with pytest.raises(RunnerError, match="does not match the sha256"):
        run_store.latest()
    client.delete(objectstore.bucket, key)
    with pytest.raises(RunnerError, match="which does not exist"):
        run_store.latest()
    pointer = json.dumps({"key": key}).encode()
    client.put(objectstore.bucket, run_store.pointer_key, pointer)
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
    assert access.client().keys("other-bucket") == []  # it exists (NoSuchBucket otherwise), empty
    store.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
