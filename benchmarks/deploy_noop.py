"""Benchmark of the deploy tool on the local control plane, against plain Helm and helmfile.

1. cold deploy of ENV vs the critical path of its levels (sum over levels of the slowest release);
   target: at most 1.3x;
2. no-op redeploy (`./deploy.sh`, a fresh process, as a user runs it) vs a loop of
   `helm upgrade --install` over the same releases with the same values; targets: at most 3 s and
   at least 10x faster. The loop is timed twice: plain (`--wait`), and with the flags the tool
   itself gives `helm upgrade` (`--rollback-on-failure --cleanup-on-fail --wait --wait-for-jobs
   --history-max 10`), the comparable one, which the target is checked against;
3. helmfile over the same releases, values and order: a helmfile.yaml generated from the tool's own
   run folder (each release's final values file, `needs` from the plan, the tool's helm
   flags and parallelism, chart dependencies prebuilt as for the tool). The no-op (`helmfile apply`
   with nothing changed, and `helmfile sync`) and the cold deploy (`helmfile sync` on a fresh
   cluster); targets: the no-op at least 20x faster than helmfile's apply, the cold deploy no slower
   than helmfile's. `helmfile apply` runs the helm-diff plugin per release, which the Go module
   proxy does not serve (github.com/databus23/helm-diff/v3 is refused), so apply runs with a
   stand-in plugin (HELM_PLUGINS of this benchmark only, the user's helm untouched) that makes the
   helm calls helm-diff makes for `diff upgrade` (`version`, `get manifest`, `template --is-upgrade`
   validated against the cluster: `--dry-run=server` in Helm 4) and reports no change without
   computing a diff: a lower bound of the real apply.

    .venv/bin/python benchmarks/deploy_noop.py [--env dev] [--fixture] [--kubeconfig PATH] [--no-helmfile]

Without --kubeconfig each cold deploy gets a fresh local cluster named kaiml-bench (with a stand-in of
Argo's WorkflowTemplate CRD, so the full suite deploys), removed afterwards; medians are reported. With
--fixture (or when charts/platform does not exist yet) it uses the test suite's fixture charts.
helmfile is built on first use (`tools/build-tools.sh helmfile`, cached)."""

import argparse
import contextlib
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
from deploy.platform.apply import ApplyOptions  # noqa: E402
from deploy.platform.deployer import Result, deploy  # noqa: E402
from deploy.platform.prepare import Selection  # noqa: E402
from deploy.platform.request import Request  # noqa: E402
from deploy.platform.values import Inputs  # noqa: E402


class ColdRun(NamedTuple):
    seconds: float
    critical: float
    result: Result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="dev")
    ap.add_argument("--fixture", action="store_true")
    ap.add_argument("--kubeconfig", type=Path)
    ap.add_argument("--no-helmfile", action="store_true", help="skip the comparison with helmfile")
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
            ok, noop = bench(args, charts, values, runs, args.kubeconfig, cold)
            if not args.no_helmfile:  # no fresh cluster for helmfile's cold deploy: its no-op only
                hf = Helmfile(cold[-1].result, work)
                ok = versus_helmfile(cold, noop, hf.noop(args.kubeconfig, args.runs), []) and ok
            print("PASS" if ok else "FAIL")
            return 0 if ok else 1
        # Each cold deploy gets a fresh cluster, helmfile's and the tool's taking turns (so that the
        # load of this shared machine falls on both alike); the tool's last one is then used for the
        # no-op runs, helmfile's included (its releases as the helm loops left them: nothing to change).
        hf = None if args.no_helmfile else Helmfile(dry_run(args, charts, values, runs), work)
        cold, hf_cold, cluster = [], [], None
        try:
            for _ in range(args.runs):
                if hf is not None:
                    cluster = fresh_cluster(args.env, charts, values, work, cluster)
                    hf_cold.append(hf.sync(cluster.kubeconfig, "cold"))
                cluster = fresh_cluster(args.env, charts, values, work, cluster)
                cold.append(cold_deploy(args, charts, values, runs, cluster.kubeconfig))
            ok, noop = bench(args, charts, values, runs, cluster.kubeconfig, cold)
            if hf is not None:
                ok = versus_helmfile(cold, noop, hf.noop(cluster.kubeconfig, args.runs), hf_cold) and ok
            print("PASS" if ok else "FAIL")
            return 0 if ok else 1
        finally:
            if cluster is not None:
                cluster.down()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fresh_cluster(env: str, charts: Path, values: Path, work: Path, previous=None):
    from deploy.cluster.controlplane import LocalCluster
    from deploy.platform.nodepools import node_pools
    from deploy.platform.values import merge_inputs

    if previous is not None:
        previous.down()
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


