"""Bad input is refused with one line on stderr, exit 2, before anything starts (no artifacts folder)."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from loadgen.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Runs `loadgen run ARGS` in-process; returns its one stderr line after checking the rest."""

    def check(*args: str) -> str:
        artifacts = tmp_path / "artifacts"
        try:
            code = main(["run", "--artifacts", str(artifacts), "--live-interval", "0", *args])
        except SystemExit as e:  # argparse's own refusals
            code = e.code
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2, (code, err)
        assert len(lines) == 1 and lines[0].startswith("loadgen: error: "), err
        assert out == ""
        assert not artifacts.exists(), "something started"
        return lines[0]

    return check


def test_concurrency_zero(refused):
    line = refused("--endpoint", "http://127.0.0.1:9", "--model", "m", "--concurrency", "0", "--requests", "1")
    assert line == "loadgen: error: --concurrency must be at least 1 (got 0)"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http://", "127.0.0.1:8000", "http://127.0.0.1:99999"])
def test_bad_url(refused, url):
    line = refused("--endpoint", url, "--model", "m", "--concurrency", "1", "--requests", "1")
    assert f"--endpoint {url!r}" in line


def test_unreachable_endpoint(refused):
    port = _free_port()  # nothing listens there
    line = refused("--endpoint", f"http://127.0.0.1:{port}", "--model", "m", "--concurrency", "1", "--requests", "1")
    assert line.startswith(f"loadgen: error: --endpoint http://127.0.0.1:{port}/v1/chat/completions: cannot connect")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--concurrency", "1"], "exactly one of --duration SECONDS and --requests N"),
        (["--concurrency", "1", "--requests", "5", "--duration", "2"], "exactly one of --duration"),
        (["--requests", "5"], "give --concurrency N or --request-rate R"),
        (["--request-rate", "0", "--requests", "5"], "--request-rate must be above 0"),
        (["--concurrency", "2", "--requests", "5", "--workers", "3"], "--workers 3 is more than --concurrency 2"),
        (["--concurrency", "2", "--requests", "5", "--osl", "0"], "--osl must be at least 1"),
        (["--concurrency", "2", "--requests", "5", "--ramp-up", "2", "--request-rate", "5"], "--ramp-up"),
        (["--concurrency", "x", "--requests", "5"], "argument --concurrency: invalid int value: 'x'"),
        (["--concurrency", "200000", "--workers", "1", "--requests", "5"], "above the hard limit"),
    ],
)
def test_bad_knobs(refused, args, says):
    # A listening socket, so that only the knob itself can be at fault.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        assert says in refused("--endpoint", url, "--model", "m", *args)


def test_bad_dataset_names_file_and_line(refused, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"prompt": "no text key"}) + "\n")
    line = refused(
        "--endpoint",
        "http://127.0.0.1:9",
        "--model",
        "m",
        "--concurrency",
        "1",
        "--requests",
        "1",
        "--dataset",
        str(data),
    )
    assert line == f'loadgen: error: --dataset {data}: line 2 needs a non-empty string "text"'


def test_missing_model_is_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", "--endpoint", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "loadgen: error: the following arguments are required: --model"


def test_credentials_in_the_url_are_not_printed(refused):
    port = _free_port()
    line = refused(
        "--endpoint", f"http://user:s3cret@127.0.0.1:{port}", "--model", "m", "--concurrency", "1", "--requests", "1"
    )
    assert "s3cret" not in line and "user" not in line
    assert line.startswith(f"loadgen: error: --endpoint http://***@127.0.0.1:{port}/v1/chat/completions: cannot")
