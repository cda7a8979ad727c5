"""The values of a run: sources read (and templated) in a fixed order, merged, with the origin
(file and line, or flag) of every key remembered so that errors can point at it.

Order, later wins (maps merge key by key, lists are replaced, as in Helm):
  1. charts/platform/values.yaml        the umbrella chart's defaults
  2. values/<env>.yaml or .yaml.j2      the environment
  3. each -f/--values file, in order    (a file ending .j2 is templated first)
  4. --registry / --tag                 global.image.registry / global.image.tag
  5. each --set key.path=value, in order (value parsed as YAML: true, 3, [a, b], null)

Templates (.j2) are rendered with jinja2 and StrictUndefined; the variables are env, context,
registry, tag, namespace (the release namespace) and local. A variable whose flag was not
given is undefined: use `{{ tag | default('latest') }}` for an optional one.
"""

import json
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import ValuesError
from deploy.paths import CHARTS, VALUES
from deploy.platform.values import FAST_DUMPER, FAST_LOADER, deep_merge, not_utf8, read_yaml

KeyPath = tuple[str, ...]


@dataclass
class Inputs:
    """Everything a user gives that shapes the values of a run."""

    env: str
    files: list[Path] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    registry: str | None = None
    tag: str | None = None
    context: str | None = None
    namespace: str = "default"
    local: bool = False

    def variables(self) -> dict[str, Any]:
        given = {"env": self.env, "namespace": self.namespace, "local": self.local}
        for key in ("context", "registry", "tag"):
            if getattr(self, key) is not None:
                given[key] = getattr(self, key)
        return given


@dataclass
class Merged:
    values: dict[str, Any]
    origins: dict[KeyPath, str]  # key path -> "file:line" or "--set a.b=c"
    rendered: list[Path] = field(default_factory=list)

    def origin(self, path: KeyPath) -> str:
        """Where the value at `path` (or the closest map above it, or else a key below it) was set."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        below = [o for key, o in self.origins.items() if key[: len(path)] == path]
        return below[-1] if below else "the chart's defaults"


def environment_names(values_dir: Path = VALUES) -> list[str]:
    names = {p.name.removesuffix(".j2").removesuffix(".yaml") for p in values_dir.glob("*.yaml*")}
    return sorted(n for n in names if n and not n.startswith("."))


def environment_file(env: str, values_dir: Path = VALUES) -> Path:
    for candidate in (values_dir / f"{env}.yaml", values_dir / f"{env}.yaml.j2"):
        if candidate.is_file():
            return candidate
    known = ", ".join(environment_names(values_dir)) or "none"
    raise ValuesError(
        f"unknown environment {env!r}: there is no {values_dir / env}.yaml (or .yaml.j2). Known environments: {known}."
    )


def _template_line(err: BaseException, path: Path) -> int | None:
    lineno = getattr(err, "lineno", None)
    if lineno:
        return lineno
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if Path(frame.filename).resolve() == path.resolve():
            return frame.lineno
    return None


def render_template(path: Path, variables: dict[str, Any], out_dir: Path) -> Path:
    """Render a .j2 values file into out_dir; errors name the template's file and line."""
    import jinja2  # only runs with a template pay for the import

    if not path.is_file():
        raise ValuesError(f"values file {path} does not exist.")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    try:
        rendered = env.get_template(path.name).render(**variables)
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    except jinja2.TemplateError as err:
        line = _template_line(err, path)
        where = f"{path}:{line}" if line else str(path)
        hint = ""
        if isinstance(err, jinja2.UndefinedError):
            hint = (
                f" The variables defined are: {', '.join(sorted(variables))}; flags that were not given are undefined."
            )
        raise ValuesError(f"{where}: template error: {str(err.message or err).rstrip('.')}.{hint}") from None
    out = out_dir / "rendered" / path.name.removesuffix(".j2")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# rendered from {path}\n{rendered}")
    return out


def key_lines(path: Path) -> dict[KeyPath, int]:
    """Line (1-based) of every mapping key in a YAML file, by key path."""
    lines: dict[KeyPath, int] = {}

    def walk(node: yaml.Node, prefix: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*prefix, str(key_node.value))
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)

    try:
        root = yaml.compose(path.read_text(), Loader=FAST_LOADER)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _leaf_paths(data: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    if isinstance(data, dict) and data:
        return [p for k, v in data.items() for p in [(*prefix, str(k)), *_leaf_paths(v, (*prefix, str(k)))]]
    return []


_SET_SPLIT = re.compile(r"(?<!\\)\.")


def parse_set(expr: str) -> tuple[KeyPath, Any]:
    """`a.b.c=value` (a dot in a key is written `\\.`); the value is parsed as YAML."""
    key, sep, raw = expr.partition("=")
    if not sep or not key.strip():
        raise ValuesError(f"--set {expr!r}: expected key.path=value, e.g. --set coordinator.replicas=3.")
    path = tuple(part.replace("\\.", ".") for part in _SET_SPLIT.split(key.strip()))
    if any(not p for p in path):
        raise ValuesError(f"--set {expr!r}: the key {key!r} has an empty part.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ValuesError(f"--set {expr!r}: the value is not valid YAML ({err}).") from None
    return path, value


def nested(path: KeyPath, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    return out


def merge_inputs(inputs: Inputs, run_dir: Path, values_dir: Path = VALUES, charts_dir: Path = CHARTS) -> Merged:
    """All sources merged in the documented order, with the origin of every key."""
    values: dict[str, Any] = {}
    origins: dict[KeyPath, str] = {}
    rendered: list[Path] = []

    def add_file(path: Path) -> None:
        nonlocal values
        if path.name.endswith(".j2"):
            path = render_template(path, inputs.variables(), run_dir)
            rendered.append(path)
        data = read_yaml(path)
        lines = key_lines(path)
        for key in _leaf_paths(data):
            origins[key] = f"{path}:{lines[key]}" if key in lines else str(path)
        values = deep_merge(values, data)

    def add_flag(path: KeyPath, value: Any, label: str) -> None:
        nonlocal values
        for key in [path, *(tuple(path + k) for k in _leaf_paths(value))]:
            origins[key] = label
        values = deep_merge(values, nested(path, value))

    umbrella_values = charts_dir / "platform" / "values.yaml"
    if umbrella_values.exists():
        add_file(umbrella_values)
    add_file(environment_file(inputs.env, values_dir))
    for extra in inputs.files:
        if not extra.exists():
            raise ValuesError(f"values file {extra} (given with -f) does not exist.")
        add_file(extra)
    if inputs.registry is not None:
        add_flag(("global", "image", "registry"), inputs.registry, f"--registry={inputs.registry}")
    if inputs.tag is not None:
        add_flag(("global", "image", "tag"), inputs.tag, f"--tag={inputs.tag}")
    for expr in inputs.sets:
        path, value = parse_set(expr)
        add_flag(path, value, f"--set {expr}")
    return Merged(values=values, origins=origins, rendered=rendered)


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


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def write_values(run_dir: Path, name: str, values: dict[str, Any]) -> Path:
    path = run_dir / "values" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(values, Dumper=FAST_DUMPER, sort_keys=False))
    return path
