"""`load results`: a run's metrics (the controller's summary, AIPerf's metric names) as a table, JSON or
CSV, a PNG of the latency percentiles; and a cluster run's exports (summary, per-request records, the
controller's log) written home from the controller's log, as AIPerf's files."""

import csv
import io
import json
from pathlib import Path
from typing import Any

from deploy.console import warning
from loadgen import export
from loadgen.metrics import RECORD_METRICS

COLUMNS = ("metric", "unit", "avg", "min", "max", "p50", "p90", "p99")
STATS = COLUMNS[2:]
LATENCIES = ("time_to_first_token", "inter_token_latency", "request_latency")


def rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per metric of the (last) run's summary: the distributions, then the totals."""
    if not records:
        return []
    summary = records[-1]["result"]
    out = []
    for tag in [*export.TABLE_ROWS, *export.TOTALS]:
        metric = summary.get(tag)
        if not isinstance(metric, dict):
            continue
        name = RECORD_METRICS[tag][0] if tag in RECORD_METRICS else export.TOTALS[tag]
        row = {"metric": name, "unit": metric.get("unit", "")}
        for stat in STATS:
            value = metric.get(stat)
            row[stat] = None if value is None or (tag in export.TOTALS and stat != "avg") else round(value, 2)
        out.append(row)
    return out


def accounting(record: dict[str, Any]) -> str:
    acc = record["result"]["accounting"]
    return (f"sent {acc['sent']} = recorded {acc['recorded']} + errors {acc['errors']} (lost {acc['lost']}, "
            f"duplicates {acc['duplicates']})")  # fmt: skip


def as_json(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, indent=2)


def as_csv(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def plot(table: list[dict[str, Any]], path: Path, title: str) -> None:
    """p50, p90 and p99 of TTFT, ITL and request latency, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in table if r["unit"] == "ms"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.25
    for n, stat in enumerate(("p50", "p90", "p99")):
        ax.bar([i + n * width for i in range(len(shown))], [r[stat] or 0 for r in shown], width, label=stat)
    ax.set_xticks([i + width for i in range(len(shown))], [r["metric"] for r in shown], fontsize=7)
    ax.set_ylabel("ms")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


ARTIFACTS = "artifacts"


def save_artifacts(log_text: str, folder: Path) -> None:
    """The controller's log written into <folder>/artifacts/ as a `--here` run leaves that folder: AIPerf's
    summary JSON and CSV, the per-request JSONL the log carries (checked whole: parts, lines, checksum;
    written under a temporary name and renamed), the controller's log in logs/loadgen.log, and READY last.
    Records that did not come whole are a warning: the summary still counts."""
    summary = export.find_result(log_text)
    if summary is None:
        return
    out = folder / ARTIFACTS
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / export.SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    (out / export.SUMMARY_CSV).write_text(export.to_csv(summary))
    (out / "logs" / "loadgen.log").write_text(export.without_records(log_text))
    try:
        raw = export.find_records(log_text)
    except export.RecordsMissing as e:
        warning(f"the per-request records ({export.JSONL}) were not brought home: {e}. The summary was.")
    else:
        partial = out / (export.JSONL + ".part")
        partial.write_bytes(raw)
        partial.replace(out / export.JSONL)
    export.ready(out, not summary.get("problems"))
