"""Copy the shared schema definitions into every chart's values.schema.json.

Helm resolves a values schema's `$ref`s inside that one file only, so each chart
carries the definitions it uses. This keeps those copies equal to definitions.json:
a chart gets exactly the shared definitions its own schema reaches, and keeps any
definitions of its own. `--check` changes nothing and exits 1 when a copy is stale.
"""

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHARTS = HERE.parent.parent
PREFIX = "#/definitions/"


def refs(node: Any) -> set[str]:
    """Names of the definitions a schema node refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            found.add(ref[len(PREFIX) :])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def synced(schema: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    own = {k: v for k, v in schema.get("definitions", {}).items() if k not in shared}
    body = {k: v for k, v in schema.items() if k != "definitions"}
    wanted, todo = set(), refs(body) | refs(own)
    while todo:
        name = todo.pop()
        if name in shared and name not in wanted:
            wanted.add(name)
            todo |= refs(shared[name])
    definitions = own | {name: shared[name] for name in sorted(wanted)}
    return body | {"definitions": definitions} if definitions else body


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    shared = json.loads((HERE / "definitions.json").read_text())["definitions"]
    stale = []
    for path in sorted(CHARTS.glob("*/values.schema.json")):
        text = path.read_text()
        want = render(synced(json.loads(text), shared))
        if want != text:
            stale.append(path.relative_to(CHARTS.parent))
            if not check:
                path.write_text(want)
    for path in stale:
        print(f"{'stale' if check else 'updated'}: {path}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
