"""Open-file limits: each connection is a file descriptor, so a role that holds thousands of
connections raises its soft RLIMIT_NOFILE itself (never above the hard limit, which needs root)."""

import resource

from loadgen.errors import ConfigError

# Sockets of ZMQ, logs, the interpreter's own files.
HEADROOM = 256


def needed_files(connections: int) -> int:
    return connections + HEADROOM


def hard_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def check_files(connections: int, what: str) -> None:
    """Refuse up front a load that one process cannot hold under the hard limit."""
    hard = hard_limit()
    if hard != resource.RLIM_INFINITY and needed_files(connections) > hard:
        raise ConfigError(
            f"{what}: {connections} connections in one process need {needed_files(connections)} open files, "
            f"above the hard limit of {hard} (ulimit -Hn); add workers or raise the hard limit"
        )


def raise_files(connections: int) -> int:
    """Raise the soft limit to what `connections` need (or to the hard limit); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed_files(connections)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    return soft
