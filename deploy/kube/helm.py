"""The one adapter around pyhelm3. Its traps, handled here and nowhere else:
- `Client()` runs `helm version` in its constructor: the client is made lazily, once, from the
  project's helm binary (a missing binary is a ToolMissingError before anything is applied);
- `create_namespace` defaults to True: always False here (the charts own their namespaces);
- `disable_validation=True` is broken in 0.5.x (the flag is split into characters): never passed;
- Helm 4 has `--rollback-on-failure` instead of `--atomic`;
- `wait=True` adds `--wait-for-jobs`: fine for these charts (their only Jobs are hooks), and bounded
  by the timeout;
- `get_chart()` runs `helm show chart`: Chart objects are built from Chart.yaml instead;
- `template()` cannot pass `--api-versions`/`--kube-version`: that call goes through `Command.run`.
- 0.5.8 cannot pass `--labels` to `helm upgrade`, and parses the whole returned manifest with
  pure-Python YAML: the upgrade command line is built here (see `upgrade`) and runs through `Command.run`.
Every method is async; the caller runs one event loop per command (`run()`)."""

import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deploy import tools
from deploy.errors import HelmError
from deploy.platform.values import read_yaml

T = TypeVar("T")
# pyhelm3 logs every failed command as a warning; failures reach the user as HelmError instead.
logging.getLogger("pyhelm3").addHandler(logging.NullHandler())
logging.getLogger("pyhelm3").propagate = False

PENDING = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """The single place where the async adapter meets the synchronous CLI."""
    import asyncio  # imported here: the no-op path never runs an event loop

    return asyncio.run(coro)


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
        wait: bool = True,
    ) -> dict[str, Any]:
        """Install or upgrade with rollback on failure, waiting for readiness (Jobs included) up to
        `timeout`; `labels` go on the release's storage Secret. The command line is built here rather
        than by pyhelm3's install_or_upgrade_release: that cannot pass --labels, and it parses the whole
        returned manifest with pure-Python YAML (~50 ms of CPU per release, which serialises the
        parallel releases of a level). `wait=False` (benchmark sweeps, followed by their own watch):
        no waiting and so no rollback on failure; the objects are applied and the command returns."""
        args = [
            "upgrade", release, str(chart_dir), "--install", "--namespace", namespace, "--values", "-",
            "--cleanup-on-fail", "--timeout", timeout,
            "--history-max", "10", "--description", description, "--output", "json",
        ]  # fmt: skip
        if wait:
            args += ["--rollback-on-failure", "--wait", "--wait-for-jobs"]
        if labels:
            args += ["--labels", ",".join(f"{k}={v}" for k, v in labels.items())]
        out = await self.raw(f"helm upgrade --install {release}", args, json.dumps(values).encode())
        record = json.loads(out)
        return {"revision": record["version"], "status": record["info"]["status"]}

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
