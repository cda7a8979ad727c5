"""Values that must be refused: each file under bad-values/ fails `helm template` of the
umbrella (on top of values/dev.yaml) with a message that names the key. The expected
message parts are the file's leading `# expect: ...` lines."""

from pathlib import Path

import pytest
from chartkit import UMBRELLA, run_helm

from deploy.paths import VALUES

BAD_VALUES = sorted((Path(__file__).parent / "bad-values").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    found = []
    for line in path.read_text().splitlines():
        if not line.startswith("# expect: "):
            break
        found.append(line.removeprefix("# expect: "))
    return found


def test_there_are_at_least_ten_cases() -> None:
    assert len(BAD_VALUES) >= 10


@pytest.mark.parametrize("path", BAD_VALUES, ids=[p.stem for p in BAD_VALUES])
def test_bad_values_are_refused_naming_the_key(helm: str, path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} needs a leading '# expect: <message part>' line"
    result = run_helm(
        helm,
        "template",
        "kai-ml-dev",
        str(UMBRELLA),
        "-f",
        str(VALUES / "dev.yaml"),
        "-f",
        str(path),
        "--api-versions",
        "argoproj.io/v1alpha1/WorkflowTemplate",
    )
    assert result.returncode != 0, f"{path.name} was accepted"
    for part in expected:
        assert part in result.stderr
