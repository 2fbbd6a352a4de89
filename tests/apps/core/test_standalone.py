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


def log_in(base: str) -> requests.Session:
    browser = requests.Session()
    login = browser.get(f"{base}/admin/login/", timeout=10)
    assert login.status_code == 200
    browser.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": "admin",
            "csrfmiddlewaretoken": csrf_token(login.text),
        },
        timeout=10,
    )
    return browser


def demo_job_id(browser: requests.Session, base: str, name: str) -> str:
    jobs = browser.get(f"{base}/admin/jobs/job/", timeout=10).text
    return re.search(rf'href="/admin/jobs/job/(\d+)/change/[^"]*">{name}<', jobs).group(1)


def wait_for_page_text(browser: requests.Session, url: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    page = browser.get(url, timeout=10).text
    while text not in page and time.monotonic() < deadline:
        time.sleep(0.5)
        page = browser.get(url, timeout=10).text
    return page


def test_standalone_serves_the_admin_and_run_now_completes_a_run(standalone):
    base, log = standalone
    browser = log_in(base)
    assert "admin / admin" in log.read_text()
    job_id = demo_job_id(browser, base, "demo: say hello")
    job_page = browser.get(f"{base}/admin/jobs/job/{job_id}/change/", timeout=10)

    run_page = browser.post(
        f"{base}/admin/jobs/job/{job_id}/run-now/",
        data={"csrfmiddlewaretoken": csrf_token(job_page.text)},
        timeout=10,
    )

    assert "/live/runs/" in run_page.url  # the run's live page
    run_id = run_page.url.rstrip("/").rsplit("/", 1)[1]
    admin_run = f"{base}/admin/runs/run/{run_id}/change/"
    page = wait_for_page_text(browser, admin_run, "Succeeded", timeout=30)
    assert "hello from dts" in page


def test_standalone_scheduler_fires_a_schedule_added_in_the_admin(standalone):
    base, _ = standalone
    browser = log_in(base)
    job_id = demo_job_id(browser, base, "demo: do nothing")
    add_page = browser.get(f"{base}/admin/schedules/schedule/add/", timeout=10)

    created = browser.post(
        f"{base}/admin/schedules/schedule/add/",
        data={
            "csrfmiddlewaretoken": csrf_token(add_page.text),
            "job": job_id,
            "kind": "interval",
            "interval_seconds": "1",
            "timezone": "UTC",
            "jitter_seconds": "0",
            "misfire_policy": "skip",
            "catch_up_window_seconds": "3600",
            "catch_up_max_fires": "10",
            "enabled": "on",
        },
        timeout=10,
    )

    assert created.url.endswith("/admin/schedules/schedule/")
    runs = (
        f"{base}/admin/runs/run/"
        f"?trigger__exact=schedule&job__id__exact={job_id}&state__exact=succeeded"
    )
    assert "demo: do nothing" in wait_for_page_text(browser, runs, "demo: do nothing", timeout=30)
