"""The cache's rendered command line, run for real: a redis-server started exactly as the prod
Deployment starts it (its command, args and readiness check; only the mount paths point into a
temporary folder and the port is a free one on 127.0.0.1) refuses clients without the password
and answers the authenticated ones.

Redis comes from Debian's redis-tools (tools/test.sh installs it): that package ships the server
binary as redis-check-rdb and starts no service; run under the name redis-server it is the server."""

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Spaces, quotes and a '#' survive; the trailing newline is not part of the password.
PASSWORD = "pa ss'wo\"rd#1"


def redis_bin_dir(tmp: Path) -> Path:
    """A folder with redis-server and redis-cli on it."""
    server, cli = shutil.which("redis-server") or shutil.which("redis-check-rdb"), shutil.which("redis-cli")
    if not (server and cli):
        pytest.fail(
            "redis-server (or Debian's redis-check-rdb) and redis-cli are missing: tools/test.sh installs "
            "Debian's redis-tools; or run `apt-get install redis-tools`",
            pytrace=False,
        )
    folder = tmp / "bin"
    folder.mkdir()
    (folder / "redis-server").symlink_to(server)
    (folder / "redis-cli").symlink_to(cli)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Redis:
    process: subprocess.Popen[str]
    port: int
    env: dict[str, str]
    readiness: list[str]
    password_file: Path

    def cli(self, *args: str, password: str | None = None) -> str:
        env = {**self.env, **({"REDISCLI_AUTH": password} if password is not None else {})}
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args], env=env, capture_output=True, text=True
        )
        return (done.stdout + done.stderr).strip()

    def ready(self) -> bool:
        """The rendered readiness check, run as the kubelet runs it."""
        return subprocess.run(self.readiness, env=self.env, capture_output=True).returncode == 0


def start(container: dict[str, Any], tmp: Path, password: str | None) -> Redis:
    """Start the container's command line with its mounts under `tmp` and its port free."""
    port = free_port()
    moved = {m["mountPath"]: tmp / m["name"] for m in container["volumeMounts"]}
    for folder in moved.values():
        folder.mkdir()
    password_file = tmp / "cache-auth" / "password"
    if password is not None:
        password_file.write_text(password + "\n")
        password_file.chmod(0o400)

    mounts = re.compile("|".join(re.escape(m) for m in sorted(moved, key=len, reverse=True)) + r"(?=/|\s|$)")

    def local(text: str) -> str:
        text = mounts.sub(lambda m: str(moved[m[0]]), text)
        return text.replace(f"-p {container['ports'][0]['containerPort']} ", f"-p {port} ")

    args = [local(a) for a in container["args"]]
    args[args.index("--port") + 1] = str(port)
    command = [local(c) for c in container.get("command", [])]
    env = {"PATH": f"{redis_bin_dir(tmp)}:/usr/bin:/bin", "HOME": str(tmp)}
    # Loopback only, whatever the chart binds to (later options win in Redis).
    process = subprocess.Popen(
        [*command, *args, "--bind", "127.0.0.1"],
        env=env,
        cwd=tmp,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    readiness = [local(c) for c in container["readinessProbe"]["exec"]["command"]]
    redis = Redis(process, port, env, readiness, password_file)
    deadline = time.monotonic() + 20
    while not redis.ready():
        assert process.poll() is None, f"redis exited {process.returncode}:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "the rendered readiness check never passed"
        time.sleep(0.1)
    return redis


def cache_container(render, env: str) -> dict[str, Any]:
    (deployment,) = [m for m in render(env) if m["kind"] == "Deployment" and m["metadata"]["name"].endswith("-cache")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.fixture
def prod_redis(render, tmp_path: Path) -> Iterator[Redis]:
    redis = start(cache_container(render, "prod"), tmp_path, PASSWORD)
    yield redis
    redis.process.terminate()
    redis.process.wait(10)


def test_unauthenticated_clients_are_refused(prod_redis: Redis) -> None:
    assert prod_redis.cli("SET", "result", "42", password=PASSWORD) == "OK"
    assert "NOAUTH" in prod_redis.cli("PING")
    assert "NOAUTH" in prod_redis.cli("GET", "result")
    assert "NOAUTH" in prod_redis.cli("FLUSHALL")
    assert "WRONGPASS" in prod_redis.cli("FLUSHALL", password="guess")
    assert prod_redis.cli("GET", "result", password=PASSWORD) == "42"


def test_authenticated_clients_are_answered(prod_redis: Redis) -> None:
    assert prod_redis.cli("PING", password=PASSWORD) == "PONG"
    assert prod_redis.cli("FLUSHALL", password=PASSWORD) == "OK"


def test_readiness_fails_without_the_right_password(prod_redis: Redis) -> None:
    assert prod_redis.ready()
    prod_redis.password_file.chmod(0o600)
    prod_redis.password_file.write_text("not-the-password")
    assert not prod_redis.ready()


def test_the_password_is_not_in_the_process_arguments_or_environment(prod_redis: Redis) -> None:
    # sh execs redis-server: the pid is Redis's own.
    proc = Path(f"/proc/{prod_redis.process.pid}")
    assert (proc / "comm").read_text().strip() == "redis-server"
    for name in ("cmdline", "environ"):
        text = (proc / name).read_bytes().decode(errors="replace")
        assert PASSWORD not in text and "#" not in text, name


def test_dev_runs_without_a_password(render, tmp_path: Path) -> None:
    redis = start(cache_container(render, "dev"), tmp_path, None)
    try:
        assert redis.cli("PING") == "PONG"
    finally:
        redis.process.terminate()
        redis.process.wait(10)
