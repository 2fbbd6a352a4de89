"""The Helm chart helm/dts: lint, its helm-unittest suites, what it renders with each documented
values file validated against Kubernetes 1.34's schemas, the values schema refusing bad values by
name, and the PrometheusRule carrying the rules of platform/prometheus/rules/ (which
tests/platform/test_prometheus_rules.py checks and unit-tests with promtool).

The tools come from platform/tools/install.sh as in test_tools.py (a warm cache answers at once).
A missing tool fails the test, never skips."""

import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.kube import discovery_cache, kubectl
from tests.deploy.tools import CRD_SCHEMA_LOCATION, KUBERNETES_VERSION, kubeconform, run
from tests.platform.promql import DASHBOARDS, rule_files, rule_groups
from tests.processes import REPO

CHART = REPO / "helm" / "dts"
VALUES_FILES = sorted((CHART / "ci").glob("*.yaml"))

pytestmark = pytest.mark.timeout(600)


def helm_template(tools: dict[str, str], *arguments: str | Path) -> subprocess.CompletedProcess:
    return run(
        tools["helm"],
        "template",
        "dts",
        CHART,
        "--namespace",
        "dts",
        "--kube-version",
        KUBERNETES_VERSION,
        *arguments,
    )


def documents(rendered: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(rendered) if document]


def rendered_documents(tools: dict[str, str], values: Path) -> list[dict[str, Any]]:
    result = helm_template(tools, "--values", values)
    assert result.returncode == 0, result.stderr
    return documents(result.stdout)


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda path: path.name)
def test_chart_lints_strictly_with_each_values_file(tools: dict[str, str], values: Path) -> None:
    result = run(
        tools["helm"],
        "lint",
        "--strict",
        CHART,
        "--values",
        values,
        "--kube-version",
        KUBERNETES_VERSION,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_documented_values_files_are_the_expected_ones() -> None:
    assert [path.name for path in VALUES_FILES] == [
        "existing-secret-values.yaml",
        "full-values.yaml",
        "minimal-values.yaml",
    ]


def test_helm_unittest_suites_pass(tools: dict[str, str]) -> None:
    suites = sorted((CHART / "tests").glob("*_test.yaml"))
    result = run(tools["helm"], "unittest", CHART, env={"HELM_PLUGINS": tools["helm-unittest"]})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Test Suites: {len(suites)} passed, {len(suites)} total" in result.stdout
    counted = re.search(r"^Tests:\s+(\d+) passed, (\d+) total$", result.stdout, re.M)
    assert counted, result.stdout
    assert counted.group(1) == counted.group(2)
    assert int(counted.group(1)) >= 70


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda path: path.name)
def test_rendered_manifests_are_valid_kubernetes_and_custom_resources(
    tools: dict[str, str], crd_schemas: Path, values: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered_documents(tools, values)))
    result = kubeconform(tools, manifest, f"{crd_schemas}/{CRD_SCHEMA_LOCATION}")
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = len(documents(manifest.read_text()))
    assert f"Valid: {rendered}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


@pytest.fixture(scope="module")
def namespace(kube_apiserver: Path) -> str:
    """The namespace the chart is rendered for, made on the test's API server."""
    created = kubectl(kube_apiserver, "create", "namespace", "dts")
    assert created.returncode == 0, created.stderr
    return "dts"


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda path: path.name)
def test_the_api_server_accepts_every_rendered_manifest(
    tools: dict[str, str], kube_apiserver: Path, namespace: str, values: Path, tmp_path: Path
) -> None:
    # kubectl's server-side dry run sends each object to the API server, which checks what the
    # schemas cannot: selectors against labels, names, quantities, the CRDs' own validation.
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered_documents(tools, values)))
    result = kubectl(
        kube_apiserver, "apply", "--dry-run=server", "--namespace", namespace, "-f", manifest
    )
    assert result.returncode == 0, result.stderr
    applied = result.stdout.splitlines()
    assert len(applied) == len(documents(manifest.read_text()))
    assert all(line.endswith("(server dry run)") for line in applied), result.stdout


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda path: path.name)
def test_helm_install_dry_run_on_the_server_succeeds(
    tools: dict[str, str], kube_apiserver: Path, namespace: str, values: Path
) -> None:
    result = run(
        *(tools["helm"], "install", "dts", CHART, "--dry-run=server", "--values", values),
        *("--namespace", namespace, "--kubeconfig", kube_apiserver),
        env={"KUBECACHEDIR": str(discovery_cache(kube_apiserver))},
    )
    assert result.returncode == 0, result.stderr
    assert "STATUS: pending-install" in result.stdout


def test_full_values_render_every_optional_part(tools: dict[str, str]) -> None:
    kinds = [
        document["kind"]
        for document in rendered_documents(tools, CHART / "ci" / "full-values.yaml")
    ]
    for kind in ("Ingress", "NetworkPolicy", "ScaledObject", "HorizontalPodAutoscaler"):
        assert kind in kinds
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule", "PodDisruptionBudget"):
        assert kind in kinds
    # web, three worker groups, the scheduler, the relay and the indexer.
    assert kinds.count("Deployment") == 7


def test_every_process_is_scraped_as_a_job_the_alerts_watch(tools: dict[str, str]) -> None:
    full = rendered_documents(tools, CHART / "ci" / "full-values.yaml")
    processes = {
        document["metadata"]["labels"]["app.kubernetes.io/component"]
        for document in full
        if document["kind"] == "Deployment"
    } - {"web"}
    assert processes == {"worker", "scheduler", "relay", "indexer"}
    (monitor,) = [document for document in full if document["kind"] == "PodMonitor"]
    (selected,) = monitor["spec"]["selector"]["matchExpressions"]
    assert set(selected["values"]) == processes
    # The PodMonitor names each job dts-<component>: DtsTargetDown must watch every one.
    (rule,) = [document for document in full if document["kind"] == "PrometheusRule"]
    (target_down,) = [
        each
        for group in rule["spec"]["groups"]
        for each in group["rules"]
        if each.get("alert") == "DtsTargetDown"
    ]
    watched = re.search(r'job=~"([^"]+)"', target_down["expr"])
    assert watched, target_down["expr"]
    for process in processes:
        assert re.fullmatch(watched.group(1), f"dts-{process}"), process


