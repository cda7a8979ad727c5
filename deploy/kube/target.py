"""Which cluster a run talks to, and with which credentials.

Kubeconfig, first found wins: --kubeconfig; $KUBECONFIG; the file-based secrets provider
(`$KAIML_SECRETS_DIR`, default ~/.config/kai-ml-platform/secrets: `kubeconfig-<context>` then
`kubeconfig`, refused when readable by group or others); ~/.kube/config.
With neither --context nor --kubeconfig (or with --local) the project's local control plane is used."""

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.errors import ClusterError


@dataclass(frozen=True)
class Target:
    kubeconfig: Path
    context: str | None  # None: the kubeconfig's current context
    local: bool = False

    def describe(self) -> str:
        where = "the local control plane" if self.local else f"context {self.context or '(current)'}"
        return f"{where} ({self.kubeconfig})"

    def api_client(self) -> Any:
        from kubernetes import config

        try:
            return config.new_client_from_config(config_file=str(self.kubeconfig), context=self.context)
        except Exception as err:  # ConfigException, missing keys, unreadable file
            raise ClusterError(f"cannot load {self.describe()}: {err}") from None


def secrets_dir() -> Path:
    return Path(os.environ.get("KAIML_SECRETS_DIR") or Path.home() / ".config" / "kai-ml-platform" / "secrets")


def _from_secrets(context: str | None) -> Path | None:
    folder = secrets_dir()
    for name in ([f"kubeconfig-{context}"] if context else []) + ["kubeconfig"]:
        path = folder / name
        if path.is_file():
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ClusterError(
                    f"{path} is readable by other users (mode {stat.filemode(mode)}): it holds credentials, "
                    f"so it is refused. Run `chmod 600 {path}`."
                )
            return path
    return None


def resolve_kubeconfig(kubeconfig: Path | None, context: str | None) -> Path:
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise ClusterError(f"kubeconfig {kubeconfig} (given with --kubeconfig) does not exist.")
        return kubeconfig
    env = os.environ.get("KUBECONFIG")
    if env:
        first = Path(env.split(os.pathsep)[0])
        if first.is_file():
            return first
    found = _from_secrets(context)
    if found:
        return found
    default = Path.home() / ".kube" / "config"
    if default.is_file():
        return default
    raise ClusterError(
        "no kubeconfig found: pass --kubeconfig, set KUBECONFIG, put one in "
        f"{secrets_dir()}/kubeconfig, or use --local for the project's local control plane."
    )


def context_names(kubeconfig: Path) -> tuple[list[str], str | None]:
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(config_file=str(kubeconfig))
    except Exception as err:
        raise ClusterError(f"{kubeconfig} is not a usable kubeconfig: {err}") from None
    return [c["name"] for c in contexts], (current or {}).get("name")


def check_context(target: Target) -> None:
    """The context must exist in the kubeconfig (an unknown one is a clear error, not a traceback)."""
    names, current = context_names(target.kubeconfig)
    if target.context is None:
        if current is None:
            raise ClusterError(f"{target.kubeconfig} has no current context: pass --context (one of: {names}).")
        return
    if target.context not in names:
        raise ClusterError(
            f"context {target.context!r} is not in {target.kubeconfig} (contexts there: "
            f"{', '.join(names) or 'none'}). Check --context, or point --kubeconfig/KUBECONFIG at the right file."
        )


@contextlib.contextmanager
def api_unreachable_is_cluster_error(target: Target, during: str) -> Iterator[None]:
    """A connection to the API server that breaks (refused, reset, timed out) is a ClusterError naming
    the target, not a urllib3 traceback."""
    import urllib3

    try:
        yield
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
        reason = getattr(err, "reason", None) or err
        raise ClusterError(
            f"lost {target.describe()} {during}: {reason}. Nothing was applied; check that the cluster is running "
            "and reachable, then run again."
        ) from None