def dry_run(args: argparse.Namespace, charts: Path, values: Path, runs: Path) -> Result:
    """The run folder of a dry run (every release's final values, as a deploy gives them; the
    charts' dependencies built)."""
    return deploy(Request(**{**request(args, charts, values, runs, Path("unused")).__dict__, "dry_run": True}))


def make_referenced_secrets(dry: Result, kubeconfig: Path) -> None:
    """The credentials an operator creates before the first deploy (the charts never do): every Secret
    that the rendered pods reference, with placeholder data, its namespace made first."""
    from kubernetes import client, config

    from deploy.platform.references import needed_secrets

    manifests = {p.stem: p.read_text() for p in sorted((dry.kept_run / "manifests").glob("*.yaml"))}
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    for namespace, name in needed_secrets(manifests, "default"):
        with contextlib.suppress(client.ApiException):  # already there (a second cold run)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        with contextlib.suppress(client.ApiException):
            body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={"password": "bench"})
            core.create_namespaced_secret(namespace, body)


def cold_deploy(args: argparse.Namespace, charts: Path, values: Path, runs: Path, kubeconfig: Path) -> ColdRun:
    """One deploy onto a cluster without the releases; the critical path is the sum over levels of
    each level's slowest release (what a perfect scheduler with no overhead would take)."""
    req = request(args, charts, values, runs, kubeconfig)
    dry = dry_run(args, charts, values, runs)  # chart dependencies built outside the timing
    make_referenced_secrets(dry, kubeconfig)
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
) -> tuple[bool, float]:
    """The tool's no-op against a loop of helm upgrade; (targets met, the no-op's median seconds)."""
    ratio = statistics.median(c.seconds / c.critical for c in cold)
    print(f"cold deploy / critical path, median of {len(cold)}: {ratio:.2f} (target <= 1.3)")
    result = cold[-1].result

    env = {
        **os.environ,
        "KAIML_CHARTS_DIR": str(charts),
        "KAIML_VALUES_DIR": str(values),
        "KAIML_RUNS_DIR": str(runs),
        "KAIML_VENV": sys.prefix,  # this interpreter's environment (deploy.sh's bootstrap finds it installed)
    }
    # What the user runs: ./deploy.sh (its bootstrap check included), a fresh process each time.
    cmd = [
        "bash",
        str(REPO / "deploy.sh"),
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
    return noop <= 3.0 and tools_flags / noop >= 10 and ratio <= 1.3, noop


class HelmfileNoop(NamedTuple):
    sync: float  # median seconds
    apply: float  # median seconds, with the helm-diff stand-in


# helm-diff's helm calls for `helm diff upgrade --allow-unreleased NAME CHART --values F ...` of an
# installed release (its cmd/helm3.go), minus the diff: what helmfile apply waits for per release.
DIFF_STANDIN = """#!/usr/bin/env bash
set -euo pipefail
[[ $1 == upgrade && $2 == --allow-unreleased ]] || { echo "helm-diff stand-in: unexpected $*" >&2; exit 1; }
release=$3 chart=$4
shift 4
flags=()
while (($#)); do
  case $1 in
    --values | --kube-version) flags+=("$1" "$2"); shift 2 ;;
    --reset-values | --detailed-exitcode) shift ;;
    *) echo "helm-diff stand-in: unexpected argument $1" >&2; exit 1 ;;
  esac
done
"$HELM_BIN" version >/dev/null
"$HELM_BIN" get manifest "$release" >/dev/null
"$HELM_BIN" template "$release" "$chart" "${flags[@]}" --is-upgrade --dry-run=server >/dev/null
"""
DIFF_PLUGIN = """name: diff
version: 0.0.0-standin
usage: stand-in for helm-diff (benchmarks/deploy_noop.py)
description: the helm calls of helm-diff's diff upgrade, without the diff; reports no change
command: "$HELM_PLUGIN_DIR/diff.sh"
"""


class Helmfile:
    """helmfile over the releases of a tool's run: the same charts, final values, order (`needs`
    from the plan), helm flags (--rollback-on-failure --cleanup-on-fail --wait --wait-for-jobs
    --history-max 10, the same timeout, no namespace creation) and parallelism (8); chart
    dependencies prebuilt (--skip-deps), as the tool's own deploy finds them."""

    def __init__(self, result: Result, work: Path):
        self.binary = str(tools.tool("helmfile"))
        self.helm = str(tools.tool("helm"))
        self.path = result.kept_run / "helmfile.yaml"
        self.path.write_text(helmfile_yaml(result))
        home = work / "helm-home"  # helm's config, cache and plugins of this benchmark only
        plugin = home / "plugins" / "diff"
        plugin.mkdir(parents=True, exist_ok=True)
        (plugin / "plugin.yaml").write_text(DIFF_PLUGIN)
        (plugin / "diff.sh").write_text(DIFF_STANDIN)
        (plugin / "diff.sh").chmod(0o755)
        self.env = {
            **os.environ,
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
            "HELM_PLUGINS": str(home / "plugins"),
            "HELMFILE_CACHE_HOME": str(home / "helmfile"),
        }
        print(f"helmfile: {self.version()}, over {self.path} ({len(result.outcomes)} releases)")

    def version(self) -> str:
        done = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True)
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "?"

    def run(self, kubeconfig: Path, *command: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        cmd = [self.binary, "--file", str(self.path), "--helm-binary", self.helm, *command]
        t0 = time.monotonic()
        done = subprocess.run(
            cmd, env={**self.env, "KUBECONFIG": str(kubeconfig)}, capture_output=True, text=True, check=False
        )
        return time.monotonic() - t0, done

    def sync(self, kubeconfig: Path, what: str) -> float:
        seconds, done = self.run(kubeconfig, "sync", "--concurrency", "8", "--skip-deps")
        assert done.returncode == 0, done.stderr[-3000:]
        print(f"helmfile sync ({what}): {seconds:.2f}s")
        return seconds

    def noop(self, kubeconfig: Path, runs: int) -> HelmfileNoop:
        """helmfile's runs with nothing changed: apply (with the helm-diff stand-in), then sync."""
        applies = []
        for _ in range(runs):
            seconds, done = self.run(kubeconfig, "apply", "--concurrency", "8", "--skip-deps", "--detailed-exitcode")
            assert done.returncode == 0, done.stderr[-3000:]  # 0: no change (2 would be changes)
            assert "Comparing release=" in done.stderr + done.stdout and "UPDATED RELEASES" not in done.stdout
            applies.append(seconds)
        sync = statistics.median(self.sync(kubeconfig, "nothing changed") for _ in range(runs))
        return HelmfileNoop(sync, statistics.median(applies))


def helmfile_yaml(result: Result) -> str:
    """The tool's plan as a helmfile: one release per outcome, in plan order, each with the final
    values the tool gave it (runs/<time>-<env>/values/<release>.yaml) and its needs."""
    import yaml

    names = {o.release.alias: o.release.name for o in result.outcomes}
    releases = []
    for o in result.outcomes:
        rel = o.release
        entry = {
            "name": rel.name,
            "namespace": "default",
            "chart": str(rel.chart_dir),
            "values": [str(result.kept_run / "values" / f"{rel.name}.yaml")],
        }
        needs = [f"default/{names[a]}" for a in rel.needs if a in names]
        if needs:
            entry["needs"] = needs
        releases.append(entry)
    doc = {
        "helmDefaults": {
            "wait": True,
            "waitForJobs": True,
            "rollbackOnFailure": True,
            "cleanupOnFail": True,
            "historyMax": 10,
            "timeout": 120,
            "createNamespace": False,
        },
        "releases": releases,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def versus_helmfile(cold: list[ColdRun], noop: float, hf: HelmfileNoop, hf_cold: list[float]) -> bool:
    """Both ratios printed; targets: no-op >= 20x faster than helmfile apply, cold deploy no slower
    than helmfile's."""
    print(f"helmfile sync, nothing changed (median): {hf.sync:.2f}s; the tool's no-op is {hf.sync / noop:.1f}x faster")
    print(
        f"helmfile apply, nothing changed (median; helm-diff's helm calls, no diff: a lower bound): {hf.apply:.2f}s; "
        f"the tool's no-op is {hf.apply / noop:.1f}x faster (target >= 20x)"
    )
    ok = hf.apply / noop >= 20
    if hf_cold:
        tool_cold = statistics.median(c.seconds for c in cold)
        theirs = statistics.median(hf_cold)
        print(
            f"cold deploy, median of {len(cold)}: the tool {tool_cold:.2f}s, helmfile sync {theirs:.2f}s "
            f"(ratio {tool_cold / theirs:.2f}, target <= 1.0)"
        )
        ok = ok and tool_cold <= theirs
    return ok


if __name__ == "__main__":
    sys.exit(main())
