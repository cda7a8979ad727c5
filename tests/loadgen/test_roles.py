"""The roles started one by one as a cluster would start them: the controller on fixed ports, a
worker and a record processor chosen by LOADGEN_ROLE and pointed at it by environment variables."""

import json
import os
import socket
import subprocess
import sys

from loadgen import export
from loadgen.config import Ports


def _free_ports() -> Ports:
    socks = [socket.socket() for _ in range(6)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return Ports(*(s.getsockname()[1] for s in socks))
    finally:
        for s in socks:
            s.close()


def test_controller_worker_and_record_processor_started_separately(target, tmp_path):
    endpoint = target("--ttft-ms", "20", "--itl-ms", "5", "--output-tokens", "4")
    ports = _free_ports()
    controller = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadgen",
            "controller",
            "--endpoint",
            endpoint.url,
            "--model",
            "m",
            "--streaming",
            "--concurrency",
            "4",
            "--requests",
            "40",
            "--osl",
            "4",
            "--workers",
            "1",
            "--record-processors",
            "1",
            "--bind-host",
            "127.0.0.1",
            "--ports",
            ports.as_arg(),
            "--artifacts",
            str(tmp_path),
            "--name",
            "pods",
            "--live-interval",
            "0",
            "--result-line",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    env = {**os.environ, "LOADGEN_CONTROLLER_HOST": "127.0.0.1", "LOADGEN_PORTS": ports.as_arg()}
    roles = [
        subprocess.Popen(
            [sys.executable, "-m", "loadgen"],
            env={**env, "LOADGEN_ROLE": role},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role in ("worker", "record-processor")
    ]
    try:
        out, err = controller.communicate(timeout=60)
        assert controller.returncode == 0, err
        assert [role.wait(30) for role in roles] == [0, 0]
    finally:
        for proc in (controller, *roles):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    summary = json.loads((tmp_path / "pods" / "profile_export_aiperf.json").read_text())
    assert summary["accounting"]["sent"] == summary["accounting"]["recorded"] == 40
    assert {r["role"] for r in summary["engine"]["roles"]} == {"worker", "record-processor"}
    assert (tmp_path / "pods" / "READY").is_file()
    assert "sent 40 = recorded 40 + errors 0" in out
    # After the summary line, the per-request records for whoever reads the pod's log.
    assert export.find_result(out)["accounting"]["recorded"] == 40
    assert export.find_records(out) == (tmp_path / "pods" / export.JSONL).read_bytes()
