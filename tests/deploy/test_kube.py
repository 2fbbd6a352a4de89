"""The Kubernetes checks beyond schemas: a real API server (platform/k8s/apiserver.sh) refuses what
kubeconform's schemas let through, knows the CRDs the chart uses, and serves `helm install
--dry-run=server`; and kubeconform, given crd-schemas.sh's schemas, checks those custom resources
as strictly as the built-in kinds.

Warm, this takes well under a minute (two API server starts); cold, the API server and the tools
are built first (minutes)."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.kube import apiserver, discovery_cache, kubeconfig_of, kubectl
from tests.deploy.tools import CRD_SCHEMA_LOCATION, kubeconform, run
from tests.processes import REPO, free_port

TOOLS = REPO / "platform" / "tools"
pytestmark = pytest.mark.timeout(1800)

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: dts:latest
          resources:
            requests: {cpu: 100m, memory: 128Mi}
"""

CUSTOM_RESOURCES = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: web
  labels: {app: web}
spec:
  selector:
    matchLabels: {app: web}
  endpoints:
    - port: http
      path: /metrics
      interval: 30s
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: web
spec:
  groups:
    - name: web
      rules:
        - alert: WebDown
          expr: up{job="web"} == 0
          for: 5m
          labels: {severity: page}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: worker
spec:
  scaleTargetRef:
    name: worker
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
    - type: redis
      metadata: {address: "redis:6379", listName: celery, listLength: "10"}
      authenticationRef:
        name: redis
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: redis
spec:
  secretTargetRef:
    - {parameter: password, name: redis, key: password}
"""


def test_server_dry_run_accepts_a_valid_deployment(kube_apiserver: Path) -> None:
    result = kubectl(kube_apiserver, "apply", "--dry-run=server", "-f", "-", stdin=DEPLOYMENT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deployment.apps/web created (server dry run)"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        # Valid against the schema; only the server compares the selector with the labels.
        (("labels: {app: web}", "labels: {app: api}"), "`selector` does not match template"),
        (("memory: 128Mi", "memory: 128 megs"), "quantities must match the regular expression"),
    ],
)
def test_server_dry_run_refuses_a_broken_deployment(
    kube_apiserver: Path, change: tuple[str, str], complaint: str
) -> None:
    broken = DEPLOYMENT.replace(*change)
    result = kubectl(kube_apiserver, "apply", "--dry-run=server", "-f", "-", stdin=broken)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_server_dry_run_accepts_the_custom_resources(kube_apiserver: Path) -> None:
    result = kubectl(kube_apiserver, "apply", "--dry-run=server", "-f", "-", stdin=CUSTOM_RESOURCES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "servicemonitor.monitoring.coreos.com/web created (server dry run)",
        "prometheusrule.monitoring.coreos.com/web created (server dry run)",
        "scaledobject.keda.sh/worker created (server dry run)",
        "triggerauthentication.keda.sh/redis created (server dry run)",
    ]


def test_server_dry_run_refuses_an_unknown_field_of_a_custom_resource(
    kube_apiserver: Path,
) -> None:
    broken = CUSTOM_RESOURCES.replace("interval: 30s", "interval: 30s\n      intervall: 1m")
    result = kubectl(kube_apiserver, "apply", "--dry-run=server", "-f", "-", stdin=broken)
    assert result.returncode != 0
    assert 'unknown field "spec.endpoints[0].intervall"' in result.stderr


def test_crd_schemas_holds_the_crds_and_a_schema_per_kind(crd_schemas: Path) -> None:
    crds = {path.name for path in (crd_schemas / "crds").glob("*.yaml")}
    assert {
        "monitoring.coreos.com_servicemonitors.yaml",
        "monitoring.coreos.com_podmonitors.yaml",
        "monitoring.coreos.com_prometheusrules.yaml",
        "keda.sh_scaledobjects.yaml",
        "keda.sh_triggerauthentications.yaml",
    } <= crds
    generated = (crd_schemas / "crds" / "monitoring.coreos.com_servicemonitors.yaml").read_text()
    assert "controller-gen.kubebuilder.io/version: v0.23.0" in generated
    for schema in (
        "monitoring.coreos.com/servicemonitor_v1.json",
        "monitoring.coreos.com/podmonitor_v1.json",
        "monitoring.coreos.com/prometheusrule_v1.json",
        "keda.sh/scaledobject_v1alpha1.json",
        "keda.sh/triggerauthentication_v1alpha1.json",
    ):
        assert (crd_schemas / schema).is_file(), schema


def custom_resources_check(
    tools: dict[str, str], crd_schemas: Path, manifest: str, tmp_path: Path
) -> subprocess.CompletedProcess:
    """kubeconform on `manifest` with the CRDs' schemas besides the Kubernetes ones."""
    path = tmp_path / "manifest.yaml"
    path.write_text(manifest)
    return kubeconform(tools, path, f"{crd_schemas}/{CRD_SCHEMA_LOCATION}")


