"""The run's artifacts, under AIPerf's file names so that results compare side by side:
profile_export.jsonl (one record per request, written as they arrive), profile_export_aiperf.json
and profile_export_aiperf.csv (the aggregate), logs/, and READY, written last, for a results sidecar
to know the folder is complete."""

import csv
import io
import json
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
    (out_dir / READY).write_text(json.dumps({"ok": not problems, "summary": SUMMARY_JSON}) + "\n")
    return path


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
