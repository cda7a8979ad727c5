"""Benchmark sweeps as a workload: charts/benchmark, one Indexed Job per scheduling group, one result
per config (the runner's KAIML_RESULT)."""

from deploy.workloads.bench import results
from deploy.workloads.bench.sweep import plan_sweep
from deploy.workloads.kind import Workload

SWEEP_LABEL = "kai-ml.io/benchmark"
GROUP_LABEL = "kai-ml.io/benchmark-group"

BENCH = Workload(
    name="bench",
    title="sweep",
    unit="config",
    chart="benchmark",
    namespace_key="benchmarks",
    plan=plan_sweep,
    report=results,  # type: ignore[arg-type]  # a module that has the Report's functions
    run_label=SWEEP_LABEL,
    group_label=GROUP_LABEL,
    name_key="sweep",
    units_key="configs",
)
