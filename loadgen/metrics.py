"""AIPerf's metric definitions: per request in the record processors, aggregated in the records manager.

Per request (ms unless said): request_latency (start to last byte), time_to_first_token (start to the
first response with content), time_to_second_token, inter_chunk_latency, output_sequence_length and
input_sequence_length (tokens), inter_token_latency = (request_latency - TTFT) / (OSL - 1),
output_token_throughput_per_user = 1000 / ITL. Over the run: request_throughput and
output_token_throughput over benchmark_duration (first request start to last response end)."""

import bisect
import itertools
import json
import math
from collections.abc import Sequence

from loadgen.tokenizer import count_tokens

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
# tag -> (header, unit), in AIPerf's order and wording.
RECORD_METRICS = {
    "time_to_first_token": ("Time to First Token", "ms"),
    "time_to_second_token": ("Time to Second Token", "ms"),
    "request_latency": ("Request Latency", "ms"),
    "inter_token_latency": ("Inter Token Latency", "ms"),
    "output_token_throughput_per_user": ("Output Token Throughput Per User", "tokens/sec/user"),
    "output_sequence_length": ("Output Sequence Length", "tokens"),
    "input_sequence_length": ("Input Sequence Length", "tokens"),
}
NS_PER_MS = 1e6


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """numpy's default (linear) percentile of sorted values, as AIPerf reports."""
    rank = p / 100 * (len(sorted_values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def distribution(values: Sequence[float]) -> dict[str, float]:
    """avg, min, max, p1..p99 and std (population), AIPerf's keys."""
    s = sorted(values)
    n = len(s)
    avg = math.fsum(s) / n
    out = {"avg": avg, "min": s[0], "max": s[-1]}
    out.update({f"p{p}": percentile(s, p) for p in PERCENTILES})
    out["std"] = math.sqrt(math.fsum((v - avg) ** 2 for v in s) / n)
    return out


def sse_events(chunks: list[list]) -> list[tuple[int, bytes | str]]:
    """(arrival ns, data payload) of each server-sent event; an event arrives with the read that
    completed it. `chunks` are the worker's [offset_ns, bytes] reads in order."""
    if any(b"\r" in data for _, data in chunks):
        return _sse_events_crlf(chunks)
    # The common case in C-level splits: the whole body split at blank lines, each event placed in
    # the read where it ends (by the reads' cumulative lengths).
    body = b"".join(data for _, data in chunks)
    ends = list(itertools.accumulate(len(data) for _, data in chunks))
    events: list[tuple[int, bytes | str]] = []
    position = 0
    blocks = body.split(b"\n\n")
    for block in blocks[:-1]:  # the last piece has no blank line after it: not a complete event
        position += len(block) + 2
        if block.startswith(b"data:") and b"\n" not in block:
            payload: bytes | str = block[5:].lstrip()
        else:
            text = block.decode("utf-8", "replace")
            payload = "\n".join(line[5:].lstrip() for line in text.split("\n") if line.startswith("data:"))
        if payload:
            events.append((chunks[bisect.bisect_left(ends, position)][0], payload))
    return events


def _sse_events_crlf(chunks: list[list]) -> list[tuple[int, bytes | str]]:
    """The general parser (events may end in \\r\\n\\r\\n), read by read."""
    events: list[tuple[int, bytes | str]] = []
    buffer = b""
    for at, data in chunks:
        buffer += data
        while True:
            # SSE events end at a blank line; accept \r\n too.
            cut = buffer.find(b"\n\n")
            alt = buffer.find(b"\r\n\r\n")
            if cut < 0 and alt < 0:
                break
            if alt >= 0 and (cut < 0 or alt < cut):
                block, buffer = buffer[:alt], buffer[alt + 4:]
            else:
                block, buffer = buffer[:cut], buffer[cut + 2:]
            text = block.decode("utf-8", "replace")
            payload = "\n".join(line[5:].lstrip() for line in text.splitlines() if line.startswith("data:"))
            if payload:
                events.append((at, payload))
    return events


def _content(payload: dict, streaming: bool) -> str:
    choices = payload.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    if streaming:
        delta = choice.get("delta") or {}
        return delta.get("content") or delta.get("reasoning_content") or choice.get("text") or ""
    message = choice.get("message") or {}
    return message.get("content") or choice.get("text") or ""


class ResponseError(Exception):
    """The endpoint answered 2xx but with an error object or an unreadable body."""


def _whole_events(chunks: list[list]) -> list[tuple[int, bytes]] | None:
    """The fast path of sse_events: each read holds whole one-line `data:` events (a server that writes an
    event per write, as LLM servers do); None when any read does not (sse_events then reads them)."""
    events = []
    for at, data in chunks:
        if not data.endswith(b"\n\n") or b"\r" in data:
            return None
        for block in data[:-2].split(b"\n\n"):
            if not block.startswith(b"data:") or b"\n" in block:
                return None
            payload = block[5:].lstrip()
            if payload:
                events.append((at, payload))
    return events


def _parse_events(events: list[tuple[int, bytes | str]]) -> list:
    """Each event's JSON. One parse of them all as an array when each is one object (the C parser once,
    not a Python call per event); event by event otherwise, to name the one at fault."""
    payloads = [data if isinstance(data, bytes) else data.encode() for _, data in events]
    try:
        parsed = json.loads(b"[" + b",".join(payloads) + b"]")
        if len(parsed) == len(payloads) and all(type(p) is dict for p in parsed):
            return parsed
    except json.JSONDecodeError:
        pass
    out = []
    for data in payloads:
        try:
            out.append(json.loads(data))
        except json.JSONDecodeError:
            raise ResponseError(f"unreadable stream event: {data[:120]!r}") from None
    return out


def responses(raw: dict) -> list[tuple[int, str]]:
    """(offset ns, content) of each response that carried content."""
    if raw["streaming"]:
        events = _whole_events(raw["chunks"])
        if events is None:
            events = sse_events(raw["chunks"])
        events = [e for e in events if e[1] not in (b"[DONE]", "[DONE]")]
        out = []
        for (at, _), payload in zip(events, _parse_events(events), strict=True):
            if not isinstance(payload, dict):
                raise ResponseError(f"stream event is not an object: {json.dumps(payload)[:120]}")
            if payload.get("error"):
                raise ResponseError(f"error event: {json.dumps(payload['error'])[:200]}")
            text = _content(payload, True)
            if text:
                out.append((at, text))
        return out
    body = b"".join(data for _, data in raw["chunks"]).decode("utf-8", "replace")
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        raise ResponseError(f"unreadable response body: {body[:120]}") from None
    if not isinstance(payload, dict) or payload.get("error"):
        raise ResponseError(f"error response: {body[:200]}")
    text = _content(payload, False)
    return [(raw["end"], text)] if text else []


def process(raw: dict, processor_id: str) -> dict:
    """One worker record into AIPerf's per-request JSONL shape: metadata, metrics, error."""
    start = raw["start_ns"]
    error = raw.get("error")
    metrics: dict[str, dict] = {}
    if error is None:
        try:
            got = responses(raw)
            if not got:
                raise ResponseError("no content in the response")
        except ResponseError as e:
            error = {"code": raw.get("status"), "type": "ResponseError", "message": str(e)}
    if error is None:
        text = "".join(t for _, t in got)
        osl = count_tokens(text)
        latency = raw["end"] / NS_PER_MS
        metrics["input_sequence_length"] = {"value": raw["isl"], "unit": "tokens"}
        metrics["request_latency"] = {"value": latency, "unit": "ms"}
        metrics["output_sequence_length"] = {"value": osl, "unit": "tokens"}
        if raw["streaming"]:
            ttft = got[0][0] / NS_PER_MS
            metrics["time_to_first_token"] = {"value": ttft, "unit": "ms"}
            if len(got) > 1:
                metrics["time_to_second_token"] = {"value": (got[1][0] - got[0][0]) / NS_PER_MS, "unit": "ms"}
                metrics["inter_chunk_latency"] = {
                    "value": [(b[0] - a[0]) / NS_PER_MS for a, b in itertools.pairwise(got)], "unit": "ms"}
            if osl > 1 and latency > ttft:
                itl = (latency - ttft) / (osl - 1)
                metrics["inter_token_latency"] = {"value": itl, "unit": "ms"}
                metrics["output_token_throughput_per_user"] = {"value": 1000 / itl, "unit": "tokens/sec/user"}
    else:
        metrics["error_isl"] = {"value": raw["isl"], "unit": "tokens"}
    return {
        "metadata": {
            "session_num": raw["id"],
            "x_request_id": raw["rid"],
            "turn_index": 0,
            "request_start_ns": start,
            "request_ack_ns": start + raw["ack"] if raw.get("ack") is not None else None,
            "request_end_ns": start + raw["end"],
            "worker_id": raw["worker"],
            "record_processor_id": processor_id,
            "benchmark_phase": "warmup" if raw.get("warmup") else "profiling",
            "was_cancelled": bool(raw.get("cancelled")),
            "cancellation_time_ns": start + raw["end"] if raw.get("cancelled") else None,
        },
        "metrics": metrics,
        "error": error,
    }


def compact(record: dict) -> list:
    """What the records manager needs of a record: [session, phase, error key or None, scalar metrics,
    start, end, error ISL, the JSONL line]. The line is encoded here, in the scaled-out role."""
    meta = record["metadata"]
    error = record["error"]
    key = None if error is None else [error.get("code"), error.get("type"), error.get("message")]
    values = {tag: m["value"] for tag, m in record["metrics"].items() if tag in RECORD_METRICS}
    error_isl = record["metrics"].get("error_isl", {}).get("value") if error is not None else None
    return [meta["session_num"], meta["benchmark_phase"], key, values, meta["request_start_ns"],
            meta["request_end_ns"], error_isl, json.dumps(record, separators=(",", ":"))]


class Aggregate:
    """The records manager's running totals; per-request values kept for the percentiles."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {tag: [] for tag in RECORD_METRICS}
        self.seen: set[int] = set()
        self.duplicates = 0
        self.warmup = 0
        self.ok = 0
        self.errors: dict[tuple, int] = {}
        self.error_isl: list[float] = []
        self.first_start: int | None = None
        self.last_end: int | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def add(self, compact_record: list) -> bool:
        """Count one record (as `compact` made it); False, and nothing counted, for a session
        already recorded."""
        session, phase, error, values, start, end, error_isl, _ = compact_record
        if session in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(session)
        if phase == "warmup":
            self.warmup += 1
            return True
        if error is not None:
            key = tuple(error)
            self.errors[key] = self.errors.get(key, 0) + 1
            if error_isl is not None:
                self.error_isl.append(error_isl)
            return True
        self.ok += 1
        for tag, value in values.items():
            self.values[tag].append(value)
        self.first_start = start if self.first_start is None else min(self.first_start, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)
        return True

    def summary(self) -> dict:
        """AIPerf's profile_export_aiperf.json metrics: distributions, then the run's totals."""
        out: dict[str, dict] = {}
        duration_s = (self.last_end - self.first_start) / 1e9 if self.ok and self.last_end > self.first_start else 0.0
        total_osl = math.fsum(self.values["output_sequence_length"])
        if duration_s:
            out["request_throughput"] = {"unit": "requests/sec", "avg": self.ok / duration_s}
            out["output_token_throughput"] = {"unit": "tokens/sec", "avg": total_osl / duration_s}
        for tag, (_, unit) in RECORD_METRICS.items():
            if self.values[tag]:
                out[tag] = {"unit": unit, **distribution(self.values[tag])}
        out["benchmark_duration"] = {"unit": "sec", "avg": duration_s}
        out["request_count"] = {"unit": "requests", "avg": self.ok}
        out["error_request_count"] = {"unit": "requests", "avg": self.error_count}
        out["total_isl"] = {"unit": "tokens", "avg": math.fsum(self.values["input_sequence_length"])}
        out["total_osl"] = {"unit": "tokens", "avg": total_osl}
        if self.error_isl:
            out["error_isl"] = {"unit": "tokens", **distribution(self.error_isl)}
        return out

    def error_summary(self) -> list[dict]:
        return [{"error_details": {"code": c, "type": t, "message": m}, "count": n}
                for (c, t, m), n in sorted(self.errors.items(), key=lambda kv: -kv[1])]
