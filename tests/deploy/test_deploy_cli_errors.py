"""Bad input through the real entry point: one paragraph on stderr, a documented non-zero exit code,
nothing applied (none of these reaches a cluster: the kubeconfigs point nowhere)."""

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: gone
  context: {cluster: gone, user: u}
current-context: gone
"""


def deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "400", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(UNREACHABLE_KUBECONFIG)
    return path


def one_paragraph(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_environment(suite, kubeconfig):
    r = deploy("--env", "nope", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert "unknown environment 'nope'" in one_paragraph(r)


def test_invalid_values_file_names_file_and_line(suite, kubeconfig, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [unclosed\n")
    r = deploy("--env", "dev", "-f", str(bad), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert f"{bad}:3:1: invalid YAML" in one_paragraph(r)


def test_missing_values_file(suite, kubeconfig, tmp_path):
    r = deploy("--env", "dev", "-f", str(tmp_path / "missing.yaml"), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert "missing.yaml (given with -f) does not exist" in one_paragraph(r)


def test_schema_violation_names_the_key(suite, kubeconfig):
    r = deploy("--env", "dev", "--set", "coordinator.replicas=-1", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    text = one_paragraph(r)
    assert "coordinator.replicas (set at --set coordinator.replicas=-1)" in text and "minimum" in text


def test_unknown_component_in_only(suite, kubeconfig):
    r = deploy("--env", "dev", "--only", "coordinator,wasm", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 64  # a usage error: never `diff`'s 2 (changes pending)
    assert "unknown component in --only: wasm" in one_paragraph(r)


@pytest.mark.parametrize(
    "args",
    [
        ("--env", "dev", "--no-such-option"),  # Click's own usage errors exit 2 unless told otherwise
        ("diff", "--only"),  # an option without its value
        ("nope",),  # an unknown command
        ("nodes", "--assign", "gpu"),  # a command's own BadParameter
    ],
)
def test_usage_errors_exit_64(suite, args):
    r = deploy(*args)
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr


def test_missing_helm_binary(suite, kubeconfig, tmp_path):
    r = deploy("--env", "dev", "--kubeconfig", str(kubeconfig), env={"KAIML_TOOLS_BIN": str(tmp_path)})
    assert r.returncode == 3
    assert "`helm` is not installed" in one_paragraph(r)


def test_unreachable_context(suite, kubeconfig):
    r = deploy("--env", "dev", "--context", "gone", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 4
    assert "does not answer at https://127.0.0.1:1" in one_paragraph(r)


def test_unknown_context(suite, kubeconfig):
    r = deploy("--env", "dev", "--context", "elsewhere", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 4
    assert "context 'elsewhere' is not in" in one_paragraph(r)


def test_root_options_before_a_command_are_refused(suite):
    r = deploy("--env", "prod", "plan")
    assert r.returncode == 64
    assert "must come after the command" in r.stderr


def test_plan_prints_levels(suite):
    r = deploy("plan", "--env", "staging", "--only", "coordinator", "--with-deps")
    assert r.returncode == 0, r.stderr
    assert "level 0:" in r.stderr and "platform-cluster" in r.stderr and "staging-coordinator" in r.stderr
    assert "staging-cache" not in r.stderr.split("not planned")[0]


def test_help_documents_exit_codes():
    r = deploy("--help")
    text = " ".join(r.stdout.replace("│", " ").split())
    assert "Exit codes: 0 success" in text
    assert "2 `diff`: changes pending" in text and "64 usage error" in text


def test_a_server_below_the_charts_floor_is_refused_with_the_floor_named(suite, tmp_path):
    """A real HTTP server that says it is Kubernetes 1.32 (and knows nothing else): the charts'
    kubeVersion (>=1.33) is the floor, named with the Chart.yaml that sets it; nothing is applied."""
    with fake_api_server("v1.32.4", "32") as url:
        kubeconfig = tmp_path / "old"
        kubeconfig.write_text(UNREACHABLE_KUBECONFIG.replace("https://127.0.0.1:1", url))
        r = deploy("--env", "dev", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 1, r.stderr
    text = one_paragraph(r)
    assert "the server runs Kubernetes v1.32.4; the charts need 1.33 or newer" in text
    assert str(suite.charts / "platform" / "Chart.yaml") in text


# The real charts and environments from here on: the umbrella's schema and the image rules are theirs.


def test_non_utf8_values_file_is_a_values_error(kubeconfig, tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("coordinator:\n  replicas: 2 # caf\xe9\n".encode("latin-1"))
    r = deploy("--env", "dev", "-f", str(bad), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert f"{bad}: not UTF-8 text (byte 0xe9" in one_paragraph(r)


def test_a_directory_given_as_values_file(kubeconfig, tmp_path):
    r = deploy("--env", "dev", "-f", str(tmp_path), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert f"values file {tmp_path} is a directory" in one_paragraph(r)


def test_an_oversized_values_file_is_refused_before_helm(kubeconfig, tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("coordinator:\n  podAnnotations:\n" + "".join(f"    k{i}: {'x' * 100}\n" for i in range(12000)))
    r = deploy("--env", "dev", "-f", str(big), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert "over the 1,048,576 that a Helm release can hold" in one_paragraph(r)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--set", "nonexistent.key=1"), "nonexistent (set at --set nonexistent.key=1): Additional properties"),
        (("--set", "coordinator.enabled=nope"), "coordinator.enabled (set at --set coordinator.enabled=nope)"),
        (("--set", "cache.enabled=false"), None),  # the boolean is fine: the control case
    ],
)
def test_the_umbrella_schema_checks_the_merged_values(kubeconfig, args, expected):
    r = (
        deploy("--env", "dev", *args, "--dry-run")
        if expected is None
        else deploy("--env", "dev", *args, "--kubeconfig", str(kubeconfig))
    )
    if expected is None:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 5
    text = one_paragraph(r)
    assert expected in text and "charts/platform/values.schema.json" in text


def test_an_unknown_top_level_key_in_a_file_is_named_with_its_line(kubeconfig, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("coordinatr:\n  replicas: 3\ncache:\n  enabled: 'false'\n")
    r = deploy("--env", "dev", "-f", str(typo), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    text = one_paragraph(r)
    assert f"cache.enabled (set at {typo}:4): 'false' is not of type 'boolean'" in text
    assert f"coordinatr (set at {typo}:1)" in text


@pytest.mark.parametrize(
    ("flag", "value", "key"),
    [
        ("--registry", "https://reg.example.com", "global.image.registry"),
        ("--registry", "reg.example.com/", "global.image.registry"),
        ("--tag", "v1 beta", "global.image.tag"),
        ("--tag", "-v1", "global.image.tag"),
    ],
)
def test_invalid_image_references_are_refused(kubeconfig, flag, value, key):
    r = deploy("--env", "dev", f"{flag}={value}", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    text = one_paragraph(r)
    assert f"{key} (set at {flag}={value}): {json.dumps(value)} is not a " in text


def test_valid_image_references_render(tmp_path):
    r = deploy("--env", "dev", "--registry", "registry.example.com:5000/team", "--tag", "v1.2.3_rc-1", "--dry-run")
    assert r.returncode == 0, r.stderr


def test_requests_above_limits_are_refused_before_helm(kubeconfig):
    r = deploy("--env", "dev", "--set", "coordinator.resources.requests.cpu=64", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    text = one_paragraph(r)
    assert "coordinator.resources.requests.cpu (set at --set coordinator.resources.requests.cpu=64)" in text
    assert "request 64 is above the limit" in text


@contextlib.contextmanager
def fake_api_server(git_version: str, minor: str, others: str = "404") -> Iterator[str]:
    """A real HTTP server on loopback that answers /version as Kubernetes `git_version` would; every
    other path gets a 404 (`others="404"`) or a dropped connection (`others="drop"`)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.startswith("/version") and others == "drop":
                self.connection.close()  # no answer at all
                return
            version = {"gitVersion": git_version, "major": "1", "minor": minor, "platform": "linux/amd64"}
            version |= dict.fromkeys(("buildDate", "compiler", "gitCommit", "gitTreeState", "goVersion"), "x")
            found = self.path.startswith("/version")
            body = json.dumps(version if found else {"kind": "Status", "code": 404}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_losing_the_api_server_during_preflight_is_exit_4(tmp_path):
    """A real server that answers /version and then drops every other connection: the fault of an API
    server that goes away between two requests."""
    with fake_api_server("v1.36.3", "36", others="drop") as url:
        kubeconfig = tmp_path / "flaky"
        kubeconfig.write_text(UNREACHABLE_KUBECONFIG.replace("https://127.0.0.1:1", url))
        r = deploy("--env", "dev", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 4, r.stderr
    text = one_paragraph(r)
    assert "during the preflight checks" in text and "Nothing was applied" in text
