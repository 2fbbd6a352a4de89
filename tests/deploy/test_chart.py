"""The Helm chart helm/dts: lint, its helm-unittest suites, what it renders with each documented
values file validated against Kubernetes 1.34's schemas, the values schema refusing bad values by
name, and the Prometheus alerts it ships checked and unit-tested with promtool.

The tools come from platform/tools/install.sh as in test_tools.py (a warm cache answers at once);
promtool is Debian's, installed by `make services`. A missing tool fails the test, never skips."""

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.kube import discovery_cache, kubectl
from tests.processes import REPO

CHART = REPO / "helm" / "dts"
VALUES_FILES = sorted((CHART / "ci").glob("*.yaml"))
ALERTS = CHART / "files" / "prometheus" / "alerts.yaml"
PROMTOOL = Path("/usr/bin/promtool")
KUBERNETES_VERSION = "1.34.0"
# kubeconform finds the CRD kinds' schemas in crd-schemas.sh's folder laid out so.
CRD_SCHEMA_LOCATION = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"

pytestmark = pytest.mark.timeout(600)


def run(*command: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """What install.sh prints for each tool (its binary, or where to point the caller)."""
    result = subprocess.run(
        [REPO / "platform" / "tools" / "install.sh"],
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


@pytest.fixture(scope="module")
def promtool() -> Path:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: `make services` installs Debian's prometheus"
    return PROMTOOL


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


def kubeconform(
    tools: dict[str, str], manifest: Path, extra_schema_locations: list[str] | None = None
) -> subprocess.CompletedProcess:
    """kubeconform -strict on `manifest`, with the Kubernetes schemas and any extra locations (a
    kind no location knows is an error)."""
    locations = [tools["kubernetes-schemas"], *(extra_schema_locations or [])]
    return run(
        tools["kubeconform"],
        "-strict",
        "-summary",
        "-kubernetes-version",
        KUBERNETES_VERSION,
        *[argument for location in locations for argument in ("-schema-location", location)],
        manifest,
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
        tools["helm"], "lint", "--strict", CHART, "--values", values, "--kube-version", "1.34.0"
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
    assert int(counted.group(1)) >= 49


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda path: path.name)
def test_rendered_manifests_are_valid_kubernetes_and_custom_resources(
    tools: dict[str, str], crd_schemas: Path, values: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered_documents(tools, values)))
    result = kubeconform(tools, manifest, [f"{crd_schemas}/{CRD_SCHEMA_LOCATION}"])
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
    # web, three worker groups, the scheduler and the relay.
    assert kinds.count("Deployment") == 6


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
        (["--set", "secrets.djangoSecretKey=short"], "at '/secrets/djangoSecretKey'"),
        (["--set", "image.pullPolicy=Sometimes"], "at '/image/pullPolicy'"),
        (["--set", "config.extra.DTS_QUEUES=mail"], "at '/config/extra/DTS_QUEUES'"),
        (["--set", "externalRedis.brokerUrl=amqp://rabbit"], "at '/externalRedis/brokerUrl'"),
        (["--set", "monitoring.interval=often"], "at '/monitoring/interval'"),
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


def test_prometheus_rule_carries_the_alerts_file(tools: dict[str, str]) -> None:
    full = rendered_documents(tools, CHART / "ci" / "full-values.yaml")
    (rule,) = [document for document in full if document["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())


def test_alerts_file_passes_promtool_check_rules(promtool: Path) -> None:
    result = run(promtool, "check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: \d+ rules found", result.stdout), result.stdout


def test_alerts_name_only_metrics_dts_exports() -> None:
    """Each dts_* metric an alert uses is declared in the code (a rename breaks this)."""
    declared: set[str] = set()
    for path in [*REPO.glob("apps/**/*.py"), *REPO.glob("workers/**/*.py")]:
        for kind, name in re.findall(
            r'\b(Counter|Gauge|Histogram)\(\s*"(dts_\w+)"', path.read_text()
        ):
            declared.add(f"{name}_total" if kind == "Counter" else name)
    used = set(
        re.findall(
            r"\bdts_\w+",
            "".join(
                rule["expr"]
                for group in yaml.safe_load(ALERTS.read_text())["groups"]
                for rule in group["rules"]
            ),
        )
    )
    assert used, "the alerts use no dts metric"
    assert used <= declared, used - declared


UNIT_TESTS = """\
rule_files: [{alerts}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{{job="dts-worker", instance="10.0.0.7:9109"}}'
        values: '1 1 0 0 0 0 0 0 0 0'
      - series: 'up{{job="dts-scheduler", instance="10.0.0.8:9110"}}'
        values: '1x9'
      - series: >-
          dts_dependency_up{{job="dts-relay", instance="10.0.0.9:9108", dependency="Kafka",
          address="kafka:9092"}}
        values: '1 1 0 0 0 0 0 0'
      - series: 'dts_events_outbox_lag_seconds{{job="dts-relay", instance="10.0.0.9:9108"}}'
        values: '0+60x15'
    alert_rule_test:
      - eval_time: 5m
        alertname: DtsTargetDown
        exp_alerts: []
      - eval_time: 8m
        alertname: DtsTargetDown
        exp_alerts:
          - exp_labels: {{severity: warning, job: dts-worker, instance: "10.0.0.7:9109"}}
            exp_annotations:
              summary: dts-worker target 10.0.0.7:9109 is down
              description: >-
                Prometheus has not scraped 10.0.0.7:9109 of dts-worker for 5 minutes: the process
                is gone, hangs, or its metrics port is not reachable.
      - eval_time: 8m
        alertname: DtsNoWorkerUp
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations:
              summary: No dts worker is up
              description: No worker has been scraped for 5 minutes; queued runs are not executed.
      - eval_time: 8m
        alertname: DtsNoSchedulerUp
        exp_alerts: []
      - eval_time: 4m
        alertname: DtsDependencyDown
        exp_alerts:
          - exp_labels:
              severity: critical
              job: dts-relay
              instance: "10.0.0.9:9108"
              dependency: Kafka
              address: "kafka:9092"
            exp_annotations:
              summary: dts-relay cannot reach Kafka at kafka:9092
              description: >-
                10.0.0.9:9108 (dts-relay) has not reached Kafka at kafka:9092 for 2 minutes; it
                keeps retrying, and its log says why.
      - eval_time: 5m
        alertname: DtsEventsOutboxLagging
        exp_alerts: []
      - eval_time: 12m
        alertname: DtsEventsOutboxLagging
        exp_alerts:
          - exp_labels: {{severity: warning, job: dts-relay}}
            exp_annotations:
              summary: dts events reach Kafka 12m 0s late
              description: >-
                The oldest unpublished outbox event is over 5 minutes old: the relay is down, slow,
                or Kafka refuses it. Consumers see changes late; nothing is lost.
"""


def test_alerts_fire_as_promtool_unit_tests_expect(promtool: Path, tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(UNIT_TESTS.format(alerts=ALERTS))
    result = run(promtool, "test", "rules", tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_readme_documents_every_top_level_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [key for key in values if f"`{key}" not in readme]
    assert not missing, f"helm/dts/README.md does not document {missing}"
