"""What the roles send each other over ZMQ: multipart [kind, msgpack body] messages, and the sockets.
msgpack rather than JSON: raw responses travel as bytes (no decoding in the worker) and a record
costs a few microseconds to encode, not tens."""

import resource
from typing import Any

import msgpack
import zmq

# controller ROUTER <-> worker DEALER
HELLO = b"hello"  # worker -> controller: {worker, pid}; record processor -> controller too (records socket)
CONFIG = b"config"  # controller -> worker: {config, url, dataset, capacity}
CREDITS = b"credits"  # controller -> worker: [[session_num, dataset_index], ...]
DONE = b"done"  # worker -> controller: [session_num, ...] (credits returned)
CANCEL = b"cancel"  # controller -> worker: cancel what is in flight (grace period over)
STOP = b"stop"  # controller -> worker: finish and say bye
BYE = b"bye"  # worker/record processor -> controller: {role, pid, cpu_s, ...}
# record processor -> controller (records socket)
RECORDS = b"records"
# event bus topics (controller PUB -> XSUB/XPUB proxy -> SUB)
SHUTDOWN = b"shutdown"


def pack(kind: bytes, body: Any = None) -> list[bytes]:
    return [kind, msgpack.packb(body, use_bin_type=True)]


def unpack(frames: list[bytes]) -> tuple[bytes, Any]:
    return frames[0], msgpack.unpackb(frames[1], raw=False) if len(frames) > 1 else None


def tcp(host: str, port: int) -> str:
    return f"tcp://{host}:{port}"


def unbounded(sock: zmq.Socket) -> zmq.Socket:
    """No high-water mark: a burst of credits or records queues rather than blocks or drops;
    the number in flight is bounded by the credits themselves. No linger on close."""
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.LINGER, 0)
    return sock


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