def test_kubeconform_helper_refuses_a_crd_kind_without_its_schema(
    tools: dict[str, str], tmp_path: Path
) -> None:
    full = rendered_documents(tools, CHART / "ci" / "full-values.yaml")
    manifest = tmp_path / "monitors.yaml"
    manifest.write_text(
        yaml.safe_dump_all([document for document in full if document["kind"] == "PodMonitor"])
    )
    result = kubeconform(tools, manifest)
    assert result.returncode != 0
    assert "PodMonitor" in result.stdout


def test_a_changed_setting_changes_the_pods_checksum(tools: dict[str, str]) -> None:
    def web_annotations(*arguments: str) -> dict[str, str]:
        result = helm_template(
            tools,
            "--values",
            CHART / "ci" / "minimal-values.yaml",
            "--show-only",
            "templates/web-deployment.yaml",
            *arguments,
        )
        assert result.returncode == 0, result.stderr
        return documents(result.stdout)[0]["spec"]["template"]["metadata"]["annotations"]

    before = web_annotations()
    after = web_annotations("--set", "config.logLevel=DEBUG")
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] == after["checksum/secret"]
    rotated = web_annotations("--set", "externalDatabase.url=postgres://dts:new@db:5432/dts")
    assert before["checksum/secret"] != rotated["checksum/secret"]


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--set", "web.replicas=two"], "at '/web/replicas': got string, want integer"),
        (["--set", "config.logLevel=LOUD"], "at '/config/logLevel': value must be one of"),
        (["--set", "workers.groups.default.concurency=3"], "additional properties 'concurency'"),
        (["--set", "workers.groups.Mail_Queue.queues[0]=mail"], "'Mail_Queue' not allowed"),
        (["--set", "scheduler.replicas=-1"], "at '/scheduler/replicas': minimum"),
        (["--set", "indexer.metricsPort=0"], "at '/indexer/metricsPort': minimum"),
        (["--set", "config.logFormat=xml"], "at '/config/logFormat': value must be one of"),
        (["--set", "secrets.djangoSecretKey=short"], "at '/secrets/djangoSecretKey'"),
        (["--set", "image.pullPolicy=Sometimes"], "at '/image/pullPolicy'"),
        (["--set", "config.extra.DTS_QUEUES=mail"], "at '/config/extra/DTS_QUEUES'"),
        (["--set", "externalRedis.brokerUrl=amqp://rabbit"], "at '/externalRedis/brokerUrl'"),
        (["--set", "monitoring.interval=often"], "at '/monitoring/interval'"),
        (["--set", "monitoring.dashboards.enable=true"], "additional properties 'enable'"),
    ],
    ids=lambda value: value[1] if isinstance(value, list) else None,
)
def test_values_schema_refuses_a_bad_value_naming_it(
    tools: dict[str, str], arguments: list[str], complaint: str
) -> None:
    result = helm_template(tools, "--values", CHART / "ci" / "minimal-values.yaml", *arguments)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_a_required_secret_missing_fails_naming_it(tools: dict[str, str]) -> None:
    result = helm_template(
        tools, "--values", CHART / "ci" / "minimal-values.yaml", "--set", "externalDatabase.url="
    )
    assert result.returncode != 0
    assert "externalDatabase.url is required" in result.stderr


def test_prometheus_rule_carries_every_rule_of_the_platform_rules(tools: dict[str, str]) -> None:
    full = rendered_documents(tools, CHART / "ci" / "full-values.yaml")
    (rule,) = [document for document in full if document["kind"] == "PrometheusRule"]
    assert rule["spec"] == {"groups": rule_groups()}


def test_the_packaged_chart_holds_the_rules_and_dashboards_themselves(
    tools: dict[str, str], tmp_path: Path
) -> None:
    """files/prometheus and files/grafana are links to platform/prometheus/rules/ and
    platform/grafana/dashboards/: helm package stores the files they point to, so an installed
    chart needs no repository."""
    result = run(tools["helm"], "package", CHART, "--destination", tmp_path)
    assert result.returncode == 0, result.stderr
    (package,) = tmp_path.glob("dts-*.tgz")
    packaged: dict[str, str] = {}
    with tarfile.open(package) as archive:
        for member in archive.getmembers():
            content = archive.extractfile(member) if member.isfile() else None
            if content and member.name.startswith("dts/files/"):
                packaged[member.name.removeprefix("dts/files/")] = content.read().decode()
    expected = {f"prometheus/{path.name}": path.read_text() for path in rule_files()}
    expected |= {f"grafana/{path.name}": path.read_text() for path in DASHBOARDS}
    assert packaged == expected


def test_dashboards_config_map_carries_every_dashboard(tools: dict[str, str]) -> None:
    full = rendered_documents(tools, CHART / "ci" / "full-values.yaml")
    (config_map,) = [
        document
        for document in full
        if document["kind"] == "ConfigMap" and document["metadata"]["name"] == "dts-dashboards"
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {name: json.loads(text) for name, text in config_map["data"].items()} == {
        path.name: json.loads(path.read_text()) for path in DASHBOARDS
    }


def test_readme_documents_every_top_level_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [key for key in values if f"`{key}" not in readme]
    assert not missing, f"helm/dts/README.md does not document {missing}"
