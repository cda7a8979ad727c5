"""Faults injected into the local control plane, for the tests that must survive them."""

import os
import signal
import subprocess
import time
from pathlib import Path

from deploy.cluster.local import LocalCluster, _alive


def restart_apiserver(cluster: LocalCluster, downtime: float) -> None:
    """Kill kube-apiserver and start it again, same binary, flags, folder and environment."""
    pid = cluster._pids()["kube-apiserver"]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    cwd = os.readlink(f"/proc/{pid}/cwd")
    environ = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)
    time.sleep(downtime)
    log = open(cluster.cluster_dir / "logs" / "kube-apiserver.restarted.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(argv, cwd=cwd, env=environ, stdout=log, stderr=log, start_new_session=True)
    (cluster.cluster_dir / "pids" / "kube-apiserver.pid").write_text(str(proc.pid))
