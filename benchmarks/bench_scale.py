"""A 1,000-config sweep on the local control plane, against two baselines (issue 5).

    .venv/bin/python benchmarks/bench_scale.py [--configs 1000] [--memory-sizes 100,300] [--serial-sample 200]

On one local cluster (kwok nodes; every runner pod's log is tests/fixtures/pod.log, served by kwok):
  1. bare pods: the time the control plane needs to create, schedule and complete N pods of the
     sweep's own pod spec, created as fast as this client can (16 threads) and watched until all
     have Succeeded;
  2. `bench run` of an N-config sweep (the real CLI, a subprocess, from launch to exit: values,
     helm install, the Jobs' pods, every result read from its pod's log); exactly N results, no
     config twice; its peak RSS (VmHWM of the deploy tool's Python process, helm not counted);
  3. the reference's pattern: per config a ConfigMap and a Job, the Job waited on until complete,
     its pod's log read, both deleted, then the next config; --serial-sample configs timed and the
     figure scaled to N (said as such; --serial-sample N runs them all);
  4. the same `bench run` at --memory-sizes, for the deploy tool's peak memory as N grows.
Targets: sweep <= 1.5 x bare pods; serial >= 5 x sweep; peak RSS <= 200 MB at N and flat.

The cluster is the project's LocalCluster (same binaries and settings as the tests), with enough
cpu-optimized nodes for N pods at once; the dev platform is installed with a benchmarks quota
raised for N pods. Exit 1 when a target is missed or a count is wrong."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.cluster.controlplane import LocalCluster, cluster_logs
from deploy.kube import watch as kube
from deploy.paths import REPO
from deploy.platform.nodepools import node_pools
from deploy.platform.values import load_environment
from deploy.workloads.store import read_records

CLUSTER = "kaiml-scale"
POOL = "cpu-optimized"
NAMESPACE = "benchmarks-dev"
PODS_PER_NODE = 110
QUOTA = {
    "pods": 5000,
    "requests.cpu": "500",
    "limits.cpu": "1000",
    "requests.memory": 2000,
    "limits.memory": 4000,
    "count/jobs.batch": 5000,
    "configmaps": 5000,
}
TARGET_BARE, TARGET_SERIAL, TARGET_RSS_MB = 1.5, 5.0, 200


def say(message: str) -> None:
    print(f"[bench-scale] {message}", flush=True)


def deploy_cli(kubeconfig: Path, runs: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args, "--kubeconfig", str(kubeconfig)],
        cwd=REPO,
        env={**os.environ, "KAIML_RUNS_DIR": str(runs)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def quota_sets() -> list[str]:
    sets = []
    for key, value in QUOTA.items():
        unit = "Gi" if "memory" in key else ""
        sets += ["--set", f"policy.namespaces.benchmarks.quota.{key.replace('.', chr(92) + '.')}={value}{unit}"]
    return sets


def write_sweep(folder: Path, name: str, n: int) -> Path:
    sweep = {
        "kind": "model-latency",
        "name": name,
        "base": {"model": "mlp", "inputShape": [64], "warmup": 1, "iterations": 5, "nodePool": POOL},
        "matrix": {"batchSize": list(range(1, n + 1))},
        "priorityClassName": "medium-priority-batch",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "50m", "memory": "64Mi"}},
        "parallelism": min(n, 1000),
        "ttlSecondsAfterFinished": 3600,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def peak_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    """VmHWM (kB) of one process, read until it exits: the kernel's own high-water mark."""
    status = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[0] = max(out[0], int(line.split()[1]))
        except (OSError, ValueError):
            return
        stop.wait(0.05)


