"""Build the project's images without a Docker engine, and push them to a registry.

Tools (all Debian packages): mmdebstrap makes the Debian root filesystem of the runner's base layer
(reproducible from package names and versions, no base image from Docker Hub), and buildah assembles
and pushes the OCI images: it needs no daemon, runs here with the `vfs` storage driver and `chroot`
isolation, and its storage lives in the project's cache folder, apart from any other buildah user.

The runner and loadgen images are two layers each: the base (Debian + Python + the packages of its
image.yaml, cached by the hash of that list) and the package's code, so that a change to the code
rebuilds one small layer in seconds."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.cluster import procs
from deploy.errors import ClusterError
from deploy.paths import REPO

Log = Callable[[str], None]
SOURCE_LABEL = "kai-ml.io/source-hash"
PRUNE = Path(__file__).with_name("prune-rootfs.sh")


@dataclass(frozen=True)
class CodeImage:
    """An image of a package of this repository: its definition (<package>/image.yaml), the files
    copied to /opt/kaiml/<package>, and its title."""

    package: str
    sources: tuple[str, ...]
    title: str

    @property
    def definition(self) -> Path:
        return REPO / self.package / "image.yaml"

    def spec(self) -> dict[str, Any]:
        return yaml.safe_load(self.definition.read_text())


RUNNER = CodeImage(
    "runner", ("*.py", "kinds/*.py", "training/*.py", "result.schema.json"), "kai-ml benchmark runner (CPU)"
)
LOADGEN = CodeImage("loadgen", ("*.py",), "kai-ml loadgen (every role)")
CODE_IMAGES = (RUNNER, LOADGEN)
DEFINITION = RUNNER.definition


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kai-ml-platform" / "images"


def definition() -> dict[str, Any]:
    return RUNNER.spec()


def buildah(*args: str, timeout: float = 1800) -> str:
    store = cache_dir()
    return procs.run(
        [
            "buildah",
            "--root",
            str(store / "storage"),
            "--runroot",
            str(store / "run"),
            "--storage-driver",
            "vfs",
            *args,
        ],
        timeout=timeout,
    )


def image_exists(ref: str) -> bool:
    store = cache_dir()
    cmd = ["buildah", "--root", str(store / "storage"), "--runroot", str(store / "run"), "--storage-driver", "vfs"]
    return subprocess.run([*cmd, "inspect", "--type", "image", ref], capture_output=True, check=False).returncode == 0


def _label(ref: str, key: str) -> str:
    info = json.loads(buildah("inspect", "--type", "image", ref))
    return ((info.get("OCIv1") or {}).get("config") or {}).get("Labels", {}).get(key, "")


# -- the sandbox image
def sandbox_ref() -> str:
    spec = definition()["sandbox"]
    version = procs.run(["dpkg-query", "-W", "-f", "${Version}", spec["package"]]).strip()
    return f"{spec['repository']}:{version.replace(':', '_').replace('+', '_')}"


def build_sandbox(log: Log = print) -> str:
    """The pod sandbox image: one static busybox binary that sleeps (no pause image can be pulled)."""
    ref = sandbox_ref()
    if image_exists(ref):
        return ref
    log(f"building the sandbox image {ref}")
    ctr = buildah("from", "scratch").strip()
    try:
        buildah("copy", ctr, "/bin/busybox", "/bin/busybox")
        buildah("config", "--entrypoint", '["/bin/busybox", "sleep", "2147483647"]', "--user", "65535:65535", ctr)
        buildah("commit", "--quiet", ctr, ref)
    finally:
        buildah("rm", ctr)
    return ref


def push_sandbox(registry: str, log: Log = print) -> str:
    """Build (once) and push the sandbox image; return the reference containerd pulls."""
    ref = build_sandbox(log)
    target = f"{registry}/{ref}"
    push(ref, target)
    return target


# -- the code images (runner, loadgen)
def _hooks(spec: dict[str, Any]) -> list[str]:
    """The base's mmdebstrap customize hooks: its own, or (the runner) the prune of torch's extras."""
    return spec["base"].get("customize") or [f'{PRUNE} "$1"']


def _base_key(spec: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(spec["base"], sort_keys=True).encode())
    if "customize" not in spec["base"]:
        digest.update(PRUNE.read_bytes())
    return digest.hexdigest()[:12]


def build_base(log: Log = print, image: CodeImage = RUNNER) -> str:
    spec = image.spec()
    ref = f"{spec['repository']}-base:{_base_key(spec)}"
    if image_exists(ref):
        return ref
    tarball = cache_dir() / f"{image.package}-base-{_base_key(spec)}.tar"
    if not tarball.exists():
        rootfs(spec["base"], _hooks(spec), tarball, f"the {image.package}'s base root filesystem", log)
    log(f"importing the base layer as {ref}")
    ctr = buildah("from", "scratch").strip()
    try:
        buildah("add", ctr, str(tarball), "/")
        buildah("commit", "--quiet", ctr, ref)
    finally:
        buildah("rm", ctr)
    return ref


def rootfs(base: dict[str, Any], hooks: list[str], tarball: Path, what: str, log: Log) -> None:
    """Make a Debian root filesystem tarball with mmdebstrap: `base`'s suite, mirrors and packages
    (no recommends, no documentation or translations; licences stay), then each customize hook."""
    log(f"building {what} with mmdebstrap ({', '.join(base['packages'])}); cold: a few minutes")
    started = time.monotonic()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    cmd = [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        "--include=" + ",".join(base["packages"]),
        '--aptopt=APT::Install-Recommends "false"',
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        *(f"--customize-hook={hook}" for hook in hooks),
        base["suite"],
        str(partial),
        *base["mirrors"],
    ]
    # Its own progress lines (downloading, extracting, installing, the hooks) go to stderr.
    done = subprocess.run(cmd, stdout=sys.stderr, check=False, timeout=3600)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ClusterError(f"mmdebstrap failed (exit {done.returncode}) making {what}; see above.")
    partial.rename(tarball)
    log(f"  {what}: {tarball.stat().st_size / 2**20:.0f} MiB in {time.monotonic() - started:.0f}s")


def source_hash(image: CodeImage = RUNNER) -> str:
    digest = hashlib.sha256()
    for path in _sources(image):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    digest.update(image.definition.read_bytes())
    return digest.hexdigest()[:16]


def _sources(image: CodeImage) -> list[Path]:
    root = REPO / image.package
    return sorted({p for pattern in image.sources for p in root.glob(pattern)})


def runner_ref(tag: str) -> str:
    return code_ref(RUNNER, tag)


def code_ref(image: CodeImage, tag: str) -> str:
    return f"{image.spec()['repository']}:{tag}"


def build_runner(tag: str, log: Log = print) -> str:
    return build_code_image(RUNNER, tag, log)


def build_code_image(image: CodeImage, tag: str, log: Log = print) -> str:
    """Build a code image (the base once, the code layer when the code changed); return its local
    reference."""
    spec = image.spec()
    ref = code_ref(image, tag)
    wanted = source_hash(image)
    base = build_base(log, image)
    if image_exists(ref) and _label(ref, SOURCE_LABEL) == wanted and _label(ref, "kai-ml.io/base") == base:
        log(f"{ref} is up to date")
        return ref
    started = time.monotonic()
    ctr = buildah("from", "--pull-never", base).strip()
    target = f"/opt/kaiml/{image.package}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / image.package
            for path in _sources(image):
                dest = staged / path.relative_to(REPO / image.package)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
            buildah("copy", "--chown", "0:0", ctr, str(staged), target)
        buildah("run", "--isolation", "chroot", ctr, "--", "python3", "-m", "compileall", "-q", target)
        config = ["--user", spec["user"], "--workingdir", "/tmp", "--entrypoint", json.dumps(spec["entrypoint"])]
        for key, value in spec["env"].items():
            config += ["--env", f"{key}={value}"]
        labels = {"org.opencontainers.image.title": image.title, SOURCE_LABEL: wanted, "kai-ml.io/base": base}
        for key, value in labels.items():
            config += ["--label", f"{key}={value}"]
        buildah("config", *config, ctr)
        buildah("commit", "--quiet", ctr, ref)
    finally:
        buildah("rm", ctr)
    # The image this tag named before (vfs keeps a full copy of every image's root filesystem).
    buildah("rmi", "--prune")
    log(f"built {ref} in {time.monotonic() - started:.1f}s")
    return ref


def push(ref: str, target: str) -> None:
    """Push a local image to `target` (registry/repository:tag); plain HTTP for loopback registries."""
    host = target.split("/", 1)[0]
    tls = "false" if host.startswith(("127.0.0.1", "localhost")) else "true"
    buildah("push", "--quiet", f"--tls-verify={tls}", ref, f"docker://{target}")


def size(ref: str) -> int:
    """Bytes of the image's layers, uncompressed."""
    info = json.loads(buildah("inspect", "--type", "image", ref))
    manifest = json.loads(info.get("Manifest") or "{}")
    return sum(layer.get("size", 0) for layer in manifest.get("layers", []))


def require_tools() -> None:
    missing = [t for t in ("buildah", "mmdebstrap") if shutil.which(t) is None]
    if missing:
        raise ClusterError(
            f"Building images needs {', '.join(missing)} (Debian packages; tools/host-packages.sh installs them)."
        )
