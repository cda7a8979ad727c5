"""Check values against the charts' values.schema.json before Helm sees them, so a violation names
the key, the rule and the file (and line) that set the value.

Two checks, as Helm makes them: the whole merged values against the umbrella chart's schema (unknown
top-level keys, `<component>.enabled` not a boolean), then each release's values against its own
chart's schema. The umbrella check runs on every run, the no-op path included (an unknown key changes
no release's digest); it is remembered by a hash of the values and the schema, so an unchanged run
does not pay for it again."""

import hashlib
import json
from pathlib import Path
from typing import Any

from deploy.errors import ValuesError
from deploy.paths import cache_dir
from deploy.platform.values import KeyPath, Merged, canonical, deep_merge, read_yaml


def chart_schema(chart_dir: Path) -> dict[str, Any] | None:
    path = chart_dir / "values.schema.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValuesError(f"{path}:{err.lineno}: the chart's schema is not valid JSON ({err.msg}).") from None


def _describe(err: Any) -> str:  # a jsonschema.ValidationError
    if err.validator == "additionalProperties":
        return f"{err.message} (the schema allows no other keys here: a typo?)"
    if err.validator == "required":
        return err.message
    if isinstance(err.schema.get("description"), str) and err.validator == "pattern":
        return f"{json.dumps(err.instance)} is not {err.schema['description']}"  # the pattern itself says less
    return f"{err.message} (rule: {err.validator}: {json.dumps(err.validator_value)[:120]})"


def _violations(schema: dict[str, Any], data: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    """Each violation's key path (the offending key itself for an unknown one) and description."""
    import jsonschema  # imported when a schema is checked, not with the CLI

    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    out = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = tuple(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            extra = [k for k in err.instance if k not in (err.schema.get("properties") or {})]
            if extra:
                path = (*path, str(extra[0]))
        out.append((path, _describe(err)))
    return out


def _refuse(what: str, schema_file: Path, found: list[tuple[KeyPath, str]], merged: Merged) -> None:
    if not found:
        return
    lines = [f"{'.'.join(p)} (set at {merged.origin(p)}): {text}" for p, text in found[:10]]
    more = f" ...and {len(found) - 10} more." if len(found) > 10 else ""
    raise ValuesError(f"{what} break the schema {schema_file}: " + "; ".join(lines) + "." + more)


def validate_umbrella(merged: Merged, charts_dir: Path) -> None:
    """The whole merged values against the umbrella chart's schema (ValuesError naming every violation)."""
    schema_file = charts_dir / "platform" / "values.schema.json"
    if not schema_file.exists():
        return
    text = schema_file.read_text()
    key = hashlib.sha256((text + "\0" + canonical(merged.values)).encode()).hexdigest()
    memo = cache_dir() / "validated" / key
    if memo.exists():
        return
    schema = chart_schema(charts_dir / "platform") or {}
    _refuse("the merged values", schema_file, _violations(schema, merged.values), merged)
    _refuse("the merged values", schema_file, requests_over_limits(merged.values), merged)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.touch()


def validate_release(release_name: str, alias: str, chart_dir: Path, values: dict[str, Any], merged: Merged) -> None:
    """Raise ValuesError naming every violation of the chart's schema (chart defaults included)."""
    schema = chart_schema(chart_dir)
    if schema is None:
        return
    defaults_file = chart_dir / "values.yaml"
    effective = deep_merge(read_yaml(defaults_file), values) if defaults_file.exists() else values
    # Release values are the umbrella section `alias` (global stays global).
    found = [(p if p[:1] == ("global",) else (alias, *p), text) for p, text in _violations(schema, effective)]
    found += [((alias, *p), text) for p, text in requests_over_limits(effective)]
    what = f"the values of release {release_name} (chart {chart_dir.name})"
    _refuse(what, chart_dir / "values.schema.json", found, merged)


def quantity(text: object) -> Any:
    """A Kubernetes quantity ("500m", "2Gi", 4) as a Decimal; None when it is not one (the schema's
    pattern reports that)."""
    from kubernetes.utils.quantity import parse_quantity  # only when values are really checked

    try:
        return parse_quantity(text)
    except (ValueError, TypeError):
        return None


def requests_over_limits(values: Any, prefix: KeyPath = ()) -> list[tuple[KeyPath, str]]:
    """Every `resources` block (at any depth) whose request of a resource is above its limit: the API
    server would refuse the pod only after Helm has started applying."""
    found: list[tuple[KeyPath, str]] = []
    if not isinstance(values, dict):
        return found
    requests, limits = values.get("requests"), values.get("limits")
    if isinstance(requests, dict) and isinstance(limits, dict):
        for name in sorted(set(requests) & set(limits)):
            req, lim = quantity(requests[name]), quantity(limits[name])
            if req is not None and lim is not None and req > lim:
                found.append(
                    (
                        (*prefix, "requests", str(name)),
                        f"request {requests[name]} is above the limit {limits[name]} "
                        f"(rule: requests must not exceed limits)",
                    )
                )
    for key, value in values.items():
        if isinstance(value, dict):
            found += requests_over_limits(value, (*prefix, str(key)))
    return found
