"""One exception type per failure a user can act on; the CLI prints each as one paragraph."""


def _trim(text: str, limit: int = 1500) -> str:
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DeployError(Exception):
    """Base class: `str(err)` is the paragraph shown to the user."""

    exit_code = 1


class ToolMissingError(DeployError):
    """A required binary (helm, kube-apiserver, kwokctl, ...) is not installed."""

    exit_code = 3


class ClusterError(DeployError):
    """The cluster could not be started, reached or stopped."""

    exit_code = 4


class ValuesError(DeployError):
    """An environment or values file is missing or invalid."""

    exit_code = 5


class PlanError(DeployError):
    """The selection cannot be planned (unknown or disabled component): a usage error."""

    exit_code = 2


class DeviceError(DeployError):
    """`bench run --local` cannot run the sweep's configs on this machine's devices: a usage error
    (another --device, or a cluster)."""

    exit_code = 2


class HelmError(DeployError):
    """A helm command failed; the message is helm's own, trimmed."""

    exit_code = 1

    def __init__(self, action: str, stderr: str):
        self.action = action
        self.stderr = stderr.strip()
        super().__init__(f"{action} failed: {_trim(self.stderr)}")


class ReleaseFailedError(DeployError):
    """A release failed to apply; the summary says what was applied and what was not started."""

    exit_code = 1


class TemplateError(DeployError):
    """A chart did not render with the run's values (nothing was applied)."""

    exit_code = 5


class PreflightError(DeployError):
    """A preflight check failed with --missing-pools=fail or an unsupported server."""

    exit_code = 1


class NodesError(DeployError):
    """The cluster's nodes do not match the node pools (`nodes` without --apply)."""

    exit_code = 1


class ChartError(DeployError):
    """A chart of the suite cannot be prepared (its dependencies fail to package)."""


class InterruptedByUser(DeployError):
    """Ctrl-C: the message says what was applied, what was interrupted and what did not start."""

    exit_code = 130


class PlacementError(DeployError):
    """A run's ranks cannot all start: a named node was refused before anything was applied, or the
    ranks did not all start within the start timeout and the whole run was released."""

    exit_code = 1
