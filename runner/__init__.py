"""The benchmark runner: the program inside the benchmark Jobs' pods (and on a laptop).

It reads one config, runs the benchmark of the config's kind and writes one result record
(runner/result.py). This package's top level, `runner.result` and `runner.errors` import no torch,
so the deploy tool can parse results without it."""

__version__ = "0.1.0"
