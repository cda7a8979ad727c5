"""Timing loops: one duration per measured iteration, in nanoseconds.

CPU: `time.perf_counter_ns()` around each call. CUDA: a pair of CUDA events around each call,
recorded on the current stream, and one synchronize after the loop, so that the host never waits
inside the measured loop and the events measure the GPU's time of each iteration."""

import time
from collections.abc import Callable

import torch


def time_cpu(fn: Callable[[], object], warmup: int, iterations: int) -> list[int]:
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    durations = [0] * iterations
    for i in range(iterations):
        start = clock()
        fn()
        durations[i] = clock() - start
    return durations


def time_cuda(fn: Callable[[], object], warmup: int, iterations: int) -> list[int]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    for i in range(iterations):
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    # elapsed_time is in ms (float, ~0.5 us resolution).
    return [round(s.elapsed_time(e) * 1e6) for s, e in zip(starts, ends, strict=True)]


def time_iterations(fn: Callable[[], object], device: torch.device, warmup: int, iterations: int) -> list[int]:
    if device.type == "cuda":
        return time_cuda(fn, warmup, iterations)
    return time_cpu(fn, warmup, iterations)
