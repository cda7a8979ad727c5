"""The load generator's failures: each is printed as one line at the CLI edge."""

# argparse's code for a bad command line; bad knobs and an unreachable endpoint use it too.
EXIT_USAGE = 2
# The run finished but something was not accounted for (lost or duplicated records, a role died).
EXIT_FAILURE = 1


class LoadgenError(Exception):
    """A failure a user can act on; the message is one line and names the flag or file at fault."""


class ConfigError(LoadgenError):
    """Bad input, refused before anything starts (exit 2)."""
