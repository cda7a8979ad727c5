"""The library chart's interface (charts/platform-lib): one tag resolution behind both the image
and the app.kubernetes.io/version label, and helpers that take values rather than YAML text."""

import shutil
from pathlib import Path

import pytest
import yaml
from chartkit import Manifest, environment_values, pods, run_helm, template

from deploy.paths import CHARTS
from deploy.platform import charts

VERSION = "app.kubernetes.io/version"
NAME = "app.kubernetes.io/name"
PLATFORM_TAG = "v9.9.9"


def version_of(image: str, values: dict) -> str:
    """The tag an image reference runs: the one after its last ':' or, when a digest pins it, the
    tag its values name (the digest's human name)."""
    if "@" in image:
        return str(values["tag"])
    return image.rpartition("/")[2].rpartition(":")[2]


def test_the_version_label_is_the_tag_of_the_image_the_component_runs(render, env: str) -> None:
    """The platform's tag labels the platform's images; the cache, which runs Redis under a tag of
    its own (7.4, or the 7.4.2 that prod pins by digest), is labelled with that tag, on every object
    of its release, not with the platform's."""
    rendered = render(env, "--set", f"global.image.tag={PLATFORM_TAG}")
    cache_image = {"tag": "7.4", **environment_values(env).get("cache", {}).get("image", {})}
    versions: dict[str, str] = {}
    for pod in pods(rendered):
        (container,) = pod.spec["containers"]
        name = pod.labels[NAME]
        expected = version_of(container["image"], cache_image if name == "cache" else {})
        assert pod.labels[VERSION] == expected, f"{pod.source}: image {container['image']}"
        versions[name] = expected
    assert versions.pop("cache") == cache_image["tag"]
    assert set(versions.values()) == {PLATFORM_TAG}, versions
    # The Deployment, its Service and ServiceAccount carry their pods' version.
    for m in rendered:
        labels = m["metadata"].get("labels", {})
        if labels.get(NAME) in versions or labels.get(NAME) == "cache":
            expected = cache_image["tag"] if labels[NAME] == "cache" else PLATFORM_TAG
            assert labels[VERSION] == expected, f"{m['kind']}/{m['metadata']['name']}"


def test_a_component_tag_wins_for_image_and_label_alike(render) -> None:
    rendered = render("dev", "--set", f"global.image.tag={PLATFORM_TAG}", "--set", "coordinator.image.tag=1.2.3-rc.1")
    (pod,) = [p for p in pods(rendered) if p.labels[NAME] == "coordinator"]
    assert pod.spec["containers"][0]["image"].endswith(":1.2.3-rc.1")
    assert pod.labels[VERSION] == "1.2.3-rc.1"


def test_sweep_objects_carry_the_runner_image_tag(helm: str) -> None:
    file = CHARTS / "benchmark" / "ci" / "default-values.yaml"
    rendered = template(
        helm,
        CHARTS / "benchmark",
        "-f",
        str(file),
        "--set",
        f"global.image.tag={PLATFORM_TAG}",
        "--set",
        "runner.image.tag=runner-7",
    )
    assert {m["metadata"]["labels"][VERSION] for m in rendered} == {"runner-7"}
    for pod in pods(rendered):
        assert pod.spec["containers"][0]["image"].endswith(":runner-7")
        assert pod.labels[VERSION] == "runner-7"
        assert pod.labels["kai-ml.io/benchmark"] == "ci-sweep"


@pytest.fixture(scope="module")
def scratch_chart(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of a component chart beside a copy of the library, its deployment template to be
    replaced by each test; `helm` has built the real charts' dependencies already."""
    root = tmp_path_factory.mktemp("charts")
    shutil.copytree(CHARTS / "platform-lib", root / "platform-lib")
    chart = root / "mobile-optimization"
    shutil.copytree(CHARTS / "mobile-optimization", chart, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    charts.build_dependencies(Path(helm), [chart])
    return chart


def render_deployment(helm: str, chart: Path, params: str) -> tuple[int, str, list[Manifest]]:
    """Render the chart with its Deployment made by platform-lib.deployment with these params."""
    (chart / "templates" / "deployment.yaml").write_text(f'{{{{- include "platform-lib.deployment" {params} }}}}\n')
    result = run_helm(helm, "template", "t", str(chart), "-f", str(chart / "ci" / "default-values.yaml"))
    docs = [d for d in yaml.safe_load_all(result.stdout) if d] if result.returncode == 0 else []
    return result.returncode, result.stderr, docs


def test_deployment_params_are_values_rendered_in_place(helm: str, scratch_chart: Path) -> None:
    params = (
        '(dict "ctx" . "command" (list "serve") "args" (list "--port" "8080")'
        ' "env" (list (dict "name" "MODE" "value" "fast")) "envFrom" (list (dict "configMapRef" (dict "name" "cm")))'
        ' "volumes" (list (dict "name" "data" "emptyDir" dict))'
        ' "volumeMounts" (list (dict "name" "data" "mountPath" "/data"))'
        ' "annotations" (dict "checksum/config" "abc") "readinessProbe" (dict "exec" (dict "command" (list "true"))))'
    )
    rc, err, docs = render_deployment(helm, scratch_chart, params)
    assert rc == 0, err
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["serve"] and container["args"] == ["--port", "8080"]
    assert container["env"] == [{"name": "MODE", "value": "fast"}]
    assert container["envFrom"] == [{"configMapRef": {"name": "cm"}}]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": "/data"}]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["tmp", "data"]
    assert pod["metadata"]["annotations"]["checksum/config"] == "abc"
    assert container["readinessProbe"] == {"exec": {"command": ["true"]}}


@pytest.mark.parametrize(
    ("param", "value", "kind"),
    [
        ("env", '(toYaml (list (dict "name" "MODE" "value" "fast")))', "a list"),
        ("volumes", '"- name: data\\n  emptyDir: {}"', "a list"),
        ("annotations", '"checksum/config: abc"', "a map"),
        ("readinessProbe", '(list "true")', "a map"),
    ],
)
def test_yaml_text_where_a_value_belongs_is_refused_with_the_param_named(
    helm: str, scratch_chart: Path, param: str, value: str, kind: str
) -> None:
    """The old interface (YAML text, indented blind) fails with one message, not a broken manifest."""
    rc, err, _ = render_deployment(helm, scratch_chart, f'(dict "ctx" . "{param}" {value})')
    assert rc != 0
    assert f'platform-lib.deployment, included by chart mobile-optimization: param "{param}" must be {kind}' in err
