"""Benchmark of the deploy tool on the local control plane.

1. cold deploy of ENV vs the critical path of its levels (sum over levels of the slowest release);
   target: at most 1.3x;
2. no-op redeploy (`python -m deploy`, a fresh process, as a user runs it) vs a loop of
   `helm upgrade --install` over the same releases with the same values; targets: at most 3 s and
   at least 10x faster. The loop is timed twice: plain (`--wait`), and with the flags the tool
   itself gives `helm upgrade` (`--rollback-on-failure --cleanup-on-fail --wait --wait-for-jobs
   --history-max 10`), the comparable one, which the target is checked against.

    .venv/bin/python benchmarks/deploy_noop.py [--env dev] [--fixture] [--kubeconfig PATH]

Without --kubeconfig each cold deploy gets a fresh local cluster named kaiml-bench (with a stand-in of
Argo's WorkflowTemplate CRD, so the full suite deploys), removed afterwards; medians are reported. With
--fixture (or when charts/platform does not exist yet) it uses the test suite's fixture charts."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deploy import tools  # noqa: E402
from deploy.apply import ApplyOptions  # noqa: E402
from deploy.deployer import Request, Result, deploy  # noqa: E402
from deploy.prepare import Selection  # noqa: E402
from deploy.render import Inputs  # noqa: E402


class ColdRun(NamedTuple):
    seconds: float
    critical: float
    result: Result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="dev")
    ap.add_argument("--fixture", action="store_true")
    ap.add_argument("--kubeconfig", type=Path)
    ap.add_argument(
        "--runs",
        type=int,
        default=3,
        help="cold deploys (each on a fresh cluster) and no-op repetitions; medians are reported",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kaiml-bench-"))
    if args.fixture or not (REPO / "charts" / "platform" / "Chart.yaml").exists():
        shutil.copytree(REPO / "tests" / "deploy" / "fixtures", work / "suite")
        charts, values = work / "suite" / "charts", work / "suite" / "values"
        print("chart suite: tests/deploy/fixtures (copy)")
    else:
        charts, values = REPO / "charts", REPO / "values"
        print("chart suite: charts/")
    runs = work / "runs"
    try:
        if args.kubeconfig is not None:
            cold = [cold_deploy(args, charts, values, runs, args.kubeconfig)]
            return bench(args, charts, values, runs, args.kubeconfig, cold)
        # Each cold deploy gets a fresh cluster; the last one is then used for the no-op runs.
        cold, cluster = [], None
        try:
            for _ in range(args.runs):
                cluster = fresh_cluster(args.env, charts, values, work)
                cold.append(cold_deploy(args, charts, values, runs, cluster.kubeconfig))
            return bench(args, charts, values, runs, cluster.kubeconfig, cold)
        finally:
            if cluster is not None:
                cluster.down()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fresh_cluster(env: str, charts: Path, values: Path, work: Path):
    from deploy.cluster.local import LocalCluster
    from deploy.nodepools import node_pools
    from deploy.render import merge_inputs

    merged = merge_inputs(Inputs(env=env), work, values, charts)
    cluster = LocalCluster("kaiml-bench")
    cluster.down()
    cluster.up(node_pools(merged.values), log=lambda m: None)
    # The full suite includes the workflows release, which needs Argo's WorkflowTemplate CRD.
    crd = REPO / "tests" / "fixtures" / "argo-workflowtemplate-crd.yaml"
    kubectl = [str(tools.tool("kubectl")), "--kubeconfig", str(cluster.kubeconfig)]
    subprocess.run([*kubectl, "apply", "-f", str(crd)], check=True, capture_output=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "-f", str(crd)], check=True, capture_output=True)
    return cluster


def request(args: argparse.Namespace, charts: Path, values: Path, runs: Path, kubeconfig: Path) -> Request:
    return Request(
        inputs=Inputs(env=args.env, tag="bench"),
        selection=Selection(),
        kubeconfig=kubeconfig,
        keep_run=True,
        apply=ApplyOptions(timeout="120s"),
        runs_root=runs,
        values_dir=values,
        charts_dir=charts,
    )


def cold_deploy(args: argparse.Namespace, charts: Path, values: Path, runs: Path, kubeconfig: Path) -> ColdRun:
    """One deploy onto a cluster without the releases; the critical path is the sum over levels of
    each level's slowest release (what a perfect scheduler with no overhead would take)."""
    req = request(args, charts, values, runs, kubeconfig)
    deploy(Request(**{**req.__dict__, "dry_run": True}))  # chart dependencies built outside the timing
    t0 = time.monotonic()
    result = deploy(req)
    seconds = time.monotonic() - t0
    assert result.ok, [o.detail for o in result.outcomes]
    per_level: dict[int, float] = {}
    for o in result.outcomes:
        per_level[o.release.level] = max(per_level.get(o.release.level, 0.0), o.seconds)
    applied = sum(o.action in ("installed", "upgraded") for o in result.outcomes)
    print(
        f"cold deploy: {applied} releases in {len(per_level)} levels: {seconds:.2f}s; "
        f"critical path {sum(per_level.values()):.2f}s; ratio {seconds / sum(per_level.values()):.2f}"
    )
    return ColdRun(seconds, sum(per_level.values()), result)


