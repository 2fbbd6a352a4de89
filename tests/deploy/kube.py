"""A real Kubernetes API server for the deployment checks (platform/k8s/apiserver.sh) and kubectl
against it."""

import os
import subprocess
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


def discovery_cache(kubeconfig: Path) -> Path:
    """Where kubectl and helm keep the server's discovery: beside the kubeconfig, as apiserver.sh
    keeps it, rather than a folder per (random) port in ~/.kube/cache."""
    return kubeconfig.parent / "kubectl-cache"


def kubectl(
    kubeconfig: Path, *arguments: str | Path, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """kubectl against the API server of `kubeconfig`; its result, whatever the exit code."""
    return subprocess.run(
        [
            *("kubectl", "--kubeconfig", str(kubeconfig)),
            *("--cache-dir", str(discovery_cache(kubeconfig))),
            *map(str, arguments),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
