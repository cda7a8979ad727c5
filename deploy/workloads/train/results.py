"""`train results`: a run's record as a table, JSON or CSV, and a PNG of its loss per epoch."""

import csv
import io
import json
from pathlib import Path
from typing import Any

COLUMNS = (
    "run",
    "model",
    "node",
    "epochs",
    "steps",
    "finalLoss",
    "heldoutAccuracy",
    "samplesPerSec",
    "resumedFromStep",
)


def rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        values, result = r.get("values") or {}, r.get("result") or {}
        metrics = result.get("metrics") or {}
        out.append(
            {
                "run": r.get("group", ""),
                "model": values.get("model", ""),
                "node": r.get("node") or "",
                "epochs": metrics.get("epochs"),
                "steps": metrics.get("steps"),
                "finalLoss": metrics.get("finalLoss"),
                "heldoutAccuracy": metrics.get("heldoutAccuracy"),
                "samplesPerSec": metrics.get("samplesPerSec"),
                "resumedFromStep": metrics.get("resumedFromStep"),
                "epochLoss": metrics.get("epochLoss") or [],
            }
        )
    return out


def as_json(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, indent=2)


def as_csv(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def plot(table: list[dict[str, Any]], path: Path, title: str) -> None:
    """The mean training loss of each epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for n, row in enumerate(table):
        losses = row["epochLoss"]
        ax.plot(range(1, len(losses) + 1), losses, marker="o", color=f"C{n}", label=row["model"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
