"""Everything that happens before the cluster is touched: values merged (and templated), the plan,
each release's final values written to the run folder and checked against its chart's schema."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy import tools
from deploy.console import log
from deploy.errors import ValuesError
from deploy.paths import CHARTS, VALUES
from deploy.platform import charts
from deploy.platform.plan import Plan, build_plan, components
from deploy.platform.runfolder import RUNS, RunFolder
from deploy.platform.schema import validate_release, validate_umbrella
from deploy.platform.state import release_digest
from deploy.platform.values import FAST_DUMPER, Inputs, Merged, deep_merge, merge_inputs

# The only part of `global` that the cluster-scoped release gets: it is one release shared by every
# environment on the cluster and runs no image, so it must render (and digest) the same whichever
# environment applies it, or two environments would upgrade it back and forth. An allowlist, so that a
# new per-environment global (a namespace, a tag, a Secret's name) cannot bring that churn back.
CLUSTER_GLOBALS = ("commonLabels",)


def release_values(values: dict[str, Any], alias: str, cluster_scoped: bool = False) -> dict[str, Any]:
    """What Helm gives the subchart behind `alias` of the umbrella: its section plus `global`."""
    section = values.get(alias) or {}
    if not isinstance(section, dict):
        raise ValuesError(f"{alias}: must be a mapping of the component's values, not {type(section).__name__}.")
    out = {k: v for k, v in section.items() if k != "enabled"}
    if "global" in values:
        out["global"] = deep_merge(values["global"], section.get("global") or {})
        if cluster_scoped:
            out["global"] = {k: v for k, v in out["global"].items() if k in CLUSTER_GLOBALS}
    return out


def write_values(run_dir: Path, name: str, values: dict[str, Any]) -> Path:
    path = run_dir / "values" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(values, Dumper=FAST_DUMPER, sort_keys=False))
    return path


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


def build_dependencies(prep: Prepared) -> None:
    """The planned charts' `file://` dependencies packaged where stale (before helm renders them)."""
    charts.build_dependencies(tools.tool("helm"), [r.chart_dir for r in prep.plan.ordered()], log=log)
