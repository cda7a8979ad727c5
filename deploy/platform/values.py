"""The one values loader: an environment's values, from the sources in a fixed order, merged, with the
origin (file and line, or flag) of every key remembered so that errors can point at it.

Order, later wins (maps merge key by key, lists are replaced, as in Helm):
  1. charts/platform/values.yaml        the umbrella chart's defaults
  2. values/<env>.yaml or .yaml.j2      the environment
  3. each -f/--values file, in order    (a file ending .j2 is templated first)
  4. --registry / --tag                 global.image.registry / global.image.tag
  5. each --set key.path=value, in order (value parsed as YAML: true, 3, [a, b], null)

Templates (.j2) are rendered with jinja2 and StrictUndefined; the variables are env, context,
registry, tag, namespace (the release namespace) and local. A variable whose flag was not
given is undefined: use `{{ tag | default('latest') }}` for an optional one.

`merge_inputs` is what a deploy uses (rendered templates are kept in its run folder);
`environment_values` is the cheap read for everything else (cluster up, the workload commands):
the same merge and the umbrella's schema check, no run folder, no per-release work."""

import json
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import ValuesError
from deploy.paths import CHARTS, VALUES

KeyPath = tuple[str, ...]

# libyaml's parser when PyYAML was built with it (ten times faster: most of a no-op run's work is
# reading YAML); the pure-Python one for the messages of invalid files, which name file and line.
FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# And libyaml's emitter under the same representer: the same text as yaml.safe_dump, four times faster.
FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Helm keeps a release's values in a Secret of at most 1 MiB (with the chart and manifests): a larger
# values file can only fail at the API server, after Helm started.
MAX_VALUES_BYTES = 1 << 20


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


# --- reading one file -----------------------------------------------------------------------------


def parse_yaml(text: str) -> Any:
    """yaml.safe_load, faster: the same constructor (same data) over libyaml's parser."""
    try:
        return yaml.load(text, Loader=FAST_LOADER)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def not_utf8(path: Path, err: UnicodeDecodeError) -> ValuesError:
    return ValuesError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}).")


def _mapping(text: str, where: str) -> dict[str, Any]:
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        problem = getattr(err, "problem", None) or str(err)
        raise ValuesError(f"{at}: invalid YAML: {problem}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValuesError(f"{where}: the top level must be a mapping of keys to values, not {type(data).__name__}.")
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML mapping; errors name the file and line."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ValuesError(f"values file {path} is a directory: give a YAML file (-f FILE, once per file).")
        if size > MAX_VALUES_BYTES:
            raise ValuesError(
                f"values file {path} has {size:,} bytes, over the {MAX_VALUES_BYTES:,} that a Helm release can hold "
                "(Helm stores values in a Secret of at most 1 MiB)."
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValuesError(f"values file {path} does not exist.") from None
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    except OSError as err:
        raise ValuesError(f"values file {path} cannot be read: {err.strerror}.") from None
    return _mapping(text, str(path))


def key_lines(text: str) -> dict[KeyPath, int]:
    """Line (1-based) of every mapping key of a YAML text, by key path."""
    lines: dict[KeyPath, int] = {}

    def walk(node: yaml.Node, prefix: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*prefix, str(key_node.value))
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)

    try:
        root = yaml.compose(text, Loader=FAST_LOADER)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge rule: maps merge key by key, everything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def canonical(data: Any) -> str:
    """One text per value (sorted keys, no spaces): what digests and caches hash."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


# --- environments and templates -------------------------------------------------------------------


def environments(values_dir: Path = VALUES) -> list[str]:
    """Names of the environments that have a values file (`<env>.yaml` or `<env>.yaml.j2`)."""
    names = {p.name.removesuffix(".j2").removesuffix(".yaml") for p in values_dir.glob("*.yaml*")}
    return sorted(n for n in names if n and not n.startswith(".") and "." not in n)


def environment_file(env: str, values_dir: Path = VALUES) -> Path:
    for candidate in (values_dir / f"{env}.yaml", values_dir / f"{env}.yaml.j2"):
        if candidate.is_file():
            return candidate
    known = ", ".join(environments(values_dir)) or "none"
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


def render_template(path: Path, variables: dict[str, Any]) -> str:
    """A .j2 values file rendered; errors name the template's file and line."""
    import jinja2  # only runs with a template pay for the import

    if not path.is_file():
        raise ValuesError(f"values file {path} does not exist.")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    try:
        return env.get_template(path.name).render(**variables)
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


# --- flags ----------------------------------------------------------------------------------------

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


def _leaf_paths(data: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    if isinstance(data, dict) and data:
        return [p for k, v in data.items() for p in [(*prefix, str(k)), *_leaf_paths(v, (*prefix, str(k)))]]
    return []


# --- the merge ------------------------------------------------------------------------------------


def merge_inputs(
    inputs: Inputs, run_dir: Path | None = None, values_dir: Path = VALUES, charts_dir: Path = CHARTS
) -> Merged:
    """All sources merged in the documented order, with the origin of every key. A rendered template
    is written to `run_dir`/rendered/ (errors and origins then point at that file); without a run
    folder it stays in memory."""
    values: dict[str, Any] = {}
    origins: dict[KeyPath, str] = {}
    rendered: list[Path] = []

    def add_file(path: Path) -> None:
        nonlocal values
        if path.name.endswith(".j2"):
            source, text = path, render_template(path, inputs.variables())
            if run_dir is None:
                data, label = _mapping(text, f"{source} (rendered)"), f"{source} (rendered)"
            else:
                path = run_dir / "rendered" / source.name.removesuffix(".j2")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"# rendered from {source}\n{text}")
                rendered.append(path)
        if not path.name.endswith(".j2"):
            data, label = read_yaml(path), str(path)
            text = path.read_text()
        lines = key_lines(text)
        for key in _leaf_paths(data):
            origins[key] = f"{label}:{lines[key]}" if key in lines else label
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


def environment_values(inputs: Inputs, values_dir: Path = VALUES, charts_dir: Path = CHARTS) -> dict[str, Any]:
    """An environment's merged values, checked against the umbrella chart's schema: what a deploy
    would start from, without a run folder, a plan, digests or per-release checks."""
    from deploy.platform.schema import validate_umbrella

    merged = merge_inputs(inputs, None, values_dir, charts_dir)
    validate_umbrella(merged, charts_dir)
    return merged.values


def load_environment(env: str, values_dir: Path = VALUES, charts_dir: Path = CHARTS) -> dict[str, Any]:
    """An environment's merged values with no flags and no schema check: what `helm install platform
    charts/platform -f values/<env>.yaml` would see (a .j2 environment rendered with its defaults)."""
    return merge_inputs(Inputs(env=env), None, values_dir, charts_dir).values
