"""Generated chart files are up to date (tools/chart-docs.sh --check), every value is
documented, and the component charts keep one shape of workload values."""

import json
import subprocess

from chartkit import tool

from deploy.paths import CHARTS, REPO

WORKLOAD_CHARTS = ["coordinator", "distributed-processing", "mobile-optimization", "wasm-compiler"]


def test_generated_schemas_and_readmes_are_current() -> None:
    tool("helm-docs")
    result = subprocess.run(
        ["bash", str(REPO / "tools" / "chart-docs.sh"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_value_is_documented() -> None:
    """helm-docs lists every value; one without a `# --` comment has an empty description."""
    for readme in CHARTS.glob("*/README.md"):
        if readme.parent.name == "platform-lib":  # no values; its README documents the helpers
            continue
        table = readme.read_text().partition("## Values")[2]
        rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")][1:]
        undocumented = [cells[0].strip("| ") for cells in rows if not cells[-1].strip(" |")]
        assert rows and not undocumented, f"{readme.parent.name}: {undocumented}"


def test_workload_charts_share_the_workload_values() -> None:
    """The keys platform-lib.deployment reads have one schema, kept in platform-lib."""
    shared = json.loads((CHARTS / "platform-lib" / "schema" / "definitions.json").read_text())["definitions"]
    workload = shared["workload"]
    for chart in WORKLOAD_CHARTS:
        schema = json.loads((CHARTS / chart / "values.schema.json").read_text())
        props = schema["properties"]
        assert {k: props.get(k) for k in workload["properties"]} == workload["properties"], chart
        assert set(workload["required"]) <= set(schema["required"]), chart
        assert schema["additionalProperties"] is False, chart


def test_every_chart_checks_global_strictly() -> None:
    for schema_file in CHARTS.glob("*/values.schema.json"):
        schema = json.loads(schema_file.read_text())
        assert schema["additionalProperties"] is False, schema_file.parent.name
        assert schema["properties"]["global"] == {"$ref": "#/definitions/global"}, schema_file.parent.name
        assert schema["definitions"]["global"]["additionalProperties"] is False, schema_file.parent.name
