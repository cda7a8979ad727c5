"""`./deploy.sh images build|push`: the project's images, built here without a Docker engine."""

from typing import Annotated

import typer

from deploy.console import log
from deploy.images import build as images

app = typer.Typer(
    help="The benchmark runner's image, built with mmdebstrap and buildah (no Docker engine), and pushed "
    "to a registry, e.g. the local cluster's (`./deploy.sh cluster status` prints its address).",
    no_args_is_help=True,
)

TagOption = Annotated[str, typer.Option("--tag", help="Image tag (the same --tag as `bench run` and the platform).")]
RegistryOption = Annotated[
    str, typer.Option("--registry", help="Registry host[:port][/prefix] (the same --registry as `bench run`).")
]


@app.command("build")
def build_cmd(tag: TagOption = "dev") -> None:
    """Build the runner image (base layer once, the runner's code when it changed); print its reference."""
    images.require_tools()
    ref = images.build_runner(tag, log=log)
    log(f"{ref}: {images.size(ref) / 2**20:.0f} MiB uncompressed")
    typer.echo(ref)


@app.command("push")
def push_cmd(registry: RegistryOption, tag: TagOption = "dev") -> None:
    """Build (when needed) and push the runner image to REGISTRY/kai-ml/benchmark-runner:TAG."""
    images.require_tools()
    ref = images.build_runner(tag, log=log)
    target = f"{registry.rstrip('/')}/{ref}"
    images.push(ref, target)
    log(f"pushed {target}")
    typer.echo(target)
