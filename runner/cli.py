"""`python -m runner`: load one config, run it, print one `KAIML_RESULT` line, exit with a code
the benchmark chart's podFailurePolicy understands. argparse, not typer: the runner image holds
torch and this package only."""

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TextIO

from runner import __version__, kinds, samples, world
from runner.config import DEFAULT_CONFIG_DIR, RunConfig, cluster_index, load_cluster, load_file
from runner.device import device_info
from runner.errors import EXIT_FAILURE, EXIT_OK, ConfigError, config_error_exit_code
from runner.result import MARKER, SCHEMA, Result, now

log = logging.getLogger("runner")

EPILOG = f"""\
modes:
  in a pod (no --config): reads $KAIML_CONFIG_DIR/config-<i>.json (default {DEFAULT_CONFIG_DIR}),
    i = KAIML_CONFIG_INDEXES[JOB_COMPLETION_INDEX] (a comma list set by charts/benchmark;
    without it, i = JOB_COMPLETION_INDEX). KAIML_SWEEP names the sweep.
  on a laptop: --config FILE, either {{"sweep", "kind", "index", "config": {{...}}}} or a bare
    config such as {{"model": "mlp", "batchSize": 8, "inputShape": [1024], "precision": "fp32",
    "warmup": 10, "iterations": 100}} (kind model-latency unless "kind" says otherwise).

models (kind model-latency): mlp [features], cnn [channels, height, width],
  transformer [sequence, dModel] (modelArgs such as {{"heads": 8}}), torchscript (modelPath).
kind train: a torchvision model trained on generated data, checkpoints in an S3-compatible store
  (KAIML_OBJECTSTORE_*, the Secret's files), resumed after a restart; KAIML_PROGRESS lines on
  stdout. Keys and settings: runner/README.md.

output: one stdout line `{MARKER} <compact JSON>` (schema {SCHEMA}, runner/result.schema.json),
  also written to --output FILE when given; human logs go to stderr.
  KAIML_DEVICE (cpu, cuda, cuda:1) overrides the device (default: CUDA when available).

multi-rank runs (runner/README.md): WORLD_SIZE, RANK (else JOB_COMPLETION_INDEX), MASTER_ADDR,
  MASTER_PORT; each rank prints its own record; `python -m runner.ranks --ranks N --config FILE`
  runs N ranks here and prints their aggregate. Kinds allreduce and ddp-step run distributed.

exit codes: 0 ok; 3 bad config (not retried; KAIML_CONFIG_ERROR_EXIT_CODE overrides 3);
  1 any other failure (retried); 2 bad command line.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner",
        description="Run one benchmark config and print its result record.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="a config file (default: the in-cluster config)")
    p.add_argument("--output", type=Path, metavar="FILE", help="also write the result record (JSON) to FILE")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__} ({SCHEMA})")
    return p


def _where(args: argparse.Namespace) -> tuple[str, int | None]:
    """The sweep and index to record when the config itself could not be read."""
    if args.config:
        return "local", None
    try:
        index: int | None = cluster_index(dict(os.environ))
    except ConfigError:
        index = None
    return os.environ.get("KAIML_SWEEP", "local"), index


def execute(args: argparse.Namespace) -> tuple[Result, int]:
    """The run, every failure turned into a record and an exit code."""
    started = now()
    run: RunConfig | None = None
    try:
        run = load_file(args.config) if args.config else load_cluster()
        log.info("config %s (sweep %s, index %d, kind %s)", run.source, run.sweep, run.index, run.kind)
        measure = kinds.get(run.kind)
        rank = world.from_env()
        if rank is not None:
            log.info(
                "rank %d of %d, %s, rendezvous %s:%d",
                rank.rank,
                rank.size,
                kinds.mode(run.kind),
                rank.master_addr,
                rank.master_port,
            )
        with world.joined(rank):
            m = measure(run.config)
        result = Result(
            sweep=run.sweep,
            index=run.index,
            kind=run.kind,
            config=run.config,
            started=started,
            device=m.device,
            latency_ms=m.latency_ms,
            throughput=m.throughput,
            iterations=m.iterations,
            metrics=m.metrics,
            artifacts=m.artifacts,
        )
        if rank is not None:
            result.mode, result.rank, result.world_size = kinds.mode(run.kind), rank.rank, rank.size
            result.start_ns = m.start_ns
            result.samples = samples.encode(m.samples_ns) if m.samples_ns is not None else None
        code = EXIT_OK
    except ConfigError as e:
        log.error("bad config: %s", e)
        result, code = _failed(args, run, started, "config-error", f"bad config: {e}"), config_error_exit_code()
    except Exception as e:
        log.error("failed: %s\n%s", e, traceback.format_exc())
        result, code = _failed(args, run, started, "error", f"{type(e).__name__}: {e}"), EXIT_FAILURE
    result.finished = now()
    return result, code


def _failed(args: argparse.Namespace, run: RunConfig | None, started: str, status: str, error: str) -> Result:
    if run is not None:
        sweep, index, kind, config = run.sweep, run.index, run.kind, run.config
    else:
        (sweep, index), kind, config = _where(args), "unknown", {}
    try:
        device = device_info(None, config)
    except Exception:  # the record must still go out
        device = {"type": "cpu", "node": os.environ.get("NODE_NAME", ""), "hostname": "", "cpu": "", "torch": None}
    result = Result(
        sweep=sweep, index=index, kind=kind, config=config, started=started, status=status, device=device, error=error
    )
    try:  # a failed rank still says which rank it was, so the aggregate can name it
        rank = world.from_env()
    except ConfigError:
        rank = None
    if rank is not None:
        result.mode, result.rank, result.world_size = kinds.mode(kind), rank.rank, rank.size
    return result


def emit(result: Result, stdout: TextIO, output: Path | None) -> None:
    """The one stdout line, flushed at once (the watcher reads it before TTL removes the pod);
    then the --output file, written whole or not at all."""
    stdout.write(result.to_line() + "\n")
    stdout.flush()
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(result.to_json() + "\n")
        tmp.replace(output)


def main(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="runner: %(message)s", stream=sys.stderr, force=True)
    result, code = execute(args)
    try:
        emit(result, stdout or sys.stdout, args.output)
    except OSError as e:
        log.error("cannot write the result: %s", e)
        return code or EXIT_FAILURE
    if result.status == "ok" and result.latency_ms:
        lat = result.latency_ms
        log.info(
            "%s: mean %.3f ms, p50 %.3f, p99 %.3f, %.1f samples/s on %s",
            result.config.get("model", result.kind),
            lat["mean"],
            lat["p50"],
            lat["p99"],
            result.throughput or 0.0,
            result.device.get("gpu") or result.device.get("cpu"),
        )
    return code
