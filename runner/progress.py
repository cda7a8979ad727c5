"""Progress lines of long runs (kind `train`): `KAIML_PROGRESS <compact JSON>` on stdout, flushed
at once, so that a follower reading the pod's log can show epoch, step, loss and samples/s while the
run goes on. The one `KAIML_RESULT` line at the end stays the record; progress lines are advisory.

No torch here: a follower imports `parse_line`."""

import json
import sys
from typing import Any, TextIO

from runner.result import parse_marked

SCHEMA = "kaiml.progress/v1"
MARKER = "KAIML_PROGRESS"


def line(event: str, **fields: Any) -> str:
    """One progress line: `event` is `start`, `step`, `checkpoint`, `epoch` or `done`."""
    record = {"schema": SCHEMA, "event": event, **fields}
    return f"{MARKER} {json.dumps(record, separators=(',', ':'), ensure_ascii=True, allow_nan=False)}"


def emit(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    out = stream or sys.stdout
    out.write(line(event, **fields) + "\n")
    out.flush()


def parse_line(text: str) -> dict[str, Any] | None:
    """The record of a progress line (a timestamp prefix allowed), or None for any other line."""
    return parse_marked(text, MARKER, SCHEMA)
