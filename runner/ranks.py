"""`python -m runner.ranks --ranks N --config FILE`: a multi-rank run on this machine. N `python -m
runner` processes with the environment that a Kubernetes Indexed Job and a headless Service give
the ranks in a cluster (RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT); each rank's log and
record, then the aggregate (runner/aggregate.py), printed as the `KAIML_RESULT` line.

FILE is a runner config (JSON, as `python -m runner --config` reads) or a run spec (JSON or YAML,
examples/runs/): `{"name", "ranks", "mode", "kind", "config": {...}}`, `name` as the sweep, `ranks`
the default of --ranks, `mode` checked against the kind's."""

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import kinds
from runner.aggregate import aggregate
from runner.config import RunConfig, parse_document
from runner.errors import EXIT_CONFIG_ERROR, EXIT_FAILURE, EXIT_OK, ConfigError
from runner.result import find_result, now

log = logging.getLogger("runner.ranks")
# After a rank fails, the others get this long to finish before they are stopped (a failed rank
# leaves the others waiting at a barrier or in a collective).
GRACE_S = 5.0


@dataclass(frozen=True)
class Spec:
    run: RunConfig
    ranks: int | None


def load_spec(path: Path) -> Spec:
    """The run spec or runner config in `path`; ConfigError naming the key."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError("config", f"cannot read {path}: {e.strerror or e}") from e
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml  # the deploy tool's dependency; the runner image reads JSON only

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except Exception as e:
        raise ConfigError("config", f"{path} does not parse: {e}") from e
    ranks = None
    if isinstance(doc, dict) and ("name" in doc or "ranks" in doc or "mode" in doc):
        doc = dict(doc)
        ranks = doc.pop("ranks", None)
        mode = doc.pop("mode", None)
        if "name" in doc:
            doc["sweep"] = doc.pop("name")
        if ranks is not None and (not isinstance(ranks, int) or isinstance(ranks, bool) or ranks < 1):
            raise ConfigError("ranks", f"{path}: must be an integer >= 1, not {ranks!r}")
        run = parse_document(doc, str(path))
        if mode is not None and mode != kinds.mode(run.kind):
            raise ConfigError("mode", f"{path}: kind {run.kind} runs {kinds.mode(run.kind)}, not {mode!r}")
        return Spec(run, ranks)
    return Spec(parse_document(doc, str(path)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, size: int, port: int, base: dict[str, str]) -> dict[str, str]:
    """A rank's environment. OMP_NUM_THREADS splits the CPUs between the ranks unless it is set
    (torchrun sets 1): N ranks with every core each would measure the oversubscription."""
    env = {**base, "RANK": str(rank), "WORLD_SIZE": str(size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    env.pop("JOB_COMPLETION_INDEX", None)
    env.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // size)))
    return env


def launch(config: Path, size: int, out: Path, timeout_s: float) -> list[int | None]:
    """Run the ranks; each one's exit code (None: stopped by this launcher)."""
    port = free_port()
    procs = []
    for rank in range(size):
        with (out / f"rank-{rank}.log").open("wb") as logf:
            cmd = [sys.executable, "-m", "runner", "--config", str(config)]
            procs.append(
                subprocess.Popen(
                    cmd, stdout=logf, stderr=subprocess.STDOUT, env=rank_env(rank, size, port, dict(os.environ))
                )
            )
    deadline = time.monotonic() + timeout_s
    stopped: set[int] = set()
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline or any(p.returncode not in (None, 0) for p in procs):
            deadline = min(deadline, time.monotonic() + GRACE_S)
            if time.monotonic() > deadline:
                for i, p in enumerate(procs):
                    if p.poll() is None:
                        p.kill()
                        stopped.add(i)
        time.sleep(0.05)
    for p in procs:
        p.wait()
    return [None if i in stopped else p.returncode for i, p in enumerate(procs)]


def run(config: Path, size: int | None, out: Path, timeout_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ranks' records (in rank order, as found in their logs) and the aggregate."""
    spec = load_spec(config)
    size = size or spec.ranks or 1
    out.mkdir(parents=True, exist_ok=True)
    document = out / "config.json"
    document.write_text(
        json.dumps({"sweep": spec.run.sweep, "kind": spec.run.kind, "index": spec.run.index, "config": spec.run.config})
    )
    codes = launch(document, size, out, timeout_s)
    records = []
    for rank, code in enumerate(codes):
        record = find_result((out / f"rank-{rank}.log").read_text(errors="replace"))
        if record is None:
            log.error("rank %d: no record (exit %s); its log: %s", rank, code, out / f"rank-{rank}.log")
            continue
        (out / f"rank-{rank}.json").write_text(json.dumps(record, indent=1) + "\n")
        records.append(record)
    if not records:
        raise RuntimeError(f"no rank printed a record; see {out}/rank-*.log")
    total = aggregate(records)
    (out / "aggregate.json").write_text(json.dumps(total, indent=1) + "\n")
    return total, records


def describe(total: dict[str, Any]) -> str:
    lines = [f"{total['kind']} ({total.get('mode')}), {total['world_size']} ranks: {total['status']}"]
    for r in total["ranks"]:
        lat = r.get("latency_ms") or {}
        lines.append(
            f"  rank {r['rank']}: {r['status']}, p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms, "
            f"throughput {r.get('throughput')}" + (f", {r['error']}" if r.get("error") else "")
        )
    if total["status"] == "ok":
        lat = total["latency_ms"]
        lines.append(
            f"  all ranks: p50 {lat['p50']} ms, p99 {lat['p99']} ms over {total['iterations']} samples, "
            f"throughput {total['throughput']}, start skew {total.get('start_skew_ms')} ms"
        )
        for row in (total.get("metrics") or {}).get("allreduce", []):
            lines.append(
                f"  all-reduce {row['bytes']:>10} B: {row['time_us']:>12.1f} us, busbw {row['busbw_gbps']:.3f} GB/s"
            )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner.ranks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="a runner config or a run spec")
    p.add_argument("--ranks", type=int, metavar="N", help="number of ranks (default: the spec's `ranks`, else 1)")
    p.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="logs, records and aggregate.json (default runs/ranks-<UTC time>)",
    )
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="stop the ranks after S seconds")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="runner.ranks: %(message)s", stream=sys.stderr, force=True)
    if args.ranks is not None and args.ranks < 1:
        parser().error("--ranks must be >= 1")
    out = args.output_dir or Path("runs") / f"ranks-{now().replace(':', '')}"
    try:
        total, _ = run(args.config, args.ranks, out, args.timeout)
    except ConfigError as e:
        log.error("bad config: %s", e)
        return EXIT_CONFIG_ERROR
    except (RuntimeError, ValueError) as e:
        log.error("%s", e)
        return EXIT_FAILURE
    sys.stdout.write("KAIML_RESULT " + json.dumps(total, separators=(",", ":"), ensure_ascii=True) + "\n")
    sys.stdout.flush()
    log.info("%s\n  records and logs: %s", describe(total), out)
    if total["status"] == "ok":
        return EXIT_OK
    return EXIT_CONFIG_ERROR if total["status"] == "config-error" else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
