"""The one adapter around pyhelm3. Its traps, handled here and nowhere else:
- `Client()` runs `helm version` in its constructor: the client is made lazily, once, from the
  project's helm binary (a missing binary is a ToolMissingError before anything is applied);
- `create_namespace` defaults to True: always False here (the charts own their namespaces);
- `disable_validation=True` is broken in 0.5.x (the flag is split into characters): never passed;
- Helm 4 has `--rollback-on-failure` instead of `--atomic`: pyhelm3 picks the flag from the
  version it detected, we ask for `rollback_on_failure`;
- `wait=True` adds `--wait-for-jobs`: fine for these charts (their only Jobs are hooks), and bounded
  by the timeout;
- `get_chart()` runs `helm show chart`: Chart objects are built from Chart.yaml instead;
- `template()` cannot pass `--api-versions`/`--kube-version`: that call goes through `Command.run`.
- 0.5.8 cannot pass `--labels` to `helm upgrade`: the upgrade goes through a copy of the client
  whose command appends them (`_ExtraArgs`);
Every method is async; the caller runs one event loop per command (`run()`)."""

import asyncio
import copy
import inspect
import json
import logging
import types
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deploy import tools
from deploy.errors import HelmError
from deploy.values import read_yaml

T = TypeVar("T")
# pyhelm3 logs every failed command as a warning; failures reach the user as HelmError instead.
logging.getLogger("pyhelm3").addHandler(logging.NullHandler())
logging.getLogger("pyhelm3").propagate = False

PENDING = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """The single place where the async adapter meets the synchronous CLI."""
    return asyncio.run(coro)


class _ExtraArgs:
    """A pyhelm3 Command that appends `extra` to each helm command line it runs: its methods are
    rebound to this object, so that the `self.run(...)` inside them is the `run` below."""

    def __init__(self, command: Any, extra: list[str]) -> None:
        self._wrapped, self._extra = command, extra

    def __getattr__(self, name: str) -> Any:
        method = getattr(type(self._wrapped), name, None)
        if inspect.isfunction(method):
            return types.MethodType(method, self)
        return getattr(self._wrapped, name)

    async def run(self, command: list[Any], input: bytes | None = None) -> bytes:
        return await self._wrapped.run([*command, *self._extra], input)


@dataclass
class Helm:
    kubeconfig: Path | None = None
    context: str | None = None
    timeout: str = "5m"

    def __post_init__(self) -> None:
        self._client: Any = None
        self.executable = tools.tool("helm")  # ToolMissingError (exit 3) before anything else

    @property
    def client(self) -> Any:
        if self._client is None:
            from pyhelm3 import Client  # imports pydantic: only when Helm is really needed

            self._client = Client(
                executable=str(self.executable),
                kubeconfig=self.kubeconfig,
                kubecontext=self.context,
                default_timeout=self.timeout,
                history_max_revisions=10,
            )
        return self._client

    @property
    def command(self) -> Any:
        return self.client._command

    async def _call(self, action: str, coro: Coroutine[Any, Any, T]) -> T:
        from pyhelm3 import errors

        try:
            return await coro
        except errors.Error as err:
            raise HelmError(action, err.stderr.decode(errors="replace")) from err

    def _chart(self, chart_dir: Path) -> Any:
        from pyhelm3.models import Chart, ChartMetadata

        meta = read_yaml(chart_dir / "Chart.yaml")
        fields = {k: meta[k] for k in ("apiVersion", "name", "version", "type", "appVersion") if k in meta}
        return Chart(self.command, ref=chart_dir, metadata=ChartMetadata(**fields))

    async def raw(self, action: str, args: list[str], stdin: bytes | None = None) -> str:
        return (await self._call(action, self.command.run(args, stdin))).decode()

    async def template(
        self,
        release: str,
        chart_dir: Path,
        values: dict[str, Any],
        namespace: str,
        api_versions: tuple[str, ...] = (),
        kube_version: str | None = None,
    ) -> str:
        """Render a release offline (schema validated by Helm); returns the manifest text."""
        args = ["template", release, str(chart_dir), "--namespace", namespace, "--values", "-", "--skip-crds"]
        for api in api_versions:
            args += ["--api-versions", api]
        if kube_version:
            args += ["--kube-version", kube_version]
        return await self.raw(f"helm template {release}", args, json.dumps(values).encode())

    async def upgrade(
        self,
        release: str,
        chart_dir: Path,
        values: dict[str, Any],
        namespace: str,
        description: str,
        timeout: str,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Install or upgrade with rollback on failure, waiting for readiness up to `timeout`; `labels`
        go on the release (its storage Secret), merged with those of the previous revision."""
        client = self.client
        if labels:
            client = copy.copy(client)  # not a new Client: that would run `helm version` again
            client._command = _ExtraArgs(self.command, ["--labels", ",".join(f"{k}={v}" for k, v in labels.items())])
        revision = await self._call(
            f"helm upgrade --install {release}",
            client.install_or_upgrade_release(
                release,
                self._chart(chart_dir),
                values,
                rollback_on_failure=True,
                cleanup_on_fail=True,
                create_namespace=False,
                description=description,
                namespace=namespace,
                timeout=timeout,
                wait=True,
            ),
        )
        return {"revision": revision.revision, "status": revision.status.value}

    async def recover(self, release: str, namespace: str) -> str:
        """Bring a release stuck in pending-* back to a state Helm can upgrade; say what was done."""
        before = await self.status(release, namespace)
        state = (before or {}).get("info", {}).get("status", "")
        await self._call(
            f"recovering {release} from {state}",
            self.client.get_proceedable_revision(release, namespace=namespace, timeout=self.timeout),
        )
        if state in ("pending-install", "uninstalling"):
            return f"uninstalled (it was {state})"
        return f"rolled back to the last good revision (it was {state})"

    async def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        from pyhelm3 import errors

        try:
            return await self.command.status(release, namespace=namespace)
        except errors.ReleaseNotFoundError:
            return None
        except errors.Error as err:
            raise HelmError(f"helm status {release}", err.stderr.decode(errors="replace")) from err

    async def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        return list(await self._call(f"helm history {release}", self.command.history(release, namespace=namespace)))

    async def manifest(self, release: str, namespace: str) -> str:
        return await self.raw(f"helm get manifest {release}", ["get", "manifest", release, "--namespace", namespace])

    async def values(self, release: str, namespace: str) -> dict[str, Any]:
        return await self._call(f"helm get values {release}", self.command.get_values(release, namespace=namespace))

    async def rollback(self, release: str, revision: int | None, namespace: str, timeout: str) -> None:
        await self._call(
            f"helm rollback {release}",
            self.command.rollback(
                release, revision, namespace=namespace, timeout=timeout, wait=True, cleanup_on_fail=True
            ),
        )

    async def uninstall(self, release: str, namespace: str, timeout: str) -> None:
        await self._call(
            f"helm uninstall {release}",
            self.client.uninstall_release(release, namespace=namespace, timeout=timeout, wait=True),
        )
