"""`load results`: a run's metrics (the controller's summary, AIPerf's metric names) as a table, JSON or
CSV, a PNG of the latency percentiles, and the summary written home as AIPerf's export files."""

import csv
import io
import json
from pathlib import Path
from typing import Any

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


def write_home(folder: Path, record: dict[str, Any]) -> Path:
    """The summary under AIPerf's names in <folder>/artifacts/ (a run on a cluster: from the
    controller's log; `--here` writes the whole folder itself)."""
    out = folder / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    summary = record["result"]
    (out / export.SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    (out / export.SUMMARY_CSV).write_text(export.to_csv(summary))
    return out
