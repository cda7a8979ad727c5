"""Planning: levels from the umbrella's components and the enabled flags; --only with and without deps."""

import pytest

from deploy.errors import PlanError
from deploy.platform.plan import Component, Plan, build_plan, components, without


def names_by_level(plan: Plan) -> list[list[str]]:
    return [[r.name for r in level] for level in plan.levels]


def comps(tmp_path):  # a path per chart: planning never reads them
    aliases = [
        ("platform-cluster", "cluster"),
        ("platform-policy", "policy"),
        ("coordinator", "coordinator"),
        ("distributed-processing", "distributedProcessing"),
        ("cache", "cache"),
        ("workflows", "workflows"),
    ]
    return [Component(alias=a, chart=c, chart_dir=tmp_path / c) for c, a in aliases]


def test_levels_follow_the_contract(tmp_path):
    plan = build_plan("dev", {}, comps(tmp_path))
    assert names_by_level(plan) == [
        ["platform-cluster"],
        ["dev-platform-policy"],
        ["dev-coordinator", "dev-distributed-processing", "dev-cache"],
        ["dev-workflows"],
    ]
    assert plan.releases["workflows"].needs == ("policy", "coordinator", "distributedProcessing", "cache")


def test_disabled_components_are_left_out_and_said_so(tmp_path):
    plan = build_plan("prod", {"cache": {"enabled": False}, "workflows": {"enabled": False}}, comps(tmp_path))
    assert "cache" not in plan.releases and "workflows" not in plan.releases
    assert "disabled" in plan.excluded["cache"]
    assert names_by_level(plan)[-1] == ["prod-coordinator", "prod-distributed-processing"]


def test_only_without_deps_is_just_that(tmp_path):
    plan = build_plan("dev", {}, comps(tmp_path), only=["coordinator"])
    assert names_by_level(plan) == [["dev-coordinator"]]
    assert "--with-deps" in plan.excluded["policy"]


def test_only_with_deps_adds_what_it_needs(tmp_path):
    plan = build_plan("dev", {}, comps(tmp_path), only=["distributed-processing"], with_deps=True)
    assert names_by_level(plan) == [["platform-cluster"], ["dev-platform-policy"], ["dev-distributed-processing"]]


def test_only_accepts_alias_chart_and_release_names(tmp_path):
    plan = build_plan("dev", {}, comps(tmp_path), only=["distributedProcessing", "dev-cache", "Coordinator"])
    assert {r.alias for r in plan.releases.values()} == {"distributedProcessing", "cache", "coordinator"}


def test_unknown_component_is_a_clear_error(tmp_path):
    with pytest.raises(PlanError, match=r"unknown component in --only: nope\. Known components: cluster, policy"):
        build_plan("dev", {}, comps(tmp_path), only=["coordinator", "nope"])
    assert PlanError.exit_code == 64  # a usage error: `diff`'s 2 means changes pending


def test_disabled_component_in_only_is_an_error(tmp_path):
    with pytest.raises(PlanError, match="cache is disabled in environment 'dev'"):
        build_plan("dev", {"cache": {"enabled": False}}, comps(tmp_path), only=["cache"])


def test_without_workflows(tmp_path):
    plan = without(build_plan("dev", {}, comps(tmp_path)), "workflows", "skipped: no Argo CRDs")
    assert "workflows" not in plan.releases and plan.excluded["workflows"] == "skipped: no Argo CRDs"
    assert len(plan.levels) == 3


def test_components_come_from_the_umbrella(suite):
    found = components(suite.charts)
    assert [c.alias for c in found] == ["cluster", "policy", "coordinator", "cache", "workflows"]
    assert found[0].chart == "platform-cluster" and found[0].chart_dir == suite.charts / "platform-cluster"
