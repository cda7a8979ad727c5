"""One exception type per failure a user can act on; the CLI prints each as one paragraph."""


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
