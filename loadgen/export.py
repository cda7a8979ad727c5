"""The run's artifacts, under AIPerf's file names so that results compare side by side:
profile_export.jsonl (one record per request, written as they arrive), profile_export_aiperf.json
and profile_export_aiperf.csv (the aggregate), logs/, and READY, written last, for a results sidecar
to know the folder is complete."""

import base64
import csv
import hashlib
import io
import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from loadgen import __version__, tokenizer
from loadgen.config import RunConfig, redact
from loadgen.metrics import PERCENTILES, RECORD_METRICS, Aggregate

JSONL = "profile_export.jsonl"
SUMMARY_JSON = "profile_export_aiperf.json"
SUMMARY_CSV = "profile_export_aiperf.csv"
READY = "READY"
# The controller's last stdout line in a pod: the summary, for whoever reads the pod's log through the
# Kubernetes API (the deploy tool: deploy/workloads/load/result.py).
RESULT_MARKER = "LOADGEN_RESULT"
# After it, the per-request JSONL for the same reader: a header line (JSON: file, lines, bytes, sha256,
# parts; or `skipped` and why), the zlib-compressed file in base64 parts, and an end line.
RECORDS_MARKER = "LOADGEN_RECORDS"
RECORDS_PART = "LOADGEN_RECORDS_PART"
RECORDS_END = "LOADGEN_RECORDS_END"
# The kubelet rotates a container's log at containerLogMaxSize (10 MiB by default) and pods/log returns
# only the current file: the records (encoded) stay under 8 MiB so that, with the live lines and the
# summary before them, the controller's whole log fits in one file. Above it they are not written.
RECORDS_LOG_LIMIT = 8 * 1024 * 1024
# Under the container runtime's 16 KiB line (longer ones are split into partial lines).
RECORDS_PART_CHARS = 8000
STAT_KEYS = ["avg", "min", "max", *(f"p{p}" for p in PERCENTILES), "std"]
# The single-value metrics of the CSV's second section, with AIPerf's headers.
TOTALS = {
    "request_throughput": "Request Throughput",
    "output_token_throughput": "Output Token Throughput",
    "request_count": "Request Count",
    "error_request_count": "Error Request Count",
    "benchmark_duration": "Benchmark Duration",
    "total_isl": "Total Input Sequence Length",
    "total_osl": "Total Output Sequence Length",
}
# The console table: AIPerf's rows and the columns.
TABLE_ROWS = ["time_to_first_token", "time_to_second_token", "inter_token_latency", "request_latency",
              "output_sequence_length", "input_sequence_length", "output_token_throughput_per_user"]
TABLE_COLUMNS = ["avg", "min", "max", "p50", "p90", "p99"]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def write(out_dir: Path, cfg: RunConfig, agg: Aggregate, *, accounting: dict, engine: dict, started_at: float,
          ended_at: float, was_cancelled: bool, problems: list[str]) -> Path:
    metrics = agg.summary()
    summary = {
        **metrics,
        "was_cancelled": was_cancelled,
        "start_time": _iso(started_at),
        "end_time": _iso(ended_at),
        "error_summary": agg.error_summary(),
        "input_config": {
            "endpoint": {"model_names": [cfg.model], "type": cfg.endpoint_type, "streaming": cfg.streaming,
                         "url": redact(cfg.url)},
            "loadgen": {k: v for k, v in cfg.public().items() if v is not None},
        },
        # loadgen's own sections (not in AIPerf's file).
        "loadgen_version": __version__,
        "tokenizer": tokenizer.NAME,
        "accounting": accounting,
        "engine": engine,
        "problems": problems,
    }
    path = out_dir / SUMMARY_JSON
    path.write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / SUMMARY_CSV).write_text(to_csv(metrics))
    ready(out_dir, not problems)
    return path


def ready(out_dir: Path, ok: bool) -> None:
    """The folder is complete (written last)."""
    (out_dir / READY).write_text(json.dumps({"ok": ok, "summary": SUMMARY_JSON}) + "\n")


def result_line(summary_path: Path) -> str:
    """`LOADGEN_RESULT <compact JSON of profile_export_aiperf.json>`: one line, so that a log reader finds it
    whatever else the log holds."""
    summary = json.loads(summary_path.read_text())
    return f"{RESULT_MARKER} {json.dumps(summary, separators=(',', ':'))}"


def find_result(log: str) -> dict | None:
    """The summary of the last LOADGEN_RESULT line of a log, or None."""
    for line in reversed(log.splitlines()):
        marker, _, body = line.strip().partition(" ")
        if marker == RESULT_MARKER:
            try:
                found = json.loads(body)
            except json.JSONDecodeError:
                return None
            return found if isinstance(found, dict) and "accounting" in found else None
    return None