def bench(
    args: argparse.Namespace, charts: Path, values: Path, runs: Path, kubeconfig: Path, cold: list[ColdRun]
) -> int:
    ratio = statistics.median(c.seconds / c.critical for c in cold)
    print(f"cold deploy / critical path, median of {len(cold)}: {ratio:.2f} (target <= 1.3)")
    result = cold[-1].result

    env = {
        **os.environ,
        "KAIML_CHARTS_DIR": str(charts),
        "KAIML_VALUES_DIR": str(values),
        "KAIML_RUNS_DIR": str(runs),
    }
    cmd = [
        sys.executable,
        "-m",
        "deploy",
        "--env",
        args.env,
        "--tag",
        "bench",
        "--kubeconfig",
        str(kubeconfig),
        "--output",
        "json",
    ]
    times = []
    for _ in range(args.runs):
        t0 = time.monotonic()
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        times.append(time.monotonic() - t0)
        assert done.returncode == 0 and '"unchanged"' in done.stdout, done.stderr
    noop = sorted(times)[len(times) // 2]

    helm = str(tools.tool("helm"))
    run_dir = result.kept_run

    def loop(*flags: str) -> float:
        t0 = time.monotonic()
        for o in result.outcomes:
            rel = o.release
            values = run_dir / "values" / f"{rel.name}.yaml"
            common = ["--namespace", "default", "--values", str(values), "--wait", "--timeout", "120s"]
            subprocess.run(
                [
                    helm,
                    "upgrade",
                    "--install",
                    rel.name,
                    str(rel.chart_dir),
                    *common,
                    "--kubeconfig",
                    str(kubeconfig),
                    *flags,
                ],
                check=True,
                capture_output=True,
            )
        return time.monotonic() - t0

    plain = loop()
    tools_flags = loop("--rollback-on-failure", "--cleanup-on-fail", "--wait-for-jobs", "--history-max", "10")
    n = len(result.outcomes)
    print(f"no-op redeploy (median of {args.runs}, fresh process each): {noop:.2f}s (target <= 3 s)")
    print(f"loop of helm upgrade --install --wait over the same {n} releases: {plain:.2f}s ({plain / noop:.1f}x)")
    print(f"the same loop with the tool's flags (rollback on failure, wait for jobs): {tools_flags:.2f}s")
    print(f"speed-up: {tools_flags / noop:.1f}x (target >= 10x)")
    ok = noop <= 3.0 and tools_flags / noop >= 10 and ratio <= 1.3
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
