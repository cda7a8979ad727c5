"""Background processes of the real node (registry, containerd, kubelet): started detached with a
pid file and a log file, stopped by pid, and the commands around them run with one error shape."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from deploy.errors import ClusterError


def run(cmd: list[str], check: bool = True, timeout: float = 300) -> str:
    """Run a command quietly; on failure raise one ClusterError with the end of its stderr."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f}s.") from None
    if check and done.returncode != 0:
        raise ClusterError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}")
    return done.stdout


def start(cmd: list[str], pidfile: Path, logfile: Path, env: dict[str, str] | None = None) -> int:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """True while the process runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_alive(pidfile: Path) -> bool:
    pid = read_pid(pidfile)
    return pid is not None and alive(pid)


def stop(pids: list[int], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; returns when every process is gone."""
    pids = [p for p in pids if alive(p)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    # Reap our own children, so that they do not linger as zombies of a long-lived parent.
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def stop_pidfile(pidfile: Path, grace: float = 10) -> None:
    pid = read_pid(pidfile)
    if pid is not None:
        stop([pid], grace)
    pidfile.unlink(missing_ok=True)


def with_arg(needle: str) -> list[int]:
    """Processes whose command line contains `needle` as one argument (e.g. containerd's socket,
    which every shim of that containerd is started with)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle.encode() in args:
            found.append(int(entry.name))
    return found


def rss(pid: int) -> int:
    """Resident memory of a process in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
