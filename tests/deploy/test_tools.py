"""The deployment tools that platform/tools/install.sh builds into the cache: each answers the
version pinned in platform/tools/lib.sh, helm runs the helm-unittest plugin, and kubeconform with
the stand-alone Kubernetes schemas accepts a valid Deployment and refuses broken ones.

A cold cache builds everything from the Go module proxy and PyPI (several minutes); a warm one
costs a version check per tool."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.tools import TOOLS, kubeconform, pinned, run

# Cold: helm, helm-unittest and compose are built from source, one after the other.
pytestmark = pytest.mark.timeout(1800)

VALID_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
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
          ports: [{containerPort: 8000}]
"""

UNIT_TEST = """\
suite: deployment
templates: [deployment.yaml]
tests:
  - it: runs the replicas the values ask for
    set: {replicaCount: 3}
    asserts:
      - isKind: {of: Deployment}
      - equal: {path: spec.replicas, value: 3}
"""


@pytest.fixture(scope="module")
def chart(tools: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart `helm create` makes, with one helm-unittest suite."""
    folder = tmp_path_factory.mktemp("chart")
    created = run(tools["helm"], "create", folder / "demo")
    assert created.returncode == 0, created.stderr
    (folder / "demo" / "tests").mkdir()
    (folder / "demo" / "tests" / "deployment_test.yaml").write_text(UNIT_TEST)
    return folder / "demo"


def test_install_prints_every_tool_and_a_second_run_is_quick(tools: dict[str, str]) -> None:
    assert set(tools) == {
        "helm",
        "helm-unittest",
        "kubeconform",
        "kubernetes-schemas",
        "controller-gen",
        "crd-schemas",
        "compose",
    }
    again = run(TOOLS / "install.sh")
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""  # nothing was built
    assert dict(line.split(" ", 1) for line in again.stdout.splitlines()) == tools


def test_helm_answers_its_pinned_version(tools: dict[str, str]) -> None:
    result = run(tools["helm"], "version", "--template", "{{.Version}}")
    assert result.stdout == pinned("HELM")


def test_helm_runs_the_unittest_plugin_on_a_chart(tools: dict[str, str], chart: Path) -> None:
    plugins = {"HELM_PLUGINS": tools["helm-unittest"]}
    listed = run(tools["helm"], "plugin", "list", env=plugins)
    assert re.search(rf"^unittest\s+{re.escape(pinned('HELM_UNITTEST'))}\s", listed.stdout, re.M)
    tested = run(tools["helm"], "unittest", chart, env=plugins)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Tests:       1 passed, 1 total" in tested.stdout


def test_helm_unittest_fails_on_a_wrong_expectation(
    tools: dict[str, str], chart: Path, tmp_path: Path
) -> None:
    wrong = shutil.copytree(chart, tmp_path / "demo")
    suite = wrong / "tests" / "deployment_test.yaml"
    suite.write_text(UNIT_TEST.replace("value: 3", "value: 4"))
    tested = run(tools["helm"], "unittest", wrong, env={"HELM_PLUGINS": tools["helm-unittest"]})
    assert tested.returncode != 0
    assert "1 failed" in tested.stdout


def test_kubeconform_answers_its_pinned_version(tools: dict[str, str]) -> None:
    assert run(tools["kubeconform"], "-v").stdout.strip() == pinned("KUBECONFORM")


def test_kubeconform_accepts_a_valid_deployment(tools: dict[str, str], tmp_path: Path) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(VALID_DEPLOYMENT)
    result = kubeconform(tools, manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid: 1, Invalid: 0, Errors: 0" in result.stdout


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (("replicas: 2", "replicas: two"), "replicas"),
        (("replicas: 2", "replicas: 2\n  replica: 2"), "replica"),  # an unknown field
        (("containerPort: 8000", "containerPort: 8000, protocol: TCP, hostPorts: 1"), "hostPorts"),
        (("kind: Deployment", "kind: Deploymant"), "Deploymant"),  # no schema is an error
    ],
)
def test_kubeconform_refuses_a_broken_deployment(
    tools: dict[str, str], tmp_path: Path, change: tuple[str, str], complaint: str
) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(VALID_DEPLOYMENT.replace(*change))
    result = kubeconform(tools, manifest)
    assert result.returncode != 0
    assert complaint in result.stdout


def test_kubeconform_accepts_what_helm_renders(
    tools: dict[str, str], chart: Path, tmp_path: Path
) -> None:
    rendered = run(tools["helm"], "template", "demo", chart)
    assert rendered.returncode == 0, rendered.stderr
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered.stdout)
    result = kubeconform(tools, manifest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kube_apiserver_and_etcd_answer_their_versions() -> None:
    # Not in install.sh's default set: only the server-side checks need them (and the API server
    # takes minutes to build cold).
    result = subprocess.run(
        [TOOLS / "install.sh", "kube-apiserver", "etcd"],
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    servers = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    version = run(servers["kube-apiserver"], "--version").stdout.strip()
    assert version == f"Kubernetes {pinned('KUBERNETES')}"
    assert run(servers["etcd"], "--version").stdout.startswith("etcd Version: 3.")


def test_docker_finds_the_compose_plugin(tools: dict[str, str]) -> None:
    plugin = Path(tools["compose"])
    assert run(plugin, "version", "--short").stdout.strip() == pinned("COMPOSE").removeprefix("v")
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH to load the plugin")
    # The plugin's folder is cli-plugins/ inside a folder that works as a Docker config.
    result = run("docker", "compose", "version", env={"DOCKER_CONFIG": str(plugin.parent.parent)})
    assert result.returncode == 0, result.stderr
    assert pinned("COMPOSE") in result.stdout
