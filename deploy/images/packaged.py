"""Images made of Debian packages only (deploy/images/redis.yaml): one layer, a root filesystem that
mmdebstrap makes from the definition's packages, cached by the hash of the definition (the tarball and
the image both), so that a re-run costs a lookup. Uses build.py's buildah store and push."""

import hashlib
import json
from pathlib import Path

import yaml

from deploy.images import build
from deploy.images.build import Log

REDIS = Path(__file__).with_name("redis.yaml")


def ref(definition: Path) -> str:
    """The local reference: the definition's repository, tagged with the hash of the definition."""
    spec = yaml.safe_load(definition.read_text())
    return f"{spec['repository']}:{hashlib.sha256(definition.read_bytes()).hexdigest()[:12]}"


def _tarball(image: str) -> Path:
    return build.cache_dir() / f"{image.replace('/', '-').replace(':', '-')}.tar"


def _drop_stale(image: str) -> None:
    """Remove the images and tarballs of older definitions (vfs keeps a full copy of each)."""
    repository = image.rsplit(":", 1)[0]
    current = _tarball(image)
    for old in current.parent.glob(_tarball(f"{repository}:*").name):
        if old != current:
            old.unlink()
    names = build.buildah("images", "--format", "{{.Name}}:{{.Tag}}").split()
    stale = [n for n in names if n.rsplit(":", 1)[0].endswith("/" + repository) and not n.endswith("/" + image)]
    if stale:
        build.buildah("rmi", *stale)


def build_image(definition: Path, log: Log = print) -> str:
    """Build the definition's image once; return its local reference."""
    spec = yaml.safe_load(definition.read_text())
    image = ref(definition)
    if build.image_exists(image):
        return image
    tarball = _tarball(image)
    if not tarball.exists():
        base = spec["base"]
        build.rootfs(base, base.get("customize", []), tarball, f"the root filesystem of {spec['repository']}", log)
    ctr = build.buildah("from", "scratch").strip()
    try:
        build.buildah("add", ctr, str(tarball), "/")
        config = ["--user", spec["user"], "--workingdir", "/tmp", "--entrypoint", json.dumps(spec["entrypoint"])]
        for key, value in spec.get("env", {}).items():
            config += ["--env", f"{key}={value}"]
        build.buildah("config", *config, ctr)
        build.buildah("commit", "--quiet", ctr, image)
    finally:
        build.buildah("rm", ctr)
    _drop_stale(image)
    log(f"built {image} ({build.size(image) / 2**20:.0f} MiB)")
    return image


def push_image(definition: Path, registry: str, log: Log = print) -> str:
    """Build (once) and push; return the reference the cluster pulls."""
    image = ref(definition)
    target = f"{registry}/{image}"
    build.push(build_image(definition, log), target)
    return target
