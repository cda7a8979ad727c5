"""`./deploy.sh cluster up|down|status`: the project's local control plane."""

from typing import Annotated

import typer

from deploy.cluster import objectstore, procs, supervise
from deploy.cluster.controlplane import DEFAULT_NAME, LocalCluster
from deploy.cluster.realnode import COMPONENTS, DEFAULT_REAL_POOL
from deploy.commands import options as o
from deploy.console import log
from deploy.platform.nodepools import node_pools
from deploy.platform.values import Inputs, environment_values

app = typer.Typer(
    help="The project's local control plane (etcd, kube-apiserver, controller manager, scheduler, "
    "kwok fake nodes made from the environment's node pools, and one real node that runs containers, with a "
    "local image registry). Used when no --context is given.",
    no_args_is_help=True,
)

EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment whose node pools become fake nodes.")]
NameOption = Annotated[str, typer.Option("--name", help="Name of the local cluster.")]
RealNodeOption = Annotated[
    str | None,
    typer.Option(
        "--real-node",
        metavar="POOL",
        help=f"The node pool whose labels and taints the real node (kubelet, containerd, runc; needs root) "
        f"carries. Default: {DEFAULT_REAL_POOL} (values/dev.yaml: its own label and taint) for a new cluster, the "
        "pool it has for an existing one.",
    ),
]
NoRealNodeOption = Annotated[
    bool,
    typer.Option(
        "--no-real-node", help="kwok fake nodes only: the real node needs root and runs containers, these need neither."
    ),
]


@app.command("up")
def up(
    env: EnvOption = "dev",
    name: NameOption = DEFAULT_NAME,
    real_node: RealNodeOption = None,
    no_real_node: NoRealNodeOption = False,
) -> None:
    """Start the local cluster: fake nodes for ENV's node pools and one real node that runs containers, with
    a local image registry; print its kubeconfig path. An existing cluster is reused, its stopped components
    started again from its data (it is never replaced)."""
    if real_node and no_real_node:
        raise typer.BadParameter("--real-node and --no-real-node: give one of them.")
    folders = o.folders()
    values = environment_values(Inputs(env=env, local=True), folders["values_dir"], folders["charts_dir"])
    cluster = LocalCluster(name)
    cluster.real_node_pool = None if no_real_node else real_node or _default_real_pool(cluster)
    cluster.up(node_pools(values), log=log)
    typer.echo(cluster.kubeconfig)
    log(f"use it with: export KUBECONFIG={cluster.kubeconfig}")


def _default_real_pool(cluster: LocalCluster) -> str | None:
    """A new cluster gets the real node in DEFAULT_REAL_POOL; an existing one keeps what it has (a real node
    added to a cluster created without one would lack the API server's in-cluster address)."""
    if not cluster.exists():
        return DEFAULT_REAL_POOL
    pool = cluster.real_node().pool_name()
    if pool is None:
        log(
            f"local cluster {cluster.name!r} has no real node (it was made with --no-real-node): kwok nodes only. "
            f"`./deploy.sh cluster down --name {cluster.name}` and `cluster up` make one with it."
        )
    return pool


@app.command("down")
def down(name: NameOption = DEFAULT_NAME) -> None:
    """Stop the local cluster (and its object store, if one runs) and delete its state (a no-op when there is
    none): the only command that removes a cluster."""
    LocalCluster(name).down()
    objectstore.stop_detached(name)
    log(f"local cluster {name!r} removed")


store = typer.Typer(
    help="A local S3-compatible object store (moto's server) for training runs: checkpoints, models, logs. "
    "In memory: its objects go with it.",
    no_args_is_help=True,
)
app.add_typer(store, name="store")

HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        help="The address it listens on: 127.0.0.1 (runs on this machine), or the host end of the real node's "
        "link (10.213.N.1: pods on the real node reach this machine there). Never a wildcard.",
    ),
]


@store.command("up")
def store_up(name: NameOption = DEFAULT_NAME, host: HostOption = "127.0.0.1") -> None:
    """Start the store (or find it running) and print its endpoint and bucket; its key pair goes to a file of
    KEY=VALUE lines readable by you only, never to the output (give it to `train submit
    --credentials-env-file` or `secrets set training/NAME --from-env-file`)."""
    info = objectstore.start_detached(name, host)
    typer.echo(info["endpoint"])
    creds = objectstore.credentials_file(name)
    log(f"object store {info['endpoint']}, bucket {info['bucket']}; key pair in {creds}")
    log(
        "use it with: --set objectStore.endpoint=" + info["endpoint"] + f" --credentials-env-file {creds} "
        f"(or `./deploy.sh secrets set training/r2-credentials --from-env-file {creds}` for a cluster)"
    )


@store.command("down")
def store_down(name: NameOption = DEFAULT_NAME) -> None:
    """Stop the store; its objects and key pair go with it."""
    if objectstore.stop_detached(name):
        log(f"object store of {name!r} stopped")
    else:
        log(f"no object store of {name!r} runs")


@app.command("status")
def status(name: NameOption = DEFAULT_NAME) -> None:
    """Say whether the local cluster runs (each component, and its supervisor, running or not), where
    its kubeconfig is and how much memory it uses. Exit 0 when it is whole, 1 otherwise (missing, degraded
    or not answering). Reads only: a cluster in trouble is reported, not changed."""
    cluster = LocalCluster(name)
    if not cluster.exists():
        log(f"local cluster {name!r} does not exist (start it with `./deploy.sh cluster up`)")
        raise typer.Exit(1)
    states = cluster.component_states()
    stopped = [c for c, up in states.items() if not up]
    answers = cluster.healthy()
    if not answers:
        state = "not answering"
    elif stopped:
        state = f"degraded ({len(states) - len(stopped)} of {len(states)} running)"
    else:
        state = "running"
    rss = cluster.memory_rss()
    log(f"local cluster {name!r}: {state}; kubeconfig {cluster.kubeconfig}")
    for component, up in states.items():
        used = f"{rss[component] / 2**20:8.1f} MiB" if component in rss else ""
        held = " (held)" if supervise.held(cluster.cluster_dir, component) else ""
        log(f"  {component:<24} {'running' if up else 'not running' + held:<18} {used}")
    log(f"  {'total':<24} {'':<18} {sum(rss.values()) / 2**20:8.1f} MiB")
    real = cluster.real_node()
    if real.exists():
        info, running = real.info(), real.processes()
        missing = sorted(set(COMPONENTS) - running.keys())
        if missing:
            stopped.append("real node")
        state = f"not running: {', '.join(missing)}" if missing else "running"
        log(f"real node {info.get('node', '?')} ({info.get('ip', '?')}): {state}")
        for component, pid in running.items():
            log(f"  {component:<24} {procs.rss(pid) / 2**20:8.1f} MiB")
        log(
            f"  image registry: {info.get('registry', '?')} (./deploy.sh images push --registry {info.get('registry')})"
        )
    if stopped or not answers:
        supervised = states.get("supervisor", False)
        log(
            "its supervisor restarts the stopped components that are not held (backing off up to 30s); see "
            f"{cluster.cluster_dir / 'logs'}"
            if supervised
            else f"`./deploy.sh cluster up --name {name}` restarts it from its data; see {cluster.cluster_dir / 'logs'}"
        )
        raise typer.Exit(1)
