"""loadgen's achieved request rate against the ideal, and its CPU per request (issue 16).

Against loadgen's own target on loopback (TTFT 50 ms, ITL 20 ms, 32 output tokens, streaming), at
each concurrency C: the ideal rate is C / (TTFT + 31 * ITL) = C / 0.67 s; loadgen runs the whole
topology as processes (sized from C unless --workers), after a warm-up of C requests. Printed per
C: AIPerf's request_throughput and its ratio to the ideal, the steady rate (completions per second in the
middle half of the run, without the ramp-down that request_throughput takes in) and its ratio, TTFT and
ITL p50, errors, the engine's CPU per request
(controller, workers and record processors, from their own rusage during the run) and the target's
(from /proc). --lean runs a minimal aiohttp client (one process, no ZMQ, no metrics) at the same
load for reference: on a shared machine it shows what the machine allowed at that moment.
Targets: >= 0.95 of ideal at C = 500 on 2 cores, <= 1 ms engine CPU per request.

    .venv/bin/python benchmarks/loadgen_throughput.py [--concurrency 50 500 5000] [--duration 15] [--lean]"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen_common import Target, load_average, run_loadgen

TTFT_MS, ITL_MS, TOKENS = 50, 20, 32
IDEAL_LATENCY_S = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000


async def _lean(url: str, concurrency: int, duration: float) -> dict:
    """The reference client: C loops of POST + read the stream, nothing else."""
    import aiohttp

    body = json.dumps(
        {
            "model": "bench",
            "stream": True,
            "max_tokens": TOKENS,
            "messages": [{"role": "user", "content": "hello " * 128}],
        }
    ).encode()
    done = 0
    warm_end = time.monotonic() + min(5.0, duration / 3)
    end = warm_end + duration

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < end:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                async for _ in r.content.iter_any():
                    pass
            if warm_end < time.monotonic() <= end:  # completed inside the measured window
                done += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(loop(session) for _ in range(concurrency)))
    usage = os.times()
    return {"rate": done / duration, "cpu_s": usage.user + usage.system}


def steady_rate(ends: list[int], duration: float) -> float:
    """Requests completed per second in the middle of the run: AIPerf's request_throughput divides by first
    start to last end, which takes in the last requests' whole latency after issuing stopped (0.67 s of a
    15 s run: 4 % less than the rate held). The middle half of the span of ends has no such edge."""
    ends = sorted(ends)
    if len(ends) < 4:
        return 0.0
    span = ends[-1] - ends[0]
    low, high = ends[0] + span // 4, ends[0] + 3 * span // 4
    inside = sum(1 for e in ends if low <= e < high)
    return inside / ((high - low) / 1e9)


def lean(url: str, concurrency: int, duration: float) -> dict:
    code = (
        f"import asyncio, json, sys, uvloop; sys.path.insert(0, {str(Path(__file__).parent)!r});"
        f"from loadgen_throughput import _lean;"
        f"print(json.dumps(uvloop.run(_lean({url!r}, {concurrency}, {duration}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[50, 500, 5000])
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per concurrency")
    p.add_argument("--target-processes", type=int, default=1)
    p.add_argument("--workers", type=int, help="default: loadgen's sizing (500 connections per worker)")
    p.add_argument("--lean", action="store_true", help="also run the minimal aiohttp client at each concurrency")
    a = p.parse_args()
    target = Target(
        "--ttft-ms",
        str(TTFT_MS),
        "--itl-ms",
        str(ITL_MS),
        "--output-tokens",
        str(TOKENS),
        "--processes",
        str(a.target_processes),
    )
    url = target.url + "/v1/chat/completions"
    print(f"cores {os.cpu_count()}, load average at start {load_average()}; ideal latency {IDEAL_LATENCY_S:.2f} s")
    header = (
        f"{'C':>6} {'workers':>8} {'ideal/s':>9} {'req/s':>9} {'ratio':>6} {'steady/s':>9} {'ratio':>6} "
        f"{'TTFT p50':>9} {'ITL p50':>8} "
        f"{'errors':>7} {'engine ms/req':>14} {'target ms/req':>14} {'lean req/s':>11} {'lean ms/req':>12}"
    )
    print(header)
    try:
        for c in a.concurrency:
            ideal = c / IDEAL_LATENCY_S
            args = [
                "--streaming",
                "--concurrency",
                str(c),
                "--duration",
                str(a.duration),
                "--warmup-requests",
                str(c),
                "--osl",
                str(TOKENS),
                "--grace",
                "30",
            ]
            if c >= 2000:
                args += ["--ramp-up", str(max(2.0, c / 1000))]
            if a.workers:
                args += ["--workers", str(a.workers)]
            target_cpu, target_requests = target.cpu(), target.stats()["requests"]
            ends: list[int] = []
            s, _ = run_loadgen(url, *args, ends=ends)
            served = target.stats()["requests"] - target_requests
            target_ms = (target.cpu() - target_cpu) * 1000 / served
            rate = s["request_throughput"]["avg"]
            steady = steady_rate(ends, a.duration)
            line = (
                f"{c:>6} {s['engine']['workers']:>8} {ideal:>9.1f} {rate:>9.1f} {rate / ideal:>6.2f} "
                f"{steady:>9.1f} {steady / ideal:>6.2f} "
                f"{s['time_to_first_token']['p50']:>9.1f} {s['inter_token_latency']['p50']:>8.1f} "
                f"{s['accounting']['errors']:>7} {s['engine']['cpu_ms_per_request']:>14.3f} {target_ms:>14.3f}"
            )
            if a.lean:
                ref = lean(url, c, a.duration)
                line += f" {ref['rate']:>11.1f} {ref['cpu_s'] * 1000 / max(1, ref['rate'] * a.duration):>12.3f}"
            print(line, flush=True)
    finally:
        target.stop()
    print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