def to_csv(metrics: dict) -> str:
    """AIPerf's layout: the distributions, a blank line, then Metric,Value totals."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["Metric", *STAT_KEYS])
    for tag, (header, unit) in RECORD_METRICS.items():
        if tag in metrics:
            w.writerow([f"{header} ({unit})", *(f"{metrics[tag][k]:.2f}" for k in STAT_KEYS)])
    w.writerow([])
    w.writerow(["Metric", "Value"])
    for tag, header in TOTALS.items():
        if tag in metrics:
            w.writerow([f"{header} ({metrics[tag]['unit']})", f"{metrics[tag]['avg']:.2f}"])
    return out.getvalue()


def table(summary: dict) -> str:
    """The console's metrics table from a profile_export_aiperf.json."""
    head = f"{'Metric':<52}" + "".join(f"{c:>11}" for c in TABLE_COLUMNS)
    lines = [head, "-" * len(head)]
    for tag in TABLE_ROWS:
        if tag in summary:
            header, unit = RECORD_METRICS[tag]
            label = f"{header} ({unit})"
            lines.append(f"{label:<52}" + "".join(f"{summary[tag][c]:>11.2f}" for c in TABLE_COLUMNS))
    for tag, header in TOTALS.items():
        if tag in summary:
            lines.append(f"{header + ' (' + summary[tag]['unit'] + ')':<52}{summary[tag]['avg']:>11.2f}")
    acc = summary["accounting"]
    eng = summary["engine"]
    lines.append(f"sent {acc['sent']} = recorded {acc['recorded']} + errors {acc['errors']}"
                 f" (lost {acc['lost']}, duplicates {acc['duplicates']})")
    per = eng["cpu_ms_per_request"]
    lines.append(f"engine: {eng['mode']}, {eng['workers']} workers, {eng['record_processors']} record processors,"
                 f" CPU {eng['cpu_s']:.2f} s" + (f" ({per:.3f} ms per request)" if per is not None else ""))
    lines.append(f"tokenizer: {summary['tokenizer']}")
    return "\n".join(lines)


def records_lines(jsonl: Path, limit: int = RECORDS_LOG_LIMIT) -> Iterator[str]:
    """The per-request JSONL as log lines (see RECORDS_MARKER), or one header line saying why not: over
    `limit` bytes once encoded. Read in pieces, and compressed only up to the limit: a run of millions
    of requests costs no memory here."""
    digest = hashlib.sha256()
    lines = size = packed_size = 0
    packer = zlib.compressobj(9)
    packed: list[bytes] = []
    over = False
    if jsonl.exists():
        with jsonl.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
                lines += block.count(b"\n")
                size += len(block)
                if not over:
                    packed.append(packer.compress(block))
                    packed_size += len(packed[-1])
                    over = _base64_size(packed_size) > limit
    if not over:
        packed.append(packer.flush())
        over = _base64_size(packed_size + len(packed[-1])) > limit
    header = {"file": JSONL, "lines": lines, "bytes": size, "sha256": digest.hexdigest()}
    if over:
        yield f"{RECORDS_MARKER} " + json.dumps({**header, "skipped": (
            f"the {lines} records take over {limit / 2**20:.1f} MiB compressed, above the controller log's limit "
            "(--records-log-limit; the kubelet rotates a container's log at 10 MiB by default, and pods/log "
            "reads only the current file)")})  # fmt: skip
        return
    encoded = base64.b64encode(b"".join(packed)).decode()
    parts = [encoded[at : at + RECORDS_PART_CHARS] for at in range(0, len(encoded), RECORDS_PART_CHARS)]
    yield f"{RECORDS_MARKER} " + json.dumps({**header, "encoding": "zlib+base64", "parts": len(parts)})
    for part in parts:
        yield f"{RECORDS_PART} {part}"
    yield f"{RECORDS_END} {header['sha256']}"


def _base64_size(n: int) -> int:
    return 4 * -(-n // 3)


class RecordsMissing(Exception):
    """The log carries no whole per-request file; the message says why."""


def find_records(log: str) -> bytes:
    """The per-request JSONL carried by a controller's log (records_lines), checked whole: every part,
    its line count and checksum. Raises RecordsMissing."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(RECORDS_MARKER + " ")]
    if not starts:
        raise RecordsMissing("the controller's log has no per-request records (an engine older than this tool?)")
    try:
        header = json.loads(lines[starts[-1]].split(" ", 1)[1])
        if "skipped" not in header:
            int(header["parts"]), int(header["lines"]), str(header["sha256"])
    except (ValueError, KeyError, TypeError):
        raise RecordsMissing("the records' header line in the log is unreadable") from None
    if "skipped" in header:
        raise RecordsMissing(f"not written to the log: {header['skipped']}")
    parts = []
    for line in lines[starts[-1] + 1 :]:
        marker, _, body = line.partition(" ")
        if marker == RECORDS_PART:
            parts.append(body.strip())
        elif marker == RECORDS_END:
            break
    else:
        raise RecordsMissing(f"the log ends after {len(parts)} of {header['parts']} parts (cut short, or rotated)")
    if len(parts) != header["parts"]:
        raise RecordsMissing(f"{len(parts)} of {header['parts']} parts in the log (lost in a rotation?)")
    try:
        raw = zlib.decompress(base64.b64decode("".join(parts), validate=True))
    except (ValueError, zlib.error) as e:
        raise RecordsMissing(f"the records in the log do not decode ({e})") from None
    if hashlib.sha256(raw).hexdigest() != header["sha256"] or raw.count(b"\n") != header["lines"]:
        raise RecordsMissing("the records in the log do not match their checksum")
    return raw


def without_records(log: str) -> str:
    """The log less the records' lines (what the controller logged)."""
    markers = (RECORDS_MARKER + " ", RECORDS_PART + " ", RECORDS_END + " ")
    return "".join(line for line in log.splitlines(keepends=True) if not line.startswith(markers))
