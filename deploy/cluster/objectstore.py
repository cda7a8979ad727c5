"""A local S3-compatible object store on 127.0.0.1 for the tests and `--local`: moto's server mode.

Why moto and not MinIO: both are real HTTP servers that check SigV4 signatures, but moto installs
from PyPI in about 30 s (then cached) and starts in about a second, while MinIO is one more Go
build of several minutes on 2 cores. Started with `INITIAL_NO_AUTH_ACTION_COUNT`, moto checks every
request's signature and IAM access key after the first few, so wrong credentials are refused as by
a real store: the harness spends those few unauthenticated calls on one IAM user, its access key
and its policy, then creates the bucket with the new key. The key pair is random per start and is
handed out as a Kubernetes Secret would give it (`write_secret_dir`: one read-only file per key)
plus the non-secret part of the backend ConfigMap (`env`).

moto runs from a virtualenv of its own (deploy/cluster/objectstore-requirements.txt, every package
pinned), built once per requirements digest under the cache folder: its botocore needs
python-dateutil<3, the deploy tool's kubernetes client >=3, so they cannot share the project's venv.
Clients here use the project's own S3 client (runner/training/s3.py, the standard library's), which needs neither.

What moto is not: durable (objects live in the server's memory and go with it) or fast for large
objects. Both are fine for checkpoints of test models; a cluster uses a real store."""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.errors import ClusterError

REQUIREMENTS = Path(__file__).with_name("objectstore-requirements.txt")
REGION = "us-east-1"
DEFAULT_BUCKET = "kaiml-training"
# Unauthenticated calls allowed at start: create_user, create_access_key, put_user_policy.
SETUP_CALLS = 3
# The file names under a mounted Secret (the keys of the object-store credentials Secret).
ACCESS_KEY_FILE = "access-key"
SECRET_KEY_FILE = "secret-key"
# Run with moto's own interpreter: the setup calls, then the bucket with the new key. Prints the key
# pair as JSON on stdout, which the harness reads from a pipe (never a log).
PROVISION = """
import json, sys, boto3
endpoint, bucket, region = sys.argv[1:4]
iam = boto3.client("iam", endpoint_url=endpoint, region_name=region,
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="kaiml-runner")
key = iam.create_access_key(UserName="kaiml-runner")["AccessKey"]
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]}
iam.put_user_policy(UserName="kaiml-runner", PolicyName="objects", PolicyDocument=json.dumps(policy))
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
print(json.dumps({"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}))
"""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kai-ml-platform" / "objectstore"


