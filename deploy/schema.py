"""Check each release's values against its chart's values.schema.json before Helm sees them, so a
violation names the key, the rule and the file (and line) that set the value."""

import json
from pathlib import Path
from typing import Any

from deploy.errors import ValuesError
from deploy.render import KeyPath, Merged
from deploy.values import deep_merge, read_yaml


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
    return f"{err.message} (rule: {err.validator}: {json.dumps(err.validator_value)[:120]})"


def validate_release(release_name: str, alias: str, chart_dir: Path, values: dict[str, Any], merged: Merged) -> None:
    """Raise ValuesError naming every violation of the chart's schema (chart defaults included)."""
    schema = chart_schema(chart_dir)
    if schema is None:
        return
    import jsonschema  # imported when a chart has a schema, not with the CLI

    defaults_file = chart_dir / "values.yaml"
    effective = deep_merge(read_yaml(defaults_file), values) if defaults_file.exists() else values
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(effective), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = []
    for err in errors[:10]:
        path = tuple(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            extra = [k for k in err.instance if k not in (err.schema.get("properties") or {})]
            if extra:
                path = (*path, str(extra[0]))
        # Release values are the umbrella section `alias` (global stays global).
        umbrella_path: KeyPath = path if path[:1] == ("global",) else (alias, *path)
        key = ".".join(umbrella_path) or alias
        lines.append(f"{key} (set at {merged.origin(umbrella_path)}): {_describe(err)}")
    more = f" ...and {len(errors) - 10} more." if len(errors) > 10 else ""
    raise ValuesError(
        f"the values of release {release_name} break the schema of chart {chart_dir.name} "
        f"({chart_dir / 'values.schema.json'}): " + "; ".join(lines) + "." + more
    )