def test_kubeconform_accepts_valid_custom_resources(
    tools: dict[str, str], crd_schemas: Path, tmp_path: Path
) -> None:
    result = custom_resources_check(tools, crd_schemas, CUSTOM_RESOURCES, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid: 4, Invalid: 0, Errors: 0" in result.stdout


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (("interval: 30s", "interval: 30s\n      intervall: 1m"), "'intervall' not allowed"),
        (("for: 5m", "for: 5m\n          severity: page"), "'severity' not allowed"),
        (("maxReplicaCount: 10", "maxReplicaCount: ten"), "got string, want integer"),
        (("name: worker\nspec", "name: worker\n  lables: {}\nspec"), "'lables' not allowed"),
        (
            ("keda.sh/v1alpha1\nkind: ScaledObject", "keda.sh/v1\nkind: ScaledObject"),
            "could not find schema for ScaledObject",
        ),
    ],
    ids=["unknown-field", "unknown-rule-field", "wrong-type", "unknown-metadata", "no-schema"],
)
def test_kubeconform_refuses_broken_custom_resources(
    tools: dict[str, str],
    crd_schemas: Path,
    tmp_path: Path,
    change: tuple[str, str],
    complaint: str,
) -> None:
    broken = CUSTOM_RESOURCES.replace(*change)
    assert broken != CUSTOM_RESOURCES
    result = custom_resources_check(tools, crd_schemas, broken, tmp_path)
    assert result.returncode != 0
    assert complaint in result.stdout
    assert "Valid: 3," in result.stdout  # the other three still pass


def test_helm_installs_a_chart_with_custom_resources_against_the_server(
    tools: dict[str, str], kube_apiserver: Path, tmp_path: Path
) -> None:
    created = run(tools["helm"], "create", tmp_path / "demo")
    assert created.returncode == 0, created.stderr
    templates = tmp_path / "demo" / "templates"
    (templates / "custom-resources.yaml").write_text(CUSTOM_RESOURCES)
    chart = tmp_path / "demo"
    install = (tools["helm"], "install", "demo", chart, "--dry-run=server", "--kubeconfig")
    cache = {"KUBECACHEDIR": str(discovery_cache(kube_apiserver))}
    result = run(*install, kube_apiserver, env=cache)
    assert result.returncode == 0, result.stderr
    for kind in ("Deployment", "ServiceMonitor", "PrometheusRule", "ScaledObject"):
        assert f"\nkind: {kind}\n" in result.stdout
    # Helm asks the server for each kind: one it does not serve fails the install.
    (templates / "custom-resources.yaml").write_text(
        CUSTOM_RESOURCES.replace("kind: ScaledObject", "kind: ScaledObjekt")
    )
    result = run(*install, kube_apiserver, env=cache)
    assert result.returncode != 0
    assert 'no matches for kind "ScaledObjekt"' in result.stderr


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    services = tmp_path / "services"
    apiserver("start", services)
    pids = [
        int((services / "k8s" / name).read_text()) for name in ("etcd.pid", "kube-apiserver.pid")
    ]
    assert kubectl(kubeconfig_of(services), "get", "--raw", "/readyz").stdout == "ok"
    apiserver("stop", services, timeout=120)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} is still there"
    left = [
        process.name
        for process in Path("/proc").iterdir()
        if process.name.isdigit() and str(services) in read_cmdline(process)
    ]
    assert left == []
    apiserver("stop", services, timeout=120)  # a second stop is fine
    assert not (services / "k8s" / "ports").exists()