def bench_run(kubeconfig: Path, runs: Path, sweep_file: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """`bench run` as a user runs it: seconds from launch to exit, peak RSS in MB."""
    labels = 'podLabels.kai-ml\\.io/test-logs="true"'
    args = [sys.executable, "-m", "deploy", "bench", "run", str(sweep_file), "--env", "dev"]
    args += ["--kubeconfig", str(kubeconfig), "--set", labels, "--timeout", "10m"]
    env = {**os.environ, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "120"}
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, stop = [0], threading.Event()
    sampler = threading.Thread(target=peak_rss, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    out, err = proc.communicate(timeout=1800)
    seconds = time.monotonic() - started
    stop.set()
    sampler.join()
    return seconds, peak[0] / 1024, subprocess.CompletedProcess(args, proc.returncode, out, err)


def check_results(runs: Path, name: str, n: int) -> str | None:
    """None when results.jsonl holds exactly configs 0..n-1, each once; else what is wrong."""
    indexes = [r["config"] for r in read_records(runs / f"bench-{name}" / "results.jsonl")]
    if len(indexes) != n or sorted(indexes) != list(range(n)):
        dupes = len(indexes) - len(set(indexes))
        return f"{len(indexes)} results for {n} configs ({len(set(indexes))} distinct, {dupes} duplicates)"
    return None


def pod_template(batch: Any, sweep: str) -> dict[str, Any]:
    """The sweep's Job's pod template (JSON), without the Job's own selector labels."""
    jobs, _ = kube.list_all(batch.list_namespaced_job, NAMESPACE, label_selector=f"kai-ml.io/benchmark={sweep}")
    template = jobs[0]["spec"]["template"]
    labels = template["metadata"]["labels"]
    for key in list(labels):
        if key.startswith(("batch.kubernetes.io/", "controller-uid", "job-name")) or key == "kai-ml.io/benchmark":
            del labels[key]
    labels["kai-ml.io/benchmark"] = "baseline"
    return template


def wait_all(core: Any, selector: str, n: int, phase: str = "Succeeded") -> None:
    """Until n pods matching `selector` are in `phase`, by list + watch."""
    done: set[str] = set()
    for _, pod in kube.observe(core.list_namespaced_pod, NAMESPACE, label_selector=selector):
        if kube.get(pod, "status", "phase") == phase:
            done.add(pod["metadata"]["name"])
            if len(done) >= n:
                return


def create(create_fn: Callable[..., Any], namespace: str, body: dict[str, Any]) -> None:
    """A create call, again on 409: the namespace's ResourceQuota changed under it (as the Job
    controller also retries)."""
    from kubernetes.client.rest import ApiException

    for attempt in range(20):
        try:
            create_fn(namespace, body, _preload_content=False)
            return
        except ApiException as err:
            if err.status != 409 or attempt == 19:
                raise
            time.sleep(0.01 * (attempt + 1))


def owner_job(batch: Any, template: dict[str, Any], name: str) -> dict[str, Any]:
    """A suspended Job that never runs a pod: the owner of the bare pods, so that kwok completes
    them as it completes Job pods (its stage matches the owner's kind) and the garbage collector
    leaves them alone. Not their controller: the Job controller ignores them."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"suspend": True, "template": template},
    }
    resp = batch.create_namespaced_job(NAMESPACE, job, _preload_content=False)
    return json.loads(resp.data)


def bare_pods(core: Any, batch: Any, template: dict[str, Any], n: int) -> float:
    """Seconds to create N pods and see every one Succeeded."""
    run_label = f"bare-{int(time.time())}"
    owner = owner_job(batch, template, run_label)
    ref = {"apiVersion": "batch/v1", "kind": "Job", "name": run_label, "uid": owner["metadata"]["uid"]}

    def pod(i: int) -> dict[str, Any]:
        labels = {**template["metadata"]["labels"], "run": run_label}
        meta = {**template["metadata"], "name": f"{run_label}-{i}", "labels": labels, "ownerReferences": [ref]}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: create(core.create_namespaced_pod, NAMESPACE, pod(i)), range(n)))
    wait_all(core, f"run={run_label}", n)
    seconds = time.monotonic() - started
    batch.delete_namespaced_job(run_label, NAMESPACE, propagation_policy="Background")
    settle(core, f"run={run_label}")
    return seconds


def job_finished(batch: Any, name: str) -> None:
    """Until the Job has its Complete (or Failed) condition, by list + watch."""
    for _, job in kube.observe(batch.list_namespaced_job, NAMESPACE, field_selector=f"metadata.name={name}"):
        if _finished(job):
            return


def _finished(job: dict[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in kube.get(job, "status", "conditions", default=[])
    )


def serial_jobs(core: Any, batch: Any, template: dict[str, Any], sample: int) -> float:
    """Seconds per config of the reference's pattern (shared/reference 000, execute_benchmark): per
    config, a ConfigMap and a Job, wait for the Job to complete, read the result from its pod's
    log, delete both; the next config after that. Waits by watch, as generous a baseline as any."""
    run_label = f"serial-{int(time.time())}"
    started = time.monotonic()
    for i in range(sample):
        name = f"{run_label}-{i}"
        config = {
            "sweep": "serial",
            "kind": "model-latency",
            "index": i,
            "config": {"model": "mlp", "batchSize": i + 1},
        }
        data = {"config-0.json": json.dumps(config)}
        create(core.create_namespaced_config_map, NAMESPACE, {"metadata": {"name": name}, "data": data})
        spec = json.loads(json.dumps(template["spec"]))
        spec["volumes"] = [
            v if v["name"] != "configs" else {"name": "configs", "configMap": {"name": name}} for v in spec["volumes"]
        ]
        labels = {**template["metadata"]["labels"], "run": run_label, "serial": name}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": {"run": run_label}},
            "spec": {"backoffLimit": 2, "template": {"metadata": {"labels": labels}, "spec": spec}},
        }
        create(batch.create_namespaced_job, NAMESPACE, job)
        job_finished(batch, name)
        pods, _ = kube.list_all(core.list_namespaced_pod, NAMESPACE, label_selector=f"serial={name}")
        core.read_namespaced_pod_log(pods[0]["metadata"]["name"], NAMESPACE, container="runner")
        batch.delete_namespaced_job(name, NAMESPACE, propagation_policy="Background", _preload_content=False)
        core.delete_namespaced_config_map(name, NAMESPACE, _preload_content=False)
    return (time.monotonic() - started) / sample


def settle(core: Any, selector: str) -> None:
    """Until no pod matches: a baseline must not pay for the previous one's clean-up."""
    while kube.list_all(core.list_namespaced_pod, NAMESPACE, label_selector=selector)[0]:
        time.sleep(0.5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", type=int, default=1000)
    p.add_argument("--memory-sizes", default="100,300", help="more sweep sizes for the memory figure")
    p.add_argument(
        "--serial-sample", type=int, default=200, help="configs timed one Job at a time (the figure is scaled to N)"
    )
    p.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = p.parse_args()
    n = args.configs
    sizes = sorted({int(s) for s in args.memory_sizes.split(",") if s} - {n})

    pools = node_pools(load_environment("dev"))
    nodes = -(-n // PODS_PER_NODE) + 1
    pools[POOL] = dataclasses.replace(pools[POOL], test_nodes=nodes)
    logs = cluster_logs("runner-logs", REPO / "tests" / "fixtures" / "pod.log")
    cluster = LocalCluster(CLUSTER, kwok_config=(logs,))
    cluster.down()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    runs = work / "runs"
    failures: list[str] = []
    try:
        say(f"starting local cluster {CLUSTER} ({nodes} {POOL} nodes for {n} pods at once)")
        kubeconfig = cluster.up(pools, log=lambda m: None)
        say("installing the dev platform (benchmarks quota raised)")
        done = deploy_cli(kubeconfig, runs, "--env", "dev", *quota_sets())
        if done.returncode:
            raise SystemExit(f"platform install failed:\n{done.stderr[-3000:]}")

        from kubernetes import client

        api = cluster.api_client()
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        figures: dict[str, Any] = {}
        for size in [*sizes, n]:
            name = f"scale-{size}"
            settle(core, "")
            say(f"bench run: {size} configs")
            seconds, rss_mb, done = bench_run(kubeconfig, runs, write_sweep(work, name, size))
            wrong = (
                check_results(runs, name, size)
                if done.returncode == 0
                else f"exit {done.returncode}: {done.stderr[-2000:]}"
            )
            if wrong:
                failures.append(f"sweep of {size}: {wrong}")
            figures[size] = {"seconds": seconds, "rss_mb": rss_mb, "results_ok": wrong is None}
            say(
                f"  {size} configs: {seconds:.1f}s, peak RSS {rss_mb:.0f} MB, "
                f"results {wrong or 'exactly one per config'}"
            )
            if size == n:
                template = pod_template(batch, name)
            deploy_cli(kubeconfig, runs, "bench", "delete", name, "--env", "dev")

        settle(core, "")  # the sweeps' pods gone first: each figure pays only for its own work
        say(f"bare pods: {n}")
        bare = bare_pods(core, batch, template, n)
        say(f"  {n} bare pods created, scheduled and Succeeded in {bare:.1f}s")
        say(f"serial baseline: {args.serial_sample} configs, one Job + ConfigMap each, waited on in turn")
        per_config = serial_jobs(core, batch, template, args.serial_sample)
        serial = per_config * n
        say(f"  {per_config:.2f}s per config -> {serial:.0f}s for {n} (scaled from {args.serial_sample})")
    finally:
        if not args.keep:
            cluster.down()

    sweep = figures[n]["seconds"]
    rss = [figures[s]["rss_mb"] for s in sorted(figures)]
    ok_bare, ok_serial = sweep <= TARGET_BARE * bare, serial >= TARGET_SERIAL * sweep
    ok_rss = max(rss) <= TARGET_RSS_MB and rss[-1] <= 1.25 * rss[0]
    print()
    print(f"{n}-config sweep: {sweep:.1f}s for {n} results (exactly one per config: {figures[n]['results_ok']})")
    print(
        f"  vs {n} bare pods     {bare:7.1f}s  ratio {sweep / bare:5.2f}x  (target <= {TARGET_BARE}x)  "
        f"{'ok' if ok_bare else 'MISS'}"
    )
    print(
        f"  vs one Job per config {serial:7.1f}s  speed-up {serial / sweep:5.1f}x  (target >= {TARGET_SERIAL}x)  "
        f"{'ok' if ok_serial else 'MISS'}  [scaled from {args.serial_sample} configs]"
    )
    print(
        "  deploy tool peak RSS: "
        + ", ".join(f"{s} configs {figures[s]['rss_mb']:.0f} MB" for s in sorted(figures))
        + f"  (target <= {TARGET_RSS_MB} MB, flat)  {'ok' if ok_rss else 'MISS'}"
    )
    failures += [] if ok_bare and ok_serial and ok_rss else ["a target was missed"]
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
