"""Load runs as a workload: charts/loadgen in a namespace of the run's own, one result per run (the
controller's LOADGEN_RESULT line; the exports and per-request records that its log carries are written
into the run folder's artifacts/), the release and its namespace removed once the run is followed."""

from typing import Any

from deploy.errors import PlanError
from deploy.workloads.kind import Values, Workload
from deploy.workloads.load import results
from loadgen import export
from loadgen.export import find_result

# The label the chart puts on the namespace it creates: whose run it is.
OWNER_LABEL = "kai-ml.io/load-run"


def check_namespace(api_client: Any, values: Values, release: str) -> None:
    """Refuse a namespace that exists and is not this run's: a run deletes its namespace afterwards."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    name, run = values["global"]["namespaces"]["load"], values["run"]["name"]
    try:
        found = client.CoreV1Api(api_client).read_namespace(name)
    except ApiException as err:
        if err.status == 404:
            return
        raise
    owner = (found.metadata.labels or {}).get(OWNER_LABEL)
    if owner != run:
        whose = f"load run {owner}'s" if owner else "not made by a load run"
        raise PlanError(
            f"namespace {name} exists and is {whose}: a load run creates its namespace and deletes it afterwards, "
            "so it never runs in one it does not own. Choose another --namespace, or none (load-<run>); nothing "
            "was applied."
        )


def _parse(text: str) -> dict[str, Any] | None:
    return find_result(text)


LOAD = Workload(
    name="load",
    title="load run",
    unit="run",
    chart="loadgen",
    namespace_key="load",
    plan=None,  # planned from `load run`'s options (deploy/workloads/load/plan.py), not from a file
    report=results,  # type: ignore[arg-type]  # a module that has the Report's functions
    container="loadgen",
    parse=_parse,
    save_files=results.save_artifacts,
    rerun_lost=False,  # a lost result means a lost run: running the load again is the user's call
    preflight=check_namespace,
    remove_after_follow=True,
    creates_namespace=True,
    # Every pod's log (controller, workers, record processors) comes home beside the exports before the namespace
    # goes; the per-request records in the controller's are in profile_export.jsonl already.
    keep_logs=True,
    logs_dir=f"{results.ARTIFACTS}/logs",
    log_filter=export.without_records,
)
