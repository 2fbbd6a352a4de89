"""`make dev`'s process: the admin answers and "Run now" completes a run, all in one process."""

import os
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import REPO, stop_process, wait_for_log_line


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def standalone(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dts.sqlite3'}",
    }
    log = tmp_path / "standalone.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_standalone", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log_line(log, "Uvicorn running", process, timeout=90)
        yield f"http://127.0.0.1:{port}", log
    finally:
        stop_process(process)


def csrf_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_standalone_serves_the_admin_and_run_now_completes_a_run(standalone):
    base, log = standalone
    browser = requests.Session()
    login = browser.get(f"{base}/admin/login/", timeout=10)
    assert login.status_code == 200
    assert "admin / admin" in log.read_text()

    browser.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": "admin",
            "csrfmiddlewaretoken": csrf_token(login.text),
        },
        timeout=10,
    )
    jobs = browser.get(f"{base}/admin/jobs/job/", timeout=10).text
    job_id = re.search(r'href="/admin/jobs/job/(\d+)/change/[^"]*">demo: say hello<', jobs).group(1)
    job_page = browser.get(f"{base}/admin/jobs/job/{job_id}/change/", timeout=10)
    run_page = browser.post(
        f"{base}/admin/jobs/job/{job_id}/run-now/",
        data={"csrfmiddlewaretoken": csrf_token(job_page.text)},
        timeout=10,
    )
    assert "/admin/runs/run/" in run_page.url

    deadline = time.monotonic() + 30
    while "Succeeded" not in run_page.text and time.monotonic() < deadline:
        time.sleep(0.5)
        run_page = browser.get(run_page.url, timeout=10)
    assert "Succeeded" in run_page.text
    assert "hello from dts" in run_page.text
