"""Starting and stopping the processes tests talk to: a free port, a line to wait for in a log, a
stop that does not hang, and `make dev`'s process (manage.py run_standalone) with its REST API.

tests/conftest.py starts the others (celery, uvicorn) with these; backing services are
tests/backing_services/control.py's."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent


def redis_url(number: int) -> str:
    """The URL of Redis database `number` (0 to 15) of this test process's lane
    (config/settings/test.py)."""
    return f"{settings.TEST_REDIS_SERVER}/{settings.TEST_REDIS_LANE_BASE + number}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_log_line(
    log: Path, text: str, process: subprocess.Popen, timeout: float, since: int = 0
) -> None:
    """Wait until `text` appears in the log after offset `since`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace")[since:]:
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    pytest.fail(f"{process.args} did not log {text!r} within {timeout} s:\n{tail}")


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def standalone_start(
    tmp_path: Path, env: dict[str, str] | None = None, arguments: tuple[str, ...] = ()
) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """`python manage.py run_standalone` on a free port and its own SQLite file; yields its URL,
    its log and the process, and stops it at the end."""
    port = free_port()
    process_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "DTS_"))
    }
    process_env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dts.sqlite3'}",
        **(env or {}),
    }
    log = tmp_path / "standalone.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_standalone", "--port", str(port), *arguments],
            cwd=REPO,
            env=process_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log_line(log, "Uvicorn running", process, timeout=90)
        yield f"http://127.0.0.1:{port}", log, process
    finally:
        stop_process(process)


class StandaloneApi:
    """The REST API of a dts web (a standalone process's, or a stack's) as its admin (admin /
    admin), as the CLI uses it: with a bearer token."""

    def __init__(self, base: str) -> None:
        self.base = base
        created = requests.post(
            f"{base}/api/v1/tokens/",
            json={"username": "admin", "password": "admin", "name": "standalone test"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {created.json()['token']}"

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}/api/v1/{path}", timeout=10)

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.session.post(f"{self.base}/api/v1/{path}", json=body or {}, timeout=10)

    def job_id(self, name: str) -> int:
        jobs = self.get("jobs/?limit=500").json()["results"]
        (job_id,) = [job["id"] for job in jobs if job["name"] == name]
        return job_id

    def trigger(self, job_id: int, args: dict | None = None) -> str:
        body = {} if args is None else {"args": args}
        triggered = self.post(f"jobs/{job_id}/trigger/", body)
        assert triggered.status_code == 201, triggered.text
        return triggered.json()["id"]

    def wait_for_state(self, run_id: str, states: set[str], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        run = self.get(f"runs/{run_id}/").json()
        while run["state"] not in states and time.monotonic() < deadline:
            time.sleep(0.2)
            run = self.get(f"runs/{run_id}/").json()
        assert run["state"] in states, f"run {run_id} is {run['state']} after {timeout} s"
        return run
