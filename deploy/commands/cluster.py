"""`./deploy.sh cluster up|down|status`: the project's local control plane."""

from typing import Annotated

import typer

from deploy import values as env_values
from deploy.cluster import procs
from deploy.cluster.local import DEFAULT_NAME, LocalCluster
from deploy.cluster.realnode import COMPONENTS
from deploy.console import log
from deploy.nodepools import node_pools

app = typer.Typer(
    help="The project's local control plane (etcd, kube-apiserver, controller manager, scheduler, "
    "kwok fake nodes made from the environment's node pools). Used when no --context is given.",
    no_args_is_help=True,
)

EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment whose node pools become fake nodes.")]
NameOption = Annotated[str, typer.Option("--name", help="Name of the local cluster.")]
RealNodeOption = Annotated[
    str | None,
    typer.Option(
        "--real-node",
        help="Also start one real node (kubelet, containerd, runc; needs root) in this node pool, with a local "
        "image registry, e.g. --real-node cpu-optimized.",
    ),
]


def local_cluster_up(env: str, name: str = DEFAULT_NAME, real_node: str | None = None) -> LocalCluster:
    """Start (or reuse) the local cluster with fake nodes for ENV's node pools."""
    cluster = LocalCluster(name, real_node_pool=real_node)
    cluster.up(node_pools(env_values.load_environment(env)), log=log)
    return cluster


@app.command("up")
def up(env: EnvOption = "dev", name: NameOption = DEFAULT_NAME, real_node: RealNodeOption = None) -> None:
    """Start (or reuse) the local cluster with fake nodes for ENV's node pools; print its kubeconfig path."""
    cluster = local_cluster_up(env, name, real_node)
    typer.echo(cluster.kubeconfig)
    log(f"use it with: export KUBECONFIG={cluster.kubeconfig}")


@app.command("down")
def down(name: NameOption = DEFAULT_NAME) -> None:
    """Stop the local cluster and delete its state (a no-op when there is none)."""
    LocalCluster(name).down()
    log(f"local cluster {name!r} removed")


@app.command("status")
def status(name: NameOption = DEFAULT_NAME) -> None:
    """Say whether the local cluster runs, where its kubeconfig is and how much memory it uses."""
    cluster = LocalCluster(name)
    if not cluster.exists():
        log(f"local cluster {name!r} does not exist (start it with `./deploy.sh cluster up`)")
        raise typer.Exit(1)
    state = "running" if cluster.healthy() else "not answering"
    rss = cluster.memory_rss()
    log(f"local cluster {name!r}: {state}; kubeconfig {cluster.kubeconfig}")
    for component, used in sorted(rss.items()):
        log(f"  {component:<24} {used / 2**20:8.1f} MiB")
    log(f"  {'total':<24} {sum(rss.values()) / 2**20:8.1f} MiB")
    real = cluster.real_node()
    if real.exists():
        info, running = real.info(), real.processes()
        state = "running" if running.keys() >= set(COMPONENTS) else "not running"
        log(f"real node {info.get('node', '?')} ({info.get('ip', '?')}): {state}")
        for component, pid in running.items():
            log(f"  {component:<24} {procs.rss(pid) / 2**20:8.1f} MiB")
        log(
            f"  image registry: {info.get('registry', '?')} (./deploy.sh images push --registry {info.get('registry')})"
        )
