"""`python -m loadgen ROLE`: one entry point, one image, every role.

  run               the whole topology here: controller + workers + record processors on loopback
  controller        the singleton services (credits, dataset, records, proxies); binds the ports
  worker            sends the requests; connects to the controller
  record-processor  turns raw responses into metrics; connects to the controller
  target            an OpenAI-compatible endpoint with configured latencies, to test against

Without a subcommand, LOADGEN_ROLE picks the role (for pods). Addresses: --controller-host or
LOADGEN_CONTROLLER_HOST, --ports or LOADGEN_PORTS (credits,raw_in,raw_out,records,events_in,events_out)."""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from loadgen import __version__, config, export, local, record_processor, target, worker
from loadgen.config import Ports, RunConfig
from loadgen.controller import Controller
from loadgen.errors import EXIT_FAILURE, EXIT_USAGE, ConfigError, LoadgenError

ROLES = ("run", "controller", "worker", "record-processor", "target")


class OneLineParser(argparse.ArgumentParser):
    """A bad command line is one line: what is wrong, not the whole usage."""

    def error(self, message: str):  # type: ignore[override]
        print(f"loadgen: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_run_knobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", required=True, metavar="URL",
                   help="the target; a bare http://host:port gets the endpoint type's path")
    p.add_argument("--model", required=True, metavar="M")
    p.add_argument("--endpoint-type", default="chat", choices=sorted(config.ENDPOINT_PATHS))
    p.add_argument("--streaming", action="store_true")
    p.add_argument("--concurrency", type=int, metavar="N", help="requests in flight (a cap with --request-rate)")
    p.add_argument("--request-rate", type=_number, metavar="R", help="requests per second")
    p.add_argument("--arrival", default="constant", choices=("constant", "poisson"), help="with --request-rate")
    p.add_argument("--duration", type=_number, metavar="SECONDS")
    p.add_argument("--requests", type=int, metavar="N")
    p.add_argument("--grace", type=_number, default=30.0, metavar="SECONDS",
                   help="after --duration, how long requests in flight may finish before they are cancelled")
    p.add_argument("--warmup-requests", type=int, default=0, metavar="N",
                   help="requests sent (at the same load) before the measured phase, and left out of its metrics")
    p.add_argument("--ramp-up", type=_number, default=0.0, metavar="SECONDS",
                   help="grow the concurrency linearly over this long (thousands of connects at once overflow "
                        "the target's accept backlog)")
    p.add_argument("--isl", type=int, default=128, help="synthetic prompt length, tokens")
    p.add_argument("--osl", type=int, default=32, help="max_tokens asked for")
    p.add_argument("--dataset", metavar="FILE",
                   help='JSONL of {"text": ..., "output_length": N?} (AIPerf single-turn)')
    p.add_argument("--workers", type=int, metavar="W", help="default: concurrency / --connections-per-worker")
    p.add_argument("--record-processors", type=int, metavar="P", help="default: 1 per 4 workers")
    p.add_argument("--connections-per-worker", type=int, default=config.DEFAULT_CONNECTIONS_PER_WORKER)
    p.add_argument("--request-timeout", type=_number, default=600.0, metavar="SECONDS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="the run's folder under --artifacts (default: model, load and time)")
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), metavar="DIR")
    p.add_argument("--live-interval", type=float, default=1.0, metavar="SECONDS", help="0: no live view")


