import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import redis
from django.conf import settings

from tests.conftest import REPO, database_url, stop_process

# A broker database of its own, which no worker reads: the runs the CLI triggers stay queued.
BROKER_URL = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/6"


@pytest.fixture(scope="module")
def api_server(django_db_setup, tmp_path_factory):
    """The production ASGI server (uvicorn) on the test database, for this module's tests."""
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("api") / "uvicorn.log"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
    }
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            stop_process(process)
            pytest.fail(f"uvicorn did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield url
    stop_process(process)
    broker.flushdb()
