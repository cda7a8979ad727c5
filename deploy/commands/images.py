"""`./deploy.sh images build|push`: the project's images, built here without a Docker engine."""

from typing import Annotated

import typer

from deploy.console import log
from deploy.images import build as images

app = typer.Typer(
    help="The benchmark runner's and loadgen's images, built with mmdebstrap and buildah (no Docker engine), "
    "and pushed to a registry, e.g. the local cluster's (`./deploy.sh cluster status` prints its address).",
    no_args_is_help=True,
)

TagOption = Annotated[
    str, typer.Option("--tag", help="Image tag (the same --tag as `bench run`, `load run` and the platform).")
]
RegistryOption = Annotated[
    str, typer.Option("--registry", help="Registry host[:port][/prefix] (the same --registry as `bench run`).")
]
NAMES = {image.package: image for image in images.CODE_IMAGES}
OnlyOption = Annotated[
    list[str] | None,
    typer.Option("--image", help=f"Only this image ({', '.join(NAMES)}); repeatable. Default: every one."),
]


def _chosen(only: list[str] | None) -> list[images.CodeImage]:
    unknown = [name for name in only or [] if name not in NAMES]
    if unknown:
        raise typer.BadParameter(f"--image {', '.join(unknown)}: not one of {', '.join(NAMES)}.")
    return [NAMES[name] for name in only] if only else list(images.CODE_IMAGES)


@app.command("build")
def build_cmd(tag: TagOption = "dev", only: OnlyOption = None) -> None:
    """Build the images (each base layer once, the code layer when the code changed); print their references."""
    images.require_tools()
    for image in _chosen(only):
        ref = images.build_code_image(image, tag, log=log)
        log(f"{ref}: {images.size(ref) / 2**20:.0f} MiB uncompressed")
        typer.echo(ref)


@app.command("push")
def push_cmd(registry: RegistryOption, tag: TagOption = "dev", only: OnlyOption = None) -> None:
    """Build (when needed) and push the images as REGISTRY/kai-ml/benchmark-runner:TAG and
    REGISTRY/kai-ml/loadgen:TAG."""
    images.require_tools()
    for image in _chosen(only):
        ref = images.build_code_image(image, tag, log=log)
        target = f"{registry.rstrip('/')}/{ref}"
        images.push(ref, target)
        log(f"pushed {target}")
        typer.echo(target)