def add_address(p: argparse.ArgumentParser, host_flag: str, host_env: str, default_host: str) -> None:
    p.add_argument(host_flag, default=os.environ.get(host_env, default_host),
                   help=f"default ${host_env} or {default_host}")
    p.add_argument("--ports", default=os.environ.get("LOADGEN_PORTS", Ports().as_arg()),
                   help="credits,raw_in,raw_out,records,events_in,events_out (default $LOADGEN_PORTS or AIPerf's)")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m loadgen", description=__doc__.split("\n\n")[0],
                      epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="role", metavar="ROLE", parser_class=OneLineParser)
    run = sub.add_parser("run", help="the whole topology on this machine")
    add_run_knobs(run)
    run.add_argument("--single-process", action="store_true", help="every role in this process")
    ctl = sub.add_parser("controller", help="the singleton services")
    add_run_knobs(ctl)
    add_address(ctl, "--bind-host", "LOADGEN_BIND_HOST", "0.0.0.0")
    ctl.add_argument("--startup-timeout", type=_number, default=60.0, metavar="SECONDS",
                     help="how long to wait for every worker and record processor to connect (pods: their "
                          "scheduling and image pulls)")
    ctl.add_argument("--result-line", action="store_true",
                     help=f"end with one {export.RESULT_MARKER} line on stdout, the summary as JSON (pods: the "
                          "deploy tool reads it from the pod's log), then the per-request JSONL, compressed, "
                          "in base64 lines")
    ctl.add_argument("--records-log-limit", type=int, default=export.RECORDS_LOG_LIMIT, metavar="BYTES",
                     help="with --result-line: above this size once encoded the records are not written to the "
                          "log, only a line that says so (the kubelet rotates a container's log at 10 MiB by "
                          "default and pods/log reads only the current file)")
    for role in ("worker", "record-processor"):
        r = sub.add_parser(role, help=f"one {role}")
        add_address(r, "--controller-host", "LOADGEN_CONTROLLER_HOST", "127.0.0.1")
        r.add_argument("--id", help="its name in the records (default: random)")
    sub.add_parser("target", help="the test endpoint (see: python -m loadgen target --help)", add_help=False)
    return p


def run_config(a: argparse.Namespace) -> RunConfig:
    if a.concurrency is not None and a.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1 (got {a.concurrency})")
    workers = a.workers
    if workers is None:
        workers = config.sized_workers(a.concurrency, max(1, a.connections_per_worker))
    processors = a.record_processors if a.record_processors is not None else config.sized_record_processors(workers)
    load = f"concurrency{a.concurrency}" if a.concurrency else f"rate{a.request_rate or 0:g}"
    name = a.name or f"{a.model.replace('/', '_')}-{a.endpoint_type}-{load}-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = RunConfig(endpoint=a.endpoint, model=a.model, endpoint_type=a.endpoint_type, streaming=a.streaming,
                    concurrency=a.concurrency, request_rate=a.request_rate, arrival=a.arrival, duration=a.duration,
                    requests=a.requests, grace=a.grace, warmup=a.warmup_requests, ramp_up=a.ramp_up,
                    isl=a.isl, osl=a.osl, dataset=a.dataset, workers=workers,
                    record_processors=processors, connections_per_worker=a.connections_per_worker,
                    request_timeout=a.request_timeout, seed=a.seed, name=name)
    config.validate(cfg)
    return cfg


def _role_argv(argv: list[str]) -> list[str]:
    role = os.environ.get("LOADGEN_ROLE", "")
    if role and (not argv or argv[0] not in ROLES) and argv[:1] not in (["-h"], ["--help"], ["--version"]):
        return [role, *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = _role_argv(list(sys.argv[1:] if argv is None else argv))
    if argv[:1] == ["target"]:
        return target.main(argv[1:])
    a = parser().parse_args(argv)
    if a.role is None:
        parser().print_help()
        return EXIT_USAGE
    # `run` keeps the terminal for the live view and the table (its log is logs/loadgen.log); the
    # other roles log to stderr, which is their pod's log.
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING if a.role == "run" else logging.INFO)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=[stderr])
    try:
        if a.role == "run":
            outcome = local.run(run_config(a), a.artifacts, single_process=a.single_process,
                                live_interval=a.live_interval)
        elif a.role == "controller":
            cfg = run_config(a)
            out_dir = a.artifacts / cfg.name
            local.preflight(cfg, out_dir)
            local.log_to(out_dir / "logs" / "loadgen.log")
            with local.event_loop_runner() as runner:
                outcome = runner.run(Controller(cfg, Ports.parse(a.ports), a.bind_host, out_dir,
                                                live_interval=a.live_interval,
                                                startup_timeout=a.startup_timeout).run())
        else:
            ports = Ports.parse(a.ports)
            serve = worker.serve if a.role == "worker" else record_processor.serve
            with local.event_loop_runner() as runner:
                runner.run(serve(a.controller_host, ports, a.id))
            return 0
    except ConfigError as e:
        print(f"loadgen: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except LoadgenError as e:
        print(f"loadgen: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("loadgen: interrupted", file=sys.stderr)
        return 130
    print(local.report(outcome))
    if getattr(a, "result_line", False):
        print(export.result_line(outcome.summary_path), flush=True)
        for line in export.records_lines(outcome.summary_path.parent / export.JSONL, a.records_log_limit):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    if not outcome.ok:
        print(f"loadgen: error: {'; '.join(outcome.problems)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0