def moto_python(log: Callable[[str], None] | None = None) -> Path:
    """The interpreter of moto's own venv, built on first use (pip, pinned requirements) and kept
    per requirements digest; concurrent callers wait on a lock, a half-built venv is never used."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    root = cache_dir()
    venv = root / f"moto-{digest}"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists():
            return python
        building = root / f".building-{digest}"
        shutil.rmtree(building, ignore_errors=True)
        if log:
            log(f"building the local object store's environment (moto, once): {venv}")
        base = getattr(sys, "_base_executable", sys.executable)
        for command in (
            [base, "-m", "venv", str(building)],
            [
                str(building / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(REQUIREMENTS),
            ],
        ):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                shutil.rmtree(building, ignore_errors=True)
                raise ClusterError(
                    f"cannot build the local object store's environment ({' '.join(command[:3])}...): "
                    f"{(done.stderr or done.stdout).strip()[-2000:]}"
                )
        # Only `python -m` is used, which a renamed venv keeps (its scripts' shebangs would not).
        building.rename(venv)
    return python


@dataclass(frozen=True)
class StoreAccess:
    """How a client reaches the store. The key pair is kept out of repr() so that no log of this
    object can print it."""

    endpoint: str
    bucket: str
    region: str = REGION
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)

    def env(self) -> dict[str, str]:
        """The non-secret settings, as the backend ConfigMap gives them to a training pod."""
        return {
            "KAIML_OBJECTSTORE_ENDPOINT": self.endpoint,
            "KAIML_OBJECTSTORE_BUCKET": self.bucket,
            "KAIML_OBJECTSTORE_REGION": self.region,
        }

    def write_secret_dir(self, directory: Path) -> Path:
        """The key pair as a Secret volume holds it: one file per key, read-only to its owner."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, value in ((ACCESS_KEY_FILE, self.access_key), (SECRET_KEY_FILE, self.secret_key)):
            path = directory / name
            with contextlib.suppress(FileNotFoundError):
                path.chmod(0o600)
            path.write_text(value)
            path.chmod(0o400)
        return directory

    def client(self) -> Any:
        """The project's S3 client (runner/training/s3.py, the runner's and `train artifacts`') with this key pair."""
        from runner.training.s3 import Client

        return Client(self.endpoint, self.region, access_key=self.access_key, secret_key=self.secret_key)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalObjectStore:
    """`start()` a moto server on 127.0.0.1 and get its StoreAccess; `stop()` ends it. A context
    manager too. The server's log goes to `log_path` (default: discarded). `host`: the address it listens
    on, 127.0.0.1 or the real node's bridge address (where the node's pods reach this machine); never
    a wildcard."""

    def __init__(
        self, bucket: str = DEFAULT_BUCKET, port: int = 0, log_path: Path | None = None, host: str = "127.0.0.1"
    ) -> None:
        if host in ("0.0.0.0", "::", ""):
            raise ClusterError(
                "the local object store listens on loopback or the real node's bridge, not on every address"
            )
        self.bucket = bucket
        self.port = port
        self.log_path = log_path
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None
        self.access: StoreAccess | None = None

    def __enter__(self) -> StoreAccess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> StoreAccess:
        if self.access is not None:
            return self.access
        python = moto_python()
        self.port = self.port or _free_port(self.host)
        env = {
            **os.environ,
            "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS),
            "NO_PROXY": f"127.0.0.1,localhost,{self.host}",
        }
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [str(python), "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise ClusterError(f"cannot start the local object store (moto server): {e}") from e
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        try:
            self._wait_listening(timeout)
            self.access = self._provision(python)
        except BaseException:
            self.stop()
            raise
        return self.access

    def _wait_listening(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ClusterError(
                    f"the local object store (moto.server) exited with code {self.process.returncode} at start"
                )
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.1)
        raise ClusterError(f"the local object store did not listen on {self.host}:{self.port} within {timeout:.0f} s")

    def _provision(self, python: Path) -> StoreAccess:
        done = subprocess.run(
            [str(python), "-c", PROVISION, self.endpoint, self.bucket, REGION],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            # stderr is boto3's traceback of a setup call: no key pair in it (it is printed only at the end).
            raise ClusterError(f"cannot set up the local object store: {done.stderr.strip()[-1500:]}")
        key = json.loads(done.stdout)
        return StoreAccess(
            endpoint=self.endpoint, bucket=self.bucket, access_key=key["access_key"], secret_key=key["secret_key"]
        )

    def stop(self) -> None:
        process, self.process, self.access = self.process, None, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- a store that outlives the command: `./deploy.sh cluster store up|down` -------------------------


def store_dir(name: str) -> Path:
    from deploy.paths import state_dir

    return state_dir() / "objectstore" / name


def credentials_file(name: str) -> Path:
    """The key pair as KEY=VALUE lines (the form of `secrets set --from-env-file` and `train submit
    --credentials-env-file`), readable by its owner only."""
    return store_dir(name) / "credentials.env"


def running(name: str) -> dict[str, Any] | None:
    """The detached store of `name` (endpoint, bucket, pid) while its server runs; None otherwise."""
    from deploy.cluster import procs

    info_file = store_dir(name) / "store.json"
    if not info_file.exists():
        return None
    info = json.loads(info_file.read_text())
    return info if procs.alive(int(info["pid"])) else None


def start_detached(name: str, host: str = "127.0.0.1") -> dict[str, Any]:
    """Start a store that keeps running after this command (its own session), or return the running one.
    The key pair goes to credentials_file(name) only, never to output."""
    found = running(name)
    if found is not None:
        return found
    folder = store_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    store = LocalObjectStore(host=host, log_path=folder / "server.log")
    access = store.start()
    assert store.process is not None
    creds = credentials_file(name)
    creds.unlink(missing_ok=True)
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{ACCESS_KEY_FILE}={access.access_key}\n{SECRET_KEY_FILE}={access.secret_key}\n")
    info = {"endpoint": access.endpoint, "bucket": access.bucket, "region": access.region, "pid": store.process.pid}
    (folder / "store.json").write_text(json.dumps(info, indent=2))
    store.process = None  # it outlives this process: stop_detached() ends it
    return info


def stop_detached(name: str) -> bool:
    """Stop the detached store of `name` and remove its folder (its objects go with it); False: none ran."""
    info_file = store_dir(name) / "store.json"
    was = running(name)
    if was is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(was["pid"]), signal.SIGTERM)
        for _ in range(100):
            if running(name) is None:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(was["pid"]), signal.SIGKILL)
    if info_file.exists() or store_dir(name).exists():
        shutil.rmtree(store_dir(name), ignore_errors=True)
    return was is not None
