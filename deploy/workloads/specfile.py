"""A workload's spec file (a sweep, a run spec, a training spec) checked against its JSON schema before
anything is applied: one ValuesError that names the file, each bad key as a dotted path and its rule."""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from deploy.errors import ValuesError
from deploy.platform.values import read_yaml

SHOWN = 5  # violations named; the rest are counted


@cache
def _schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def key_path(path: list[Any]) -> str:
    """`matrix.batchSize[2]`: how a user finds the key in the file."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass(frozen=True)
class SpecSchema:
    what: str  # the file, as messages name it: "sweep", "run spec", "training spec"
    name: str  # the schema, as messages name it: "sweep", "run", "training"
    path: Path

    def schema(self) -> dict[str, Any]:
        return _schema(self.path)

    def validate(self, data: Any, source: str) -> dict[str, Any]:
        """`data` when it holds to the schema, else ValuesError naming the file, keys and rules."""
        import jsonschema

        if not isinstance(data, dict):
            raise ValuesError(f"{self.what} {source}: the top level must be a mapping, not {type(data).__name__}.")
        schema = self.schema()
        validator = jsonschema.validators.validator_for(schema)(schema)
        errors = sorted(
            validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
        )
        if not errors:
            return data
        lines = [f"{key_path(path) or '(top level)'}: {rule}" for path, rule in map(self._rule, errors[:SHOWN])]
        more = f" ...and {len(errors) - SHOWN} more." if len(errors) > SHOWN else ""
        raise ValuesError(
            f"{self.what} {source} breaks the {self.name} schema ({self.path.name}): " + "; ".join(lines) + "." + more
        )

    def load(self, path: Path) -> dict[str, Any]:
        return self.validate(read_yaml(path), str(path))

    def _rule(self, err: Any) -> tuple[list[Any], str]:
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            path += [k for k in err.instance if k not in (err.schema.get("properties") or {})][:1]
            return path, f"unknown key (the {self.name} schema allows no other keys here: a typo?)"
        if err.validator == "propertyNames" and isinstance(err.validator_value, dict):
            return path, f"{err.message} (allowed: {', '.join(err.validator_value.get('enum', []))})"
        if err.validator in ("required", "dependentRequired"):
            return path, err.message
        return path, f"{err.message} (rule: {err.validator}: {json.dumps(err.validator_value)[:100]})"
