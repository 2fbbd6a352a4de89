import os
import subprocess
import sys

import pytest

from tests.deploy.docker import DOCKER_DIR
from tests.processes import REPO


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
