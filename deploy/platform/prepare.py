"""Everything that happens before the cluster is touched: values merged (and templated), the plan,
each release's final values written to the run folder and checked against its chart's schema."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.paths import CHARTS, VALUES
from deploy.platform.plan import Plan, build_plan, components
from deploy.platform.render import Inputs, Merged, merge_inputs, release_values, write_values
from deploy.platform.runfolder import RUNS, RunFolder
from deploy.platform.schema import validate_release, validate_umbrella
from deploy.platform.state import release_digest


@dataclass
class Selection:
    only: list[str] = field(default_factory=list)
    with_deps: bool = False


@dataclass
class Prepared:
    inputs: Inputs
    selection: Selection
    plan: Plan
    merged: Merged
    run: RunFolder
    values: dict[str, dict[str, Any]]  # alias -> final values of its release
    digests: dict[str, str]  # alias -> digest

    @property
    def namespace(self) -> str:
        return self.inputs.namespace


def prepare(
    inputs: Inputs,
    selection: Selection,
    runs_root: Path = RUNS,
    values_dir: Path = VALUES,
    charts_dir: Path = CHARTS,
    validate: bool = True,
) -> Prepared:
    """Raise ValuesError/PlanError on bad input; the run folder keeps what was rendered so far.
    validate=False leaves the per-release schema check to the caller (`validate_values`); the
    umbrella's schema is always checked."""
    run = RunFolder.create(inputs.env, runs_root)
    merged = merge_inputs(inputs, run.path, values_dir=values_dir, charts_dir=charts_dir)
    validate_umbrella(merged, charts_dir)  # always: an unknown top-level key changes no release's digest
    plan = build_plan(inputs.env, merged.values, components(charts_dir), selection.only, selection.with_deps)
    run.write_json("plan.json", plan.as_dict())
    values, digests = {}, {}
    for rel in plan.ordered():
        values[rel.alias] = release_values(merged.values, rel.alias, cluster_scoped=rel.cluster_scoped)
        write_values(run.path, rel.name, values[rel.alias])
    prep = Prepared(inputs, selection, plan, merged, run, values, digests)
    for rel in plan.ordered():
        if validate:
            validate_release(rel.name, rel.alias, rel.chart_dir, values[rel.alias], merged)
        digests[rel.alias] = release_digest(rel.chart_dir, values[rel.alias], inputs.namespace)
    return prep


def validate_values(prep: Prepared) -> None:
    """The schema check that prepare(validate=False) left out (ValuesError on a violation)."""
    for rel in prep.plan.ordered():
        validate_release(rel.name, rel.alias, rel.chart_dir, prep.values[rel.alias], prep.merged)
