"""Per-release diff of what a deploy would change, against the deployed release's manifest and
values. Needs no helm plugin. Secret data (and values whose key looks like a credential) are
replaced by a short hash, so a change shows without the value."""

import asyncio
import difflib
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from deploy import tools
from deploy.console import console, escape
from deploy.kube.helm import Helm, run
from deploy.platform.apply import ApplyOptions
from deploy.platform.plan import Release
from deploy.platform.preflight import allowed
from deploy.platform.prepare import Prepared, build_dependencies, prepare
from deploy.platform.request import Request
from deploy.platform.session import open_session
from deploy.platform.state import Deployed, is_current

SECRET_KEY = re.compile(r"(password|passwd|secret|token|credential|apikey|api_key|private)", re.I)


@dataclass
class ReleaseDiff:
    release: str
    changed: bool
    reason: str
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"release": self.release, "changed": self.changed, "reason": self.reason, "diff": self.text}


def _hidden(value: Any) -> str:
    return f"<hidden sha256:{hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]}>"


def redact_values(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _hidden(v) if SECRET_KEY.search(str(k)) else redact_values(v) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_values(v) for v in data]
    return data


def redact_object(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") != "Secret":
        return doc
    out = dict(doc)
    for field in ("data", "stringData"):
        if isinstance(out.get(field), dict):
            out[field] = {k: _hidden(v) for k, v in out[field].items()}
    return out


def objects(manifest: str) -> dict[str, dict[str, Any]]:
    out = {}
    for doc in yaml.safe_load_all(manifest or ""):
        if isinstance(doc, dict) and doc.get("kind"):
            meta = doc.get("metadata") or {}
            key = f"{doc['kind']}/{meta.get('namespace', '-')}/{meta.get('name', '?')}"
            out[key] = redact_object(doc)
    return out


def _dump(data: Any) -> list[str]:
    return yaml.safe_dump(data, sort_keys=True).splitlines(keepends=True) if data is not None else []


def manifest_diff(old: str, new: str) -> str:
    before, after = objects(old), objects(new)
    chunks = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        label = "added" if key not in before else "removed" if key not in after else "changed"
        lines = difflib.unified_diff(_dump(before.get(key)), _dump(after.get(key)), f"{key} (deployed)", f"{key} (new)")
        chunks.append(f"# {key} {label}\n" + "".join(lines))
    return "\n".join(chunks)


def values_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    a, b = redact_values(old), redact_values(new)
    if a == b:
        return ""
    return "".join(difflib.unified_diff(_dump(a), _dump(b), "values (deployed)", "values (new)"))


async def _one(helm: Helm, prep: Prepared, rel: Release, current: Deployed | None, opts: ApplyOptions) -> ReleaseDiff:
    if is_current(current, prep.digests[rel.alias]):
        return ReleaseDiff(rel.name, False, "unchanged")
    new = await helm.template(
        rel.name, rel.chart_dir, prep.values[rel.alias], prep.namespace, opts.api_versions, opts.kube_version
    )
    if current is None:
        listing = "".join(f"+ {key}\n" for key in objects(new))
        return ReleaseDiff(rel.name, True, "not installed: would be installed", listing)
    old, old_values = await asyncio.gather(
        helm.manifest(rel.name, prep.namespace), helm.values(rel.name, prep.namespace)
    )
    text = manifest_diff(old, new)
    vtext = values_diff(old_values, prep.values[rel.alias])
    if current.status != "deployed":
        return ReleaseDiff(rel.name, True, f"current revision is {current.status}: would be re-applied", text + vtext)
    if text or vtext:
        return ReleaseDiff(rel.name, True, "would be upgraded", "\n".join(t for t in (text, vtext) if t))
    return ReleaseDiff(rel.name, False, "same manifests and values (chart files changed only)")


def diff_environment(req: Request) -> tuple[list[ReleaseDiff], list[str]]:
    """Each planned release against what is deployed, rendered as the deploy would render it (the
    same session and preflight); and the preflight's warnings."""
    tools.tool("helm")
    prep = prepare(req.inputs, req.selection, req.runs_root, req.values_dir, req.charts_dir)
    try:
        session = open_session(req, prep.merged.values, prep.plan)
        pre = session.preflight
        assert pre is not None
        prep.plan = allowed(prep.plan, pre)
        helm = session.helm(req.apply.timeout)
        build_dependencies(prep)
        deployed = session.deployed()
        opts = ApplyOptions(api_versions=pre.api_versions, kube_version=pre.kube_version)

        async def all_diffs() -> list[ReleaseDiff]:
            return list(
                await asyncio.gather(*(_one(helm, prep, r, deployed.get(r.name), opts) for r in prep.plan.ordered()))
            )

        return run(all_diffs()), pre.warnings
    finally:
        prep.run.remove()


def print_diff(diffs: list[ReleaseDiff], output: str = "text") -> None:
    if output == "json":
        sys.stdout.write(json.dumps([d.as_dict() for d in diffs], indent=2) + "\n")
        return
    for d in diffs:
        mark = "[yellow]~[/]" if d.changed else "[dim]=[/]"
        console.print(f"{mark} {escape(d.release)}: {escape(d.reason)}", highlight=False)
        if d.text:
            sys.stdout.write(d.text if d.text.endswith("\n") else d.text + "\n")
            sys.stdout.flush()
    n = sum(d.changed for d in diffs)
    console.print(f"{n} of {len(diffs)} releases would change." if n else "nothing would change.", highlight=False)
