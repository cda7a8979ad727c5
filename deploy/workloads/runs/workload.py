"""Multi-rank runs as a workload: charts/run, one Indexed Job per named node, one result per rank (the
rank's runner record, with its raw samples); the report aggregates them. All or nothing: the named nodes
are checked before the install, and a run whose ranks do not all start in time is released."""

from deploy.workloads.kind import Workload
from deploy.workloads.runs import report
from deploy.workloads.runs.placement import GROUP_LABEL, RUN_LABEL, check_nodes, wait_started
from deploy.workloads.runs.spec import plan_run

RUNS = Workload(
    name="run",
    title="run",
    unit="rank",
    chart="run",
    namespace_key="benchmarks",
    plan=plan_run,
    report=report,  # type: ignore[arg-type]  # a module that has the Report's functions
    run_label=RUN_LABEL,
    group_label=GROUP_LABEL,
    launch="start",
    rerun_lost=False,  # a rank cannot run again alone: its peers are gone
    preflight=check_nodes,
    admit=wait_started,
)
