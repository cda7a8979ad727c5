"""The runner's failures and the exit codes they map to.

The benchmark chart's podFailurePolicy turns the config-error code into FailIndex (no retry: the
config can never run); any other non-zero code counts against backoffLimitPerIndex."""

import os

EXIT_OK = 0
# Anything unexpected (a crash, CUDA unavailable on a GPU config, a driver error): retried.
EXIT_FAILURE = 1
# argparse's code for a bad command line.
EXIT_USAGE = 2
# A config the runner cannot run: unknown model or kind, bad precision or shape, bad file.
EXIT_CONFIG_ERROR = 3


def config_error_exit_code() -> int:
    """The chart passes its `runner.configErrorExitCode` as KAIML_CONFIG_ERROR_EXIT_CODE."""
    value = os.environ.get("KAIML_CONFIG_ERROR_EXIT_CODE", "")
    return int(value) if value.isdigit() and 0 < int(value) < 256 else EXIT_CONFIG_ERROR


class RunnerError(Exception):
    """A failure that a retry may cure (exit 1)."""


class ConfigError(Exception):
    """The config cannot run here, ever: a retry would fail the same way. `key` names the config key
    (`model`, `inputShape`, `modelArgs.heads`...) or the environment variable at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message
