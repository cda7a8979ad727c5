"""The release graph: which releases an environment has, what each needs, and in which levels
they are applied (cluster-scoped first, then the environment's policy, then the components in
parallel, then the workflows). Selection with `--only` never adds dependencies unless asked."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.errors import PlanError
from deploy.paths import CHARTS
from deploy.platform.values import read_yaml

UMBRELLA_CHART = "platform"
CLUSTER, POLICY, WORKFLOWS = "cluster", "policy", "workflows"
CLUSTER_RELEASE = "platform-cluster"  # once per cluster, whatever the environment


@dataclass(frozen=True)
class Component:
    """One dependency of the umbrella chart: its alias (the values section) and its chart."""

    alias: str
    chart: str
    chart_dir: Path


@dataclass(frozen=True)
class Release:
    alias: str
    chart: str
    chart_dir: Path
    name: str
    needs: tuple[str, ...]  # aliases
    level: int = 0

    @property
    def cluster_scoped(self) -> bool:
        return self.alias == CLUSTER


@dataclass
class Plan:
    env: str
    releases: dict[str, Release]  # alias -> release, only the selected ones
    levels: list[list[Release]]
    excluded: dict[str, str] = field(default_factory=dict)  # alias -> why it is not in the plan

    def ordered(self) -> list[Release]:
        return [r for level in self.levels for r in level]

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "levels": [
                [{"release": r.name, "component": r.alias, "chart": r.chart, "needs": list(r.needs)} for r in lvl]
                for lvl in self.levels
            ],
            "excluded": self.excluded,
        }


def components(charts_dir: Path = CHARTS) -> list[Component]:
    """The umbrella chart's dependencies, in Chart.yaml order: the source of truth for what exists."""
    chart_yaml = charts_dir / UMBRELLA_CHART / "Chart.yaml"
    deps = read_yaml(chart_yaml).get("dependencies") or []
    found = []
    for dep in deps:
        name = dep["name"]
        repo = str(dep.get("repository") or "")
        if repo.startswith("file://"):
            chart_dir = (charts_dir / UMBRELLA_CHART / repo.removeprefix("file://")).resolve()
        else:
            chart_dir = charts_dir / name
        found.append(Component(alias=dep.get("alias") or name, chart=name, chart_dir=chart_dir))
    return found


def release_name(env: str, component: Component) -> str:
    return CLUSTER_RELEASE if component.alias == CLUSTER else f"{env}-{component.chart}"


def is_enabled(values: dict[str, Any], alias: str) -> bool:
    """Helm's `condition: <alias>.enabled`: a missing key means enabled. The cluster-scoped release is
    the exception: `cluster.enabled` only says whether the *umbrella* carries those objects (off, so
    that two environments' umbrellas can share a cluster); the deploy tool always applies them as the
    one `platform-cluster` release that every environment on the cluster converges on."""
    if alias == CLUSTER:
        return True
    section = values.get(alias)
    if not isinstance(section, dict) or "enabled" not in section:
        return True
    return bool(section["enabled"])


def _needs(alias: str, enabled: list[str]) -> tuple[str, ...]:
    if alias == CLUSTER:
        wanted: list[str] = []
    elif alias == POLICY:
        wanted = [CLUSTER]
    elif alias == WORKFLOWS:
        wanted = [POLICY] + [a for a in enabled if a not in (CLUSTER, POLICY, WORKFLOWS)]
    else:
        wanted = [POLICY]
    return tuple(a for a in wanted if a in enabled)


def _levels(releases: dict[str, Release]) -> list[list[Release]]:
    """Longest-path levels over the needs that are part of the selection."""
    level: dict[str, int] = {}

    def depth(alias: str, seen: tuple[str, ...] = ()) -> int:
        if alias in seen:
            raise PlanError(f"dependency cycle: {' -> '.join((*seen, alias))}.")
        if alias not in level:
            inside = [n for n in releases[alias].needs if n in releases]
            level[alias] = 1 + max((depth(n, (*seen, alias)) for n in inside), default=-1)
        return level[alias]

    for alias in releases:
        depth(alias)
    out: list[list[Release]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for alias, rel in releases.items():
        out[level[alias]].append(Release(**{**rel.__dict__, "level": level[alias]}))
    return out


def resolve_names(names: Iterable[str], comps: list[Component], env: str) -> list[str]:
    """Map what a user typed (alias, chart name or release name) to aliases."""
    lookup: dict[str, str] = {}
    for c in comps:
        for key in (c.alias, c.chart, release_name(env, c)):
            lookup[key.lower()] = c.alias
    aliases, unknown = [], []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name.lower() in lookup:
            aliases.append(lookup[name.lower()])
        else:
            unknown.append(name)
    if unknown:
        known = ", ".join(c.alias for c in comps)
        raise PlanError(
            f"unknown component{'s' if len(unknown) > 1 else ''} in --only: {', '.join(unknown)}. "
            f"Known components: {known} (their chart or release names work too)."
        )
    return list(dict.fromkeys(aliases))


def build_plan(
    env: str,
    values: dict[str, Any],
    comps: list[Component],
    only: Iterable[str] | None = None,
    with_deps: bool = False,
) -> Plan:
    """Releases of ENV in levels. With `only`, just those components, plus (with_deps) what they need."""
    enabled = [c.alias for c in comps if is_enabled(values, c.alias)]
    excluded = {c.alias: f"disabled ({c.alias}.enabled is false)" for c in comps if c.alias not in enabled}
    by_alias = {c.alias: c for c in comps}
    every = {
        a: Release(
            alias=a,
            chart=by_alias[a].chart,
            chart_dir=by_alias[a].chart_dir,
            name=release_name(env, by_alias[a]),
            needs=_needs(a, enabled),
        )
        for a in enabled
    }
    selected = list(every)
    only_list = [n for n in (only or []) if n.strip()]
    if only_list:
        wanted = resolve_names(only_list, comps, env)
        disabled = [a for a in wanted if a not in every]
        if disabled:
            raise PlanError(
                f"{', '.join(disabled)} {'is' if len(disabled) == 1 else 'are'} disabled in environment {env!r} "
                f"(values set {disabled[0]}.enabled: false), so --only cannot select "
                f"{'it' if len(disabled) == 1 else 'them'}."
            )
        selected = list(wanted)
        if with_deps:
            stack = list(wanted)
            while stack:
                for need in every[stack.pop()].needs:
                    if need not in selected:
                        selected.append(need)
                        stack.append(need)
        for a in every:
            if a not in selected:
                excluded[a] = "not selected by --only" + ("" if with_deps else " (add --with-deps for what it needs)")
    releases = {a: every[a] for a in every if a in selected}
    levels = _levels(releases)
    final = {r.alias: r for lvl in levels for r in lvl}
    return Plan(env=env, releases=final, levels=levels, excluded=excluded)


def without(plan: Plan, alias: str, reason: str) -> Plan:
    """The plan minus one release (and anything that needs it), e.g. workflows without Argo CRDs."""
    drop = {alias}
    changed = True
    while changed:
        changed = False
        for r in plan.releases.values():
            if r.alias not in drop and any(n in drop for n in r.needs):
                drop.add(r.alias)
                changed = True
    excluded = dict(plan.excluded)
    for a in drop:
        excluded[a] = reason if a == alias else f"needs {alias}, which is skipped"
    levels = [[r for r in lvl if r.alias not in drop] for lvl in plan.levels]
    levels = [lvl for lvl in levels if lvl]
    return Plan(
        env=plan.env,
        releases={a: r for a, r in plan.releases.items() if a not in drop},
        levels=levels,
        excluded=excluded,
    )
