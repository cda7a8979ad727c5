"""Load an environment's values: the umbrella chart's defaults deep-merged with values/<env>.yaml."""

from pathlib import Path
from typing import Any

import yaml

from deploy.errors import ValuesError
from deploy.paths import CHARTS, VALUES

UMBRELLA = CHARTS / "platform"


def environments(values_dir: Path = VALUES) -> list[str]:
    """Names of the environments that have a values file."""
    return sorted(p.stem for p in values_dir.glob("*.yaml"))


# libyaml's parser when PyYAML was built with it (ten times faster: most of a no-op run's work is
# reading YAML); the pure-Python one for the messages of invalid files, which name file and line.
FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# And libyaml's emitter under the same representer: the same text as yaml.safe_dump, four times faster.
FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def parse_yaml(text: str) -> Any:
    """yaml.safe_load, faster: the same constructor (same data) over libyaml's parser."""
    try:
        return yaml.load(text, Loader=FAST_LOADER)
    except yaml.YAMLError:
        return yaml.safe_load(text)


# Helm keeps a release's values in a Secret of at most 1 MiB (with the chart and manifests): a larger
# values file can only fail at the API server, after Helm started.
MAX_VALUES_BYTES = 1 << 20


def not_utf8(path: Path, err: UnicodeDecodeError) -> ValuesError:
    return ValuesError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}).")


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
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ValuesError(f"{where}: invalid YAML: {problem}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValuesError(f"{path}: the top level must be a mapping of keys to values, not {type(data).__name__}.")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge rule: maps merge key by key, everything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def environment_file(env: str, values_dir: Path = VALUES) -> Path:
    path = values_dir / f"{env}.yaml"
    if not path.exists():
        known = ", ".join(environments(values_dir)) or "none"
        raise ValuesError(f"unknown environment {env!r}: there is no {path} (known environments: {known}).")
    return path


def load_environment(env: str, values_dir: Path = VALUES) -> dict[str, Any]:
    """The values `helm install platform charts/platform -f values/<env>.yaml` would see."""
    return deep_merge(read_yaml(UMBRELLA / "values.yaml"), read_yaml(environment_file(env, values_dir)))
