"""`bench results`: results.jsonl as a table, JSON or CSV, and a PNG of p50 latency per config. A
failed config is a row too, with no figures and the reason in `failure`."""

import csv
import io
import json
from pathlib import Path
from typing import Any

COLUMNS = (
    "config", "gpuType", "model", "batchSize", "precision",
    "p50_ms", "p90_ms", "p99_ms", "throughput", "node", "failure",
)  # fmt: skip


def rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in sorted(records, key=lambda r: r["config"]):
        values, result = r.get("values") or {}, r.get("result") or {}
        latency = result.get("latency_ms") or {}
        out.append(
            {
                "config": r["config"],
                "gpuType": r.get("gpuType") or values.get("gpuType", ""),
                "model": values.get("model", ""),
                "batchSize": values.get("batchSize", ""),
                "precision": values.get("precision", ""),
                "p50_ms": latency.get("p50"),
                "p90_ms": latency.get("p90"),
                "p99_ms": latency.get("p99"),
                "throughput": result.get("throughput"),
                "node": r.get("node") or "",
                "failure": r.get("failure") or "",
            }
        )
    return out


def as_json(records: list[dict[str, Any]]) -> str:
    return json.dumps(sorted(records, key=lambda r: r["config"]), indent=2)


def as_csv(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def plot(table: list[dict[str, Any]], path: Path, title: str) -> None:
    """Bars of p50 latency per config, grouped and coloured by GPU type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_gpu: dict[str, list[dict[str, Any]]] = {}
    for row in (r for r in table if not r["failure"]):
        by_gpu.setdefault(row["gpuType"] or "cpu", []).append(row)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(table) + 2), 4))
    x = 0
    ticks, labels = [], []
    for n, (gpu, items) in enumerate(sorted(by_gpu.items())):
        xs = list(range(x, x + len(items)))
        ax.bar(xs, [r["p50_ms"] or 0 for r in items], color=f"C{n}", label=gpu)
        ticks += xs
        labels += [f"{r['config']}\nbs{r['batchSize']} {r['precision']}" for r in items]
        x += len(items) + 1
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_ylabel("latency p50 (ms)")
    ax.set_title(title)
    ax.legend(title="GPU type")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
