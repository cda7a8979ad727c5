"""Apply a prepared plan: levels in order, the changed releases of one level in parallel (bounded),
unchanged ones skipped; on the first failed level stop and report applied / failed / not started."""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.console import log
from deploy.errors import DeployError, HelmError, PlanError, TemplateError
from deploy.kube.events import failure_events
from deploy.kube.helm import PENDING, Helm
from deploy.kube.retry import retrying
from deploy.platform.plan import Plan, Release, components, release_name
from deploy.platform.prepare import Prepared
from deploy.platform.references import adopt_namespaces, check_secrets
from deploy.platform.state import Deployed, Labelled, description, digest_labels, is_current

# What happened to a release in a run (the summary's "action" column).
UNCHANGED, INSTALLED, UPGRADED, RENDERED = "unchanged", "installed", "upgraded", "rendered"
FAILED, NOT_STARTED, SKIPPED = "failed", "not started", "skipped"

OnState = Callable[[Release, str], None]


@dataclass
class Outcome:
    release: Release
    action: str
    revision: int | None = None
    seconds: float = 0.0
    detail: str = ""
    events: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        r = self.release
        return {
            "release": r.name,
            "component": r.alias,
            "chart": r.chart,
            "level": r.level,
            "action": self.action,
            "revision": self.revision,
            "seconds": round(self.seconds, 2),
            "detail": self.detail,
            "events": self.events,
        }


@dataclass
class ApplyOptions:
    parallel: int = 8  # a level holds at most the components; helm mostly waits on the API
    timeout: str = "5m"
    force: bool = False  # apply even when the digest matches
    api_versions: tuple[str, ...] = ()
    kube_version: str | None = None


def changed(prep: Prepared, deployed: dict[str, Deployed], force: bool = False) -> dict[str, bool]:
    """alias -> whether its release must be installed or upgraded."""
    return {r.alias: force or not is_current(deployed.get(r.name), prep.digests[r.alias]) for r in prep.plan.ordered()}


def missing_needs(plan: Plan, deployed: Mapping[str, Deployed | Labelled], charts_dir: Path) -> list[tuple[str, str]]:
    """(release, release it needs) for each need outside the selection that is not deployed."""
    names = {c.alias: release_name(plan.env, c) for c in components(charts_dir)}
    missing = set()
    for rel in plan.ordered():
        for need in rel.needs:
            current = deployed.get(names[need])
            if need not in plan.releases and (current is None or current.status != "deployed"):
                missing.add((rel.name, names[need]))
    return sorted(missing)


def check_needs_deployed(plan: Plan, deployed: Mapping[str, Deployed], charts_dir: Path) -> None:
    """Without --with-deps, what the selection needs must already be deployed."""
    missing = missing_needs(plan, deployed, charts_dir)
    if missing:
        pairs = "; ".join(f"{a} needs {b}" for a, b in missing)
        raise PlanError(
            f"releases that the selection needs are not deployed: {pairs}. Add --with-deps to apply them "
            "in the same run, or deploy them first."
        )


def helm_message(stderr: str) -> str:
    """Helm's final `Error: ...` paragraph (its log lines before that repeat it)."""
    lines = stderr.strip().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Error:"):
            return "\n".join(lines[i:]).removeprefix("Error: ")
    return stderr.strip()


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio  # imported here: the no-op path never runs an event loop

    return await asyncio.to_thread(fn, *args)


async def _bounded(limit: int, jobs: list[Any]) -> list[Any]:
    import asyncio  # imported here: the no-op path never runs an event loop

    sem = asyncio.Semaphore(max(1, limit))

    async def one(job: Any) -> Any:
        async with sem:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)


async def render_all(
    prep: Prepared, helm: Helm, releases: list[Release], opts: ApplyOptions, on_state: OnState
) -> dict[str, str]:
    """`helm template` each release (Helm checks the schema too); manifests go to the run folder.
    Raise TemplateError naming every release that does not render."""

    async def one(rel: Release) -> str:
        on_state(rel, "rendering")
        text = await helm.template(
            rel.name, rel.chart_dir, prep.values[rel.alias], prep.namespace, opts.api_versions, opts.kube_version
        )
        prep.run.write_manifest(rel.name, text)
        return text

    results = await _bounded(opts.parallel, [one(r) for r in releases])
    failures = [(r, e) for r, e in zip(releases, results, strict=True) if isinstance(e, BaseException)]
    for _, err in failures:
        if not isinstance(err, HelmError):
            raise err
    if failures:
        text = " ".join(
            f"{r.name} (values: {prep.run.path / 'values' / (r.name + '.yaml')}): {helm_message(e.stderr)}"
            for r, e in failures
        )
        raise TemplateError(f"{len(failures)} release(s) do not render, nothing was applied. {text}")
    return {r.name: t for r, t in zip(releases, results, strict=True)}


