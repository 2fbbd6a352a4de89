"""The fixtures of the deployment checks: the private Docker engine (platform/docker/dockerd.sh) and
the image build.sh makes; a real Kubernetes API server (platform/k8s/apiserver.sh) and the CRDs
and their kubeconform schemas (platform/tools/crd-schemas.sh).

Each builds what it misses into its cache (kube-apiserver takes minutes cold); a missing tool
fails the tests that need it rather than skipping them."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.docker import DOCKER_DIR
from tests.deploy.kube import COLD_BUILD_TIMEOUT, CRD_SCHEMAS, apiserver, kubeconfig_of
from tests.deploy.tools import TOOLS
from tests.processes import REPO


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


@pytest.fixture(scope="session")
def docker_env() -> dict[str, str]:
    """This environment with DOCKER_HOST set to the private engine, which is started if down."""
    subprocess.run([DOCKER_DIR / "dockerd.sh", "start"], check=True, timeout=300)
    exported = subprocess.run(
        [DOCKER_DIR / "dockerd.sh", "env"], check=True, capture_output=True, text=True
    ).stdout
    docker_host = exported.strip().removeprefix("export DOCKER_HOST=")
    return os.environ | {"DOCKER_HOST": docker_host}


@pytest.fixture(scope="session")
def image(docker_env: dict[str, str]) -> str:
    """The image build.sh makes from this checkout, by its commit tag."""
    subprocess.run(
        [DOCKER_DIR / "build.sh"],
        env=docker_env | {"DTS_BUILD_PYTHON": sys.executable},
        cwd=REPO,
        check=True,
        timeout=1200,
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return f"dts:{commit}"


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """What platform/tools/install.sh prints for each tool it builds by default (its binary, or
    where to point the caller); a warm cache answers at once, a cold one builds them (minutes)."""
    result = subprocess.run(
        [TOOLS / "install.sh"], capture_output=True, text=True, timeout=1700, check=False
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())
