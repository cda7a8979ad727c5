"""Training runs as a workload: charts/training, one Indexed Job of one completion, one result (the
runner's KAIML_RESULT, whose metrics and artifact keys the record keeps)."""

from deploy.workloads.kind import Workload
from deploy.workloads.train import progress, results, spec

TRAIN = Workload(
    name="train",
    title="training run",
    unit="run",
    chart="training",
    namespace_key="training",
    plan=spec.plan,
    report=results,  # type: ignore[arg-type]  # a module that has the Report's functions
    # A lost log is not a reason to train again: the model and metrics are in the object store.
    rerun_lost=False,
    # `train stop` keeps the pod's log (progress, the result) beside the results.
    keep_logs=True,
    progress=progress.step_of_log,
)


def job_name(run: str) -> str:
    """The run's Job, and its key prefix in the object store (KAIML_RUN_ID)."""
    return f"{run}-{spec.GROUP}"
