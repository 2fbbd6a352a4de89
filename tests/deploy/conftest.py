"""The Kubernetes side of the deployment checks: a real API server (platform/k8s/apiserver.sh) and
the CRDs and their kubeconform schemas (platform/tools/crd-schemas.sh).

Both build what they miss into the tools cache (kube-apiserver takes minutes cold); a missing tool
fails the tests that need it rather than skipping them."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import REPO

APISERVER = REPO / "platform" / "k8s" / "apiserver.sh"
CRD_SCHEMAS = REPO / "platform" / "tools" / "crd-schemas.sh"
COLD_BUILD_TIMEOUT = 1700  # seconds: kube-apiserver from source on a cold cache


def apiserver(command: str, services: Path, timeout: float = COLD_BUILD_TIMEOUT) -> str:
    """Run `apiserver.sh COMMAND` for the instance in SERVICES; its stdout, or fail the test."""
    result = subprocess.run(
        [APISERVER, command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "DTS_SERVICES_DIR": str(services)},
    )
    if result.returncode != 0:
        pytest.fail(f"apiserver.sh {command} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def kubeconfig_of(services: Path) -> Path:
    """The kubeconfig `apiserver.sh env` names for the instance in SERVICES."""
    line = apiserver("env", services, timeout=30).strip()
    assert line.startswith("export KUBECONFIG="), line
    return Path(line.removeprefix("export KUBECONFIG="))


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private API server with the CRDs installed (its own DTS_SERVICES_DIR, so a developer's
    instance in the clone's .services is left alone); yields its kubeconfig, stops it at the end."""
    services = tmp_path_factory.mktemp("services")
    try:
        apiserver("start", services)
        yield kubeconfig_of(services)
    finally:
        apiserver("stop", services, timeout=120)


@pytest.fixture(scope="session")
def crd_schemas() -> Path:
    """The folder crd-schemas.sh prints: crds/*.yaml and <group>/<kind>_<version>.json."""
    result = subprocess.run(
        [CRD_SCHEMAS], capture_output=True, text=True, timeout=COLD_BUILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"crd-schemas.sh failed:\n{result.stderr}")
    return Path(result.stdout.strip())
