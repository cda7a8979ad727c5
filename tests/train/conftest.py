"""Fixtures of the training tests: one real S3-compatible store (moto's server mode, signatures
checked) for the session, and its key pair as the env file a user gives `secrets set`."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from train_cli import write_credentials

from deploy.cluster.objectstore import LocalObjectStore, StoreAccess


@pytest.fixture(scope="session")
def objectstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreAccess]:
    store = LocalObjectStore(log_path=tmp_path_factory.mktemp("objectstore") / "moto.log")
    try:
        yield store.start()
    finally:
        store.stop()


@pytest.fixture(scope="session")
def credentials(objectstore: StoreAccess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_credentials(objectstore, tmp_path_factory.mktemp("credentials") / "store.env")
