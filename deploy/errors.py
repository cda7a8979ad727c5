"""One exception type per failure a user can act on; the CLI prints each as one paragraph. The exit
codes, one meaning each (`./deploy.sh --help` and the README print this table):"""

EX_CHANGES = 2  # `diff` only: something would change (helmfile's --detailed-exitcode)
EX_USAGE = 64  # sysexits.h EX_USAGE: the command line is wrong (Click's own usage errors included)

EXIT_CODES = {
    0: "success (for `diff`: nothing would change)",
    1: "a release or check failed",
    EX_CHANGES: "`diff`: changes pending",
    3: "a required tool is missing",
    4: "the cluster could not be reached or started",
    5: "an environment or values file is invalid",
    EX_USAGE: "usage error (unknown command or option, bad option value, --only naming no component)",
    130: "interrupted (Ctrl-C, after saying what was applied)",
}


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

    exit_code = EX_USAGE


class DeviceError(DeployError):
    """`bench run --local` cannot run the sweep's configs on this machine's devices: a usage error
    (another --device, or a cluster)."""

    exit_code = EX_USAGE


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
