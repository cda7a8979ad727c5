"""Values: merge order, templating, overrides, schema errors that name the key and where it was set,
digests, and the run folder."""

import pytest

from deploy.errors import ValuesError
from deploy.platform.prepare import Selection, prepare, release_values
from deploy.platform.state import release_digest
from deploy.platform.values import Inputs, environment_values, merge_inputs, parse_set


def test_merge_order_later_wins(suite, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("coordinator:\n  replicas: 4\n  message: from-f\n")
    merged = merge_inputs(
        Inputs(env="dev", files=[extra], sets=["coordinator.replicas=5"], registry="r.io", tag="v9"),
        tmp_path,
        suite.values,
        suite.charts,
    )
    v = merged.values
    assert v["coordinator"] == {"enabled": True, "replicas": 5, "message": "from-f"}
    assert v["global"]["image"] == {"registry": "r.io", "tag": "v9"}  # flags beat the chart defaults
    assert v["cache"]["enabled"] is False  # env file beats the umbrella defaults
    assert merged.origin(("coordinator", "replicas")) == "--set coordinator.replicas=5"
    assert merged.origin(("coordinator", "message")) == f"{extra}:3"
    assert merged.origin(("global", "image", "tag")) == "--tag=v9"


def test_set_beats_registry_and_tag(suite, tmp_path):
    merged = merge_inputs(
        Inputs(env="dev", tag="v1", sets=["global.image.tag=v2"]), tmp_path, suite.values, suite.charts
    )
    assert merged.values["global"]["image"]["tag"] == "v2"


@pytest.mark.parametrize(
    ("expr", "path", "value"),
    [
        ("a.b=3", ("a", "b"), 3),
        ("a=true", ("a",), True),
        ("a=[x, y]", ("a",), ["x", "y"]),
        ("a=null", ("a",), None),
        ("a.b=", ("a", "b"), ""),
        (r"labels.kaiml\.dev/pool=gpu", ("labels", "kaiml.dev/pool"), "gpu"),
        ("a=x=y", ("a",), "x=y"),
    ],
)
def test_parse_set(expr, path, value):
    assert parse_set(expr) == (path, value)


def test_bad_set_is_a_values_error():
    with pytest.raises(ValuesError, match=r"expected key\.path=value"):
        parse_set("novalue")


def test_j2_environment_is_templated_with_the_run_variables(suite, tmp_path):
    merged = merge_inputs(
        Inputs(env="staging", registry="my-registry.example.com", namespace="ops"), tmp_path, suite.values, suite.charts
    )
    assert merged.values["global"]["image"] == {"registry": "my-registry.example.com", "tag": "stable"}
    assert merged.values["coordinator"]["message"] == "hello staging in ops"
    assert merged.values["global"]["namespaces"]["platform"] == "fx-staging-platform"
    assert (tmp_path / "rendered" / "staging.yaml").exists()  # the rendered file is kept in the run folder


def test_undefined_template_variable_names_file_and_line(suite, tmp_path):
    (suite.values / "qa.yaml.j2").write_text("global:\n  image:\n    tag: {{ tag }}\n    other: {{ nope }}\n")
    with pytest.raises(ValuesError) as err:
        merge_inputs(Inputs(env="qa", tag="v1"), tmp_path, suite.values, suite.charts)
    assert f"{suite.values / 'qa.yaml.j2'}:4: template error: 'nope' is undefined" in str(err.value)


def test_template_syntax_error_names_line(suite, tmp_path):
    (suite.values / "qa.yaml.j2").write_text("a: 1\nb: {{ env \n")
    with pytest.raises(ValuesError, match=r"qa\.yaml\.j2:2: template error"):
        merge_inputs(Inputs(env="qa"), tmp_path, suite.values, suite.charts)


def test_invalid_yaml_names_file_and_line(suite, tmp_path):
    (suite.values / "dev.yaml").write_text("global:\n  a: 1\n b: [\n")
    with pytest.raises(ValuesError, match=r"dev\.yaml:3:\d+: invalid YAML"):
        merge_inputs(Inputs(env="dev"), tmp_path, suite.values, suite.charts)


def test_unknown_environment_lists_the_known_ones(suite, tmp_path):
    with pytest.raises(ValuesError, match=r"unknown environment 'prd'.*Known environments: dev, staging\."):
        merge_inputs(Inputs(env="prd"), tmp_path, suite.values, suite.charts)


def test_missing_values_file(suite, tmp_path):
    with pytest.raises(ValuesError, match=r"nope\.yaml \(given with -f\) does not exist"):
        merge_inputs(Inputs(env="dev", files=[tmp_path / "nope.yaml"]), tmp_path, suite.values, suite.charts)


def test_release_values_are_what_helm_gives_the_subchart():
    values = {"global": {"a": 1}, "coordinator": {"enabled": True, "replicas": 2}, "cache": {"x": 1}}
    assert release_values(values, "coordinator") == {"replicas": 2, "global": {"a": 1}}


def test_schema_violation_names_key_rule_and_origin(suite):
    with pytest.raises(ValuesError) as err:
        prepare(
            Inputs(env="dev", sets=["coordinator.replicas=two"]), Selection(), suite.runs, suite.values, suite.charts
        )
    text = str(err.value)
    assert "coordinator.replicas (set at --set coordinator.replicas=two)" in text
    assert "'two' is not of type 'integer'" in text and "values.schema.json" in text


def test_schema_typo_names_the_extra_key_and_its_line(suite):
    dev = suite.values / "dev.yaml"
    dev.write_text(dev.read_text().replace("  replicas: 2\n", "  replicas: 2\n  replcas: 3\n"))
    with pytest.raises(ValuesError) as err:
        prepare(Inputs(env="dev"), Selection(), suite.runs, suite.values, suite.charts)
    assert f"coordinator.replcas (set at {suite.values / 'dev.yaml'}:12)" in str(err.value)
    assert "'replcas' was unexpected" in str(err.value)


def test_prepare_writes_each_release_values_to_the_run_folder(suite):
    prep = prepare(Inputs(env="dev", tag="v1"), Selection(), suite.runs, suite.values, suite.charts)
    files = sorted(p.name for p in (prep.run.path / "values").iterdir())
    assert files == ["dev-coordinator.yaml", "dev-platform-policy.yaml", "dev-workflows.yaml", "platform-cluster.yaml"]
    assert prep.run.path.parent == suite.runs and prep.run.path.name.endswith("-dev")


def test_digest_changes_with_values_and_chart_not_with_built_deps(suite):
    chart = suite.charts / "coordinator"
    d1 = release_digest(chart, {"a": 1}, "default")
    assert d1 == release_digest(chart, {"a": 1}, "default")
    assert d1 != release_digest(chart, {"a": 2}, "default")
    assert d1 != release_digest(chart, {"a": 1}, "other")
    (chart / "charts").mkdir()
    (chart / "charts" / "platform-lib-0.1.0.tgz").write_bytes(b"rebuilt")
    from deploy.platform.charts import chart_digest

    chart_digest.cache_clear()
    assert d1 == release_digest(chart, {"a": 1}, "default")
    (suite.charts / "platform-lib" / "templates" / "_helpers.tpl").write_text("{{/* changed */}}\n")
    chart_digest.cache_clear()
    assert d1 != release_digest(chart, {"a": 1}, "default")  # the library chart counts


def test_cluster_scoped_release_gets_no_environment_globals():
    values = {
        "global": {
            "environment": "dev",
            "namespaces": {"platform": "p"},
            "nodePools": {},
            "image": {"registry": "r.example", "tag": "v1"},  # --registry/--tag: one deploy's, not the cluster's
            "cacheAuth": {"existingSecret": "cache-auth"},
            "zoneSpread": {"enabled": True},
            "priorityClassName": "low-priority-batch",
            "commonLabels": {"a": "b"},
        },
        "cluster": {"enabled": False, "globalDefault": ""},
    }
    assert release_values(values, "cluster", cluster_scoped=True) == {
        "globalDefault": "",
        "global": {"commonLabels": {"a": "b"}},
    }


def test_environment_values_reads_a_template_environment_without_a_run_folder(suite):
    """The cheap read (cluster up, the workload commands): the same merge, the .j2 rendered in memory,
    nothing written."""
    values = environment_values(Inputs(env="staging", namespace="ops", tag="t1"), suite.values, suite.charts)
    assert values["coordinator"]["message"] == "hello staging in ops"
    assert values["global"]["image"]["tag"] == "t1"
    assert not suite.runs.exists()


def test_environment_values_checks_the_umbrella_schema():
    with pytest.raises(ValuesError, match="coordinatr"):
        environment_values(Inputs(env="dev", sets=["coordinatr.replicas=2"]))
