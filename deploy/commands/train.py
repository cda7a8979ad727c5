"""`./deploy.sh train submit|list|status|logs|artifacts|follow|results|stop`: training runs as
charts/training releases, or (`--executor local`) as a runner process on this machine. The commands parse
and print; deploy/workloads/train does the work."""

import json
import os
import shutil
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploy.commands import options as o
from deploy.commands import workload as w
from deploy.console import console, escape, log, say
from deploy.errors import ClusterError, PlanError
from deploy.kube import secrets
from deploy.kube import watch as kube
from deploy.workloads import launch, podlogs
from deploy.workloads.release import with_sets
from deploy.workloads.store import launched_values, read_records
from deploy.workloads.train import progress
from deploy.workloads.train.artifacts import KeyPair, download, from_cluster
from deploy.workloads.train.onhost import executor_of, mark
from deploy.workloads.train.spec import check_store_reachable, with_store_egress
from deploy.workloads.train.workload import TRAIN, job_name

app = typer.Typer(help="Training runs: submit, follow, status, logs, stop, artifacts.", no_args_is_help=True)


class Executor(StrEnum):
    auto = "auto"
    kubernetes = "kubernetes"
    local = "local"


ExecutorOpt = Annotated[
    Executor,
    typer.Option(
        "--executor",
        help="kubernetes: a Job on the cluster (--context/--kubeconfig, or --local: the project's local control "
        "plane); local: a runner process on this machine, no cluster (needs --credentials-env-file); auto: the "
        "cluster when it answers (the local control plane only when it is running), else this machine, said in "
        "one line. Both write the same records to runs/train-<name>/ and the same objects to the store.",
    ),
]
CredentialsFile = Annotated[
    Path | None,
    typer.Option(
        "--credentials-env-file",
        help="The object store's key pair as KEY=VALUE lines `access-key=...` and `secret-key=...` (the file "
        "given to `secrets set`): for --executor local, and for `artifacts` without a cluster. Never printed.",
        exists=True,
        dir_okay=False,
    ),
]
run_arg = Annotated[str, typer.Argument(help="The training run's name (its spec's `name`).", metavar="NAME")]


def _runs_root() -> Path:
    return o.request(env="dev").runs_root


def _keys(path: Path) -> KeyPair:
    return KeyPair.of(secrets.read_env_file(path), str(path))


def _answers(ctx: typer.Context, env_values: dict[str, Any]) -> str | None:
    """None when the command's cluster answers, else why not (for --executor auto)."""
    from deploy.platform.session import connect

    req = o.request_from(ctx)
    if not req.local and req.inputs.context is None and req.kubeconfig is None:
        from deploy.cluster.controlplane import LocalCluster

        return None if LocalCluster().running() else "no --context was given and the local control plane is not running"
    try:
        target = connect(req, env_values)
        from kubernetes import client

        client.VersionApi(target.api_client()).get_code(_request_timeout=5)
    except Exception as err:  # any failure to reach it: refused, timed out, bad credentials, unknown context
        return f"{target_name(req)} does not answer ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
    return None


def target_name(req: Any) -> str:
    return f"context {req.inputs.context}" if req.inputs.context else "the kubeconfig's cluster"


@app.command("submit")
def submit_cmd(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="The training spec (YAML).", exists=True, dir_okay=False)],
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    executor: ExecutorOpt = Executor.auto,
    credentials_env_file: CredentialsFile = None,
    values_files: o.ValuesFiles = None,
    registry: o.Registry = None,
    tag: o.Tag = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key.path=value on charts/training's values; repeatable.")
    ] = None,
    release_namespace: w.ReleaseNamespace = None,
    timeout: o.Timeout = "5m",
    do_follow: w.Follow = True,
    restart: w.Restart = False,
) -> None:
    """Check the spec against the environment (refused before anything is applied, the key named), then run
    it: on the cluster, the release train-<name> installed without waiting (its credentials Secret must
    exist) and followed until the run has its result; or on this machine (--executor local), a runner process.
    A run submitted before with the same values is picked up (it resumes from its latest checkpoint).
    Exit 0 with a result, 1 when the run failed."""
    req = o.request_from(ctx, values=values_files)
    env_values = w.environment(req)
    values = with_store_egress(with_sets(TRAIN.plan(spec_file, env_values), list(sets or [])))
    name = TRAIN.run_name(values)
    chosen = executor
    if executor == Executor.auto:
        why = _answers(ctx, env_values)
        chosen = Executor.kubernetes if why is None else Executor.local
        if why is not None:
            log(f"{why}: running training run {name} here, as a local subprocess (--executor local)")
    if chosen == Executor.local:
        if executor == Executor.local and (local or context or kubeconfig):
            raise typer.BadParameter(
                "--executor local runs on this machine: it takes no --local, --context or --kubeconfig."
            )
        if credentials_env_file is None:
            raise PlanError(
                f"training run {name} runs on this machine, where no Secret gives it the object store's key pair: "
                "pass --credentials-env-file F (KEY=VALUE lines access-key=... and secret-key=..., the file "
                "`./deploy.sh secrets set training/NAME --from-env-file F` takes)."
            )
        from deploy.workloads.train.onhost import run_here

        raise typer.Exit(run_here(values, req.runs_root, _keys(credentials_env_file)))
    check_store_reachable(values, env_values)
    cluster = w.cluster_of(req, env_values, TRAIN, release_namespace, timeout)
    namespace = TRAIN.namespace(values, cluster.release_namespace)
    secret = values["objectStore"]["credentialsSecret"]
    secrets.require(
        cluster.api_client, namespace, secret, f"training run {name}",
        f"create it first: `./deploy.sh secrets set training/{secret} --from-env-file F --env {env}` (the keys "
        "access-key and secret-key), or name another with objectStore.credentialsSecret in the spec.",
    )  # fmt: skip
    folder = TRAIN.folder(cluster.runs_root, name)
    mark(folder, "kubernetes", namespace=namespace)
    code = launch.start(cluster, TRAIN, values, do_follow=do_follow, restart=restart)
    if do_follow:
        kept = podlogs.save(cluster.api_client, TRAIN, namespace, name, folder)
        if kept:
            log(f"the pods' logs are in {kept[0].parent}")
    raise typer.Exit(code)