async def _status(helm: Helm, rel: Release, namespace: str) -> str | None:
    current = await helm.status(rel.name, namespace)
    return None if current is None else current.get("info", {}).get("status")


async def _next_revision(helm: Helm, rel: Release, namespace: str) -> int:
    """The revision `helm upgrade` writes next: one after the newest (the digest labels name it; a
    wrong guess costs only the fast no-op path of the next run, never a wrong answer)."""
    current = await helm.status(rel.name, namespace)
    return 1 if current is None else int(current.get("version", 0)) + 1


async def apply_plan(
    prep: Prepared,
    helm: Helm,
    deployed: dict[str, Deployed],
    opts: ApplyOptions,
    on_state: OnState = lambda r, s: None,
    api_client: Any = None,
) -> list[Outcome]:
    """Apply level by level; never raises for a release failure (see the outcomes)."""
    todo = changed(prep, deployed, opts.force)
    outcomes: dict[str, Outcome] = {}
    for rel in prep.plan.ordered():
        if not todo[rel.alias]:
            outcomes[rel.alias] = Outcome(rel, UNCHANGED, deployed[rel.name].revision)
            on_state(rel, UNCHANGED)
    work = [r for r in prep.plan.ordered() if todo[r.alias]]
    manifests = await render_all(prep, helm, work, opts, on_state) if work else {}
    if manifests and api_client is not None:
        # Both read what was rendered; the Secret check refuses before the first change to the cluster.
        await _in_thread(check_secrets, api_client, manifests, prep.namespace)
        await _in_thread(adopt_namespaces, api_client, manifests, prep.namespace, log)
    started = time.time()

    async def one(rel: Release) -> Outcome:
        t0 = time.monotonic()
        first = deployed.get(rel.name)
        existed = first is not None and first.status not in ("uninstalled", "pending-install", "uninstalling")
        notes: list[str] = []

        async def attempt(number: int) -> dict[str, Any]:
            # A retry starts from whatever the interrupted attempt left (often a pending-* release).
            status = (first.status if first else None) if number == 1 else await _status(helm, rel, prep.namespace)
            if status in PENDING:
                on_state(rel, f"recovering from {status}")
                notes.append(await helm.recover(rel.name, prep.namespace))
            if number == 1 and status not in PENDING:
                revision = first.revision + 1 if first else 1
            else:
                revision = await _next_revision(helm, rel, prep.namespace)
            on_state(rel, "applying")
            return await helm.upgrade(
                rel.name,
                rel.chart_dir,
                prep.values[rel.alias],
                prep.namespace,
                description(prep.digests[rel.alias]),
                opts.timeout,
                digest_labels(prep.digests[rel.alias], revision),
            )

        def on_retry(number: int, err: BaseException, delay: float) -> None:
            notes.append(f"attempt {number} lost the API server")
            on_state(rel, f"API server unavailable, retry {number} in {delay:.0f}s")

        result = await retrying(attempt, on_retry)
        return Outcome(
            rel, UPGRADED if existed else INSTALLED, result["revision"], time.monotonic() - t0, "; ".join(notes)
        )

    failed_level = None
    for level in prep.plan.levels:
        batch = [r for r in level if todo[r.alias]]
        if failed_level is not None:
            for r in batch:
                outcomes[r.alias] = Outcome(r, NOT_STARTED)
                on_state(r, NOT_STARTED)
            continue
        t_level = time.monotonic()
        results = await _bounded(opts.parallel, [one(r) for r in batch])
        for rel, res in zip(batch, results, strict=True):
            if isinstance(res, Outcome):
                outcomes[rel.alias] = res
                on_state(rel, res.action)
                continue
            if not isinstance(res, DeployError):
                raise res
            failed_level = rel.level
            detail = helm_message(res.stderr) if isinstance(res, HelmError) else str(res)
            events = await _in_thread(failure_events, api_client, manifests.get(rel.name, ""), started)
            outcomes[rel.alias] = Outcome(rel, FAILED, None, time.monotonic() - t_level, detail.strip(), events)
            on_state(rel, FAILED)
    return [outcomes[r.alias] for r in prep.plan.ordered()]