def read_cmdline(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone meanwhile
        return ""


def test_status_says_down_when_nothing_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [REPO / "platform" / "k8s" / "apiserver.sh", "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "DTS_SERVICES_DIR": str(tmp_path)},
    )
    assert result.returncode == 3


MONITOR = REPO / "platform" / "k8s" / "monitor.sh"


def monitor(kubeconfig: Path, **env: str) -> subprocess.Popen:
    """`make monitor`'s script against the API server of `kubeconfig`, on free local ports."""
    return subprocess.Popen(
        [MONITOR],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KUBECACHEDIR": str(discovery_cache(kubeconfig)),
            "LOCAL_PROMETHEUS_PORT": str(free_port()),
            "LOCAL_GRAFANA_PORT": str(free_port()),
            **env,
        },
    )


def test_monitor_names_the_service_or_port_it_cannot_find(kube_apiserver: Path) -> None:
    namespace = "monitoring-missing"
    assert kubectl(kube_apiserver, "create", "namespace", namespace).returncode == 0
    missing = monitor(kube_apiserver, MONITORING_NAMESPACE=namespace)
    output = missing.communicate(timeout=60)[0]
    assert missing.returncode == 1
    assert f"no service {namespace}/prometheus-operated" in output
    assert "set PROMETHEUS_SERVICE" in output
    for name, port in (("prometheus-operated", "9090:9090"), ("grafana", "3000:3000")):
        created = kubectl(
            kube_apiserver, "-n", namespace, "create", "service", "clusterip", name, f"--tcp={port}"
        )
        assert created.returncode == 0, created.stderr
    wrong_port = monitor(kube_apiserver, MONITORING_NAMESPACE=namespace)
    output = wrong_port.communicate(timeout=60)[0]
    assert wrong_port.returncode == 1
    assert f"service {namespace}/grafana has no port 80: set GRAFANA_PORT" in output


def test_monitor_forwards_both_services_until_stopped(kube_apiserver: Path) -> None:
    # No kubelet runs here, so no pod answers: this shows the forwards start for the services
    # found, and that stopping the script stops them.
    namespace = "monitoring"
    assert kubectl(kube_apiserver, "create", "namespace", namespace).returncode == 0
    for name, port in (("prometheus-operated", "9090:9090"), ("grafana", "80:3000")):
        created = kubectl(
            kube_apiserver, "-n", namespace, "create", "service", "clusterip", name, f"--tcp={port}"
        )
        assert created.returncode == 0, created.stderr
    forwarding = monitor(kube_apiserver)
    assert forwarding.stdout is not None
    lines = [forwarding.stdout.readline() for _ in range(2)]
    assert "Prometheus: http://127.0.0.1:" in lines[0]
    assert "(service monitoring/prometheus-operated:9090)" in lines[0]
    assert "(service monitoring/grafana:80)" in lines[1]
    children = subprocess.run(
        ["pgrep", "-P", str(forwarding.pid), "-f", "kubectl"], capture_output=True, text=True
    ).stdout.split()
    assert len(children) == 2
    forwarding.terminate()
    assert forwarding.wait(timeout=30) == 130
    time.sleep(1)
    assert not [pid for pid in children if is_running(pid)]


def is_running(pid: str) -> bool:
    """A process that has not ended (a zombie awaiting its reaper has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