w.add_commands(app, TRAIN, delete_names=("stop",), skip=("status",))


def _job(api_client: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes import client

    jobs, _ = kube.list_all(client.BatchV1Api(api_client).list_namespaced_job, namespace,
                            field_selector=f"metadata.name={job_name(name)}")  # fmt: skip
    return jobs[0] if jobs else None


def job_phase(job: dict[str, Any] | None, pod: dict[str, Any] | None) -> str:
    """Succeeded, Failed (the Job's condition), else the newest pod's phase; `stopped or expired` without a Job."""
    if job is None:
        return "no Job (stopped, or removed by its TTL)"
    for cond in kube.get(job, "status", "conditions", default=[]):
        if cond.get("type") in ("Complete", "SuccessCriteriaMet") and cond.get("status") == "True":
            return "Succeeded"
        if cond.get("type") in ("Failed", "FailureTarget") and cond.get("status") == "True":
            return f"Failed ({cond.get('reason', '')})"
    return kube.get(pod, "status", "phase", default="Pending") if pod else "Pending"


def _local_status(name: str, folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    logs = sorted((folder / "logs").glob("local-*.log"), key=lambda p: int(p.stem.split("-")[1]))
    recorded = list(read_records(folder / "results.jsonl"))
    alive = _alive(info.get("pid"))
    phase = "Succeeded" if recorded else ("Running" if alive else "Failed or interrupted")
    state = progress.of_log(logs[-1].read_text()) if logs else {}
    return {"run": name, "executor": "local", "phase": phase, "attempts": len(logs), "progress": state}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    name: run_arg,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    release_namespace: w.ReleaseNamespace = None,
    output: o.OutputOpt = o.Output.text,
) -> None:
    """Phase, epoch, step, loss and samples/s (the runner's progress lines), and on a cluster the Job's counts
    and why its pod waits (quota, no node of its GPU type, taints, priority) or why it failed."""
    folder = TRAIN.folder(_runs_root(), name)
    info = executor_of(folder)
    if info.get("executor") == "local":
        status = _local_status(name, folder, info)
        rows: list[Any] = []
    else:
        cluster, env_values = w.connected(ctx, TRAIN, release_namespace)
        namespace, rows = launch.status(cluster, TRAIN, name, env_values)
        pods = podlogs.pods(cluster.api_client, TRAIN, namespace, name)
        newest = pods[-1] if pods else None
        text = (
            podlogs.read(cluster.api_client, TRAIN, namespace, kube.get(newest, "metadata", "name")) if newest else None
        )
        status = {
            "run": name,
            "executor": "kubernetes",
            "namespace": namespace,
            "phase": job_phase(_job(cluster.api_client, namespace, name), newest),
            "pod": kube.get(newest, "metadata", "name"),
            "node": kube.get(newest, "spec", "nodeName"),
            "attempts": len(pods),
            "progress": progress.of_log(text or ""),
        }
    if output == o.Output.json:
        typer.echo(json.dumps({**status, "groups": [r.as_dict() for r in rows]}, indent=2))
        return
    where = f"pod {status['pod']} on {status['node']}" if status.get("pod") else status["executor"]
    console.print(f"training run {name}: {status['phase']} ({where}); {progress.line(status['progress'])}",
                  highlight=False, markup=False)  # fmt: skip
    if rows:
        w.print_status(TRAIN, name, status["namespace"], rows)


@app.command("list")
def list_cmd() -> None:
    """The training runs submitted from here (runs/train-*/): executor, model, and the result when there is one."""
    table = Table(title="training runs")
    for col in ("name", "executor", "model", "result", "finalLoss", "heldoutAccuracy"):
        table.add_column(col)
    found = 0
    for folder in sorted(_runs_root().glob(f"{TRAIN.name}-*")):
        values = launched_values(folder)
        if values is None:
            continue
        found += 1
        config = TRAIN.units(values)[0]
        records = list(read_records(folder / "results.jsonl"))
        metrics = (records[-1].get("result") or {}).get("metrics") or {} if records else {}
        cells = (TRAIN.run_name(values), executor_of(folder).get("executor", "?"), config.get("model", ""),
                 "yes" if records else "no", metrics.get("finalLoss"), metrics.get("heldoutAccuracy"))  # fmt: skip
        table.add_row(*("" if c is None else escape(str(c)) for c in cells))
    if not found:
        say(f"no training runs in {_runs_root()}")
        return
    console.print(table)


@app.command("logs")
def logs_cmd(
    ctx: typer.Context,
    name: run_arg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines as they come.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", min=0, help="Only the last N lines.")] = None,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    release_namespace: w.ReleaseNamespace = None,
) -> None:
    """The log of the run's newest pod (or, run on this machine, of its newest attempt); a stopped run's
    logs from runs/train-<name>/logs/."""
    folder = TRAIN.folder(_runs_root(), name)
    info = executor_of(folder)
    if info.get("executor") != "local":
        cluster, _ = w.connected(ctx, TRAIN, release_namespace)
        namespace = TRAIN.namespace(launched_values(folder) or {}, cluster.release_namespace)
        pods = podlogs.pods(cluster.api_client, TRAIN, namespace, name)
        if pods:
            pod = kube.get(pods[-1], "metadata", "name")
            if follow:
                for line in podlogs.stream(cluster.api_client, TRAIN, namespace, pod, tail):
                    typer.echo(line)
            else:
                typer.echo(podlogs.read(cluster.api_client, TRAIN, namespace, pod, tail) or "", nl=False)
            return
    kept = sorted((folder / TRAIN.logs_dir).glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not kept:
        raise PlanError(f"training run {name} has no pod now and no kept log in {folder / TRAIN.logs_dir}.")
    _print_file(kept[-1], tail, follow and _alive(info.get("pid")), info.get("pid"))


def _print_file(path: Path, tail: int | None, follow: bool, pid: Any) -> None:
    lines = path.read_text().splitlines(keepends=True)
    typer.echo("".join(lines[-tail:] if tail is not None else lines) if tail != 0 else "", nl=False)
    if not follow:
        return
    with path.open() as f:
        f.seek(0, os.SEEK_END)
        while True:
            line = f.readline()
            if line:
                typer.echo(line, nl=False)
            elif not _alive(pid):
                return
            else:
                time.sleep(0.2)


@app.command("artifacts")
def artifacts_cmd(
    ctx: typer.Context,
    name: run_arg,
    into: Annotated[Path, typer.Argument(help="Folder to write into (created).", metavar="DIR", file_okay=False)],
    credentials_env_file: CredentialsFile = None,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    release_namespace: w.ReleaseNamespace = None,
) -> None:
    """Download the run's final model and metrics (or, for a run that did not finish, its latest checkpoint)
    from the object store, and its logs, into DIR. The key pair: --credentials-env-file, else the cluster's
    credentials Secret (which needs `get` on it)."""
    folder = TRAIN.folder(_runs_root(), name)
    values = launched_values(folder)
    if values is None:
        raise PlanError(f"no training run {name} was submitted from here ({folder} has no values.json).")
    store = values["objectStore"]
    on_cluster = executor_of(folder).get("executor") != "local"
    cluster = None
    if on_cluster:
        try:
            cluster, _ = w.connected(ctx, TRAIN, release_namespace)
        except ClusterError as err:
            if credentials_env_file is None:
                raise
            log(f"the cluster does not answer ({err}): the logs are the ones kept in {folder / TRAIN.logs_dir}")
    if credentials_env_file is not None:
        keys = _keys(credentials_env_file)
    elif cluster is not None:
        keys = from_cluster(
            cluster.api_client, TRAIN.namespace(values, cluster.release_namespace), store["credentialsSecret"]
        )
    else:
        raise PlanError(f"training run {name} ran on this machine: pass --credentials-env-file F for the store's "
                        "key pair.")  # fmt: skip
    written = download(store, job_name(name), keys, into)
    if cluster is not None:
        podlogs.save(cluster.api_client, TRAIN, TRAIN.namespace(values, cluster.release_namespace), name, folder)
    for path in sorted((folder / TRAIN.logs_dir).glob("*.log")):
        (into / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, into / "logs" / path.name)
        written.append(into / "logs" / path.name)
    if not written:
        raise PlanError(f"training run {name}: nothing in the object store under {store['prefix']}/{job_name(name)}/ "
                        "and no kept log.")  # fmt: skip
    for path in written:
        say(f"wrote {path}")
