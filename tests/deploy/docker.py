"""What the deployment tests share: the private Docker engine (platform/docker/dockerd.sh), a
docker command that fails the test with its error, databases of a test's own on the PostgreSQL of
`make services`, and the removal of a test's indices from its Elasticsearch."""

import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg2
import pytest

from tests.processes import REPO

DOCKER_DIR = REPO / "platform" / "docker"
SERVER_DATABASE_URL = "postgres://dts:dts@127.0.0.1:55432/dts"
REDIS = "redis://127.0.0.1:56379"
ELASTICSEARCH = "http://127.0.0.1:59200"


def docker(
    env: dict[str, str], *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A new, empty database `name` (dropped first if a killed run left it); its URL. Dropped at
    the end, whoever is still connected."""
    server = psycopg2.connect(SERVER_DATABASE_URL)
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with server.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.close()


def indices_remove(prefix: str) -> None:
    """Delete the log indices and index templates of the prefix `prefix` (DTS_LOG_INDEX_PREFIX)
    from the Elasticsearch of `make services`. While it is away (a fault test elsewhere may stop
    it) they are left, with a warning: the test's outcome does not depend on them."""
    # One request each: a template pattern that matches none fails the whole request.
    for path in (
        f"{prefix}-*",
        f"_index_template/{prefix}-logs-v*",
        f"_index_template/{prefix}-runs-v*",
    ):
        try:
            httpx.delete(f"{ELASTICSEARCH}/{path}", timeout=30)
        except httpx.TransportError as problem:
            warnings.warn(f"{path} left in Elasticsearch: {problem}", stacklevel=2)
