"""`make dev`'s process: the admin answers and "Run now" completes a run, all in one process."""

import re
import signal
import sqlite3
import subprocess
import time
import uuid
from contextlib import closing

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.processes import StandaloneApi, standalone_start
from workers.scheduler import SWEEP_EVERY_SECONDS


@pytest.fixture
def standalone(tmp_path):
    yield from standalone_start(tmp_path)


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
    base, log, _ = standalone
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
    base, _, _ = standalone
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


# A cancelled run's task gets this long to stop before the run is ended without it.
CANCEL_GRACE_SECONDS = 2
# A run its worker has not reported executing for this long is declared lost.
HEARTBEAT_TIMEOUT_SECONDS = 3


@pytest.fixture
def standalone_process(tmp_path):
    yield from standalone_start(
        tmp_path,
        env={
            "DTS_CANCEL_GRACE_SECONDS": str(CANCEL_GRACE_SECONDS),
            "DTS_WORKER_HEARTBEAT_SECONDS": "1",
            "DTS_WORKER_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
            # tests.live.chatty: a task that sleeps without ever checking for a cancel.
            "DTS_TASK_MODULES": "tests.workers.operator_tasks",
        },
    )


def assert_still_serving(base: str, process: subprocess.Popen, api: StandaloneApi) -> None:
    assert process.poll() is None, f"the standalone process exited with {process.returncode}"
    assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
    run_id = api.trigger(api.job_id("demo: do nothing"))
    assert api.wait_for_state(run_id, {"succeeded", "failed"}, timeout=30)["state"] == "succeeded"


def test_cancelling_a_running_sleep_ends_it_cancelled_and_the_platform_serves_on(
    standalone_process,
):
    base, _, process = standalone_process
    api = StandaloneApi(base)
    run_id = api.trigger(api.job_id("demo: take five seconds"), {"seconds": 600})
    api.wait_for_state(run_id, {"running"}, timeout=30)

    cancelled = api.post(f"runs/{run_id}/cancel/")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelling"
    run = api.wait_for_state(run_id, {"cancelled", "failed", "succeeded"}, timeout=60)
    assert run["state"] == "cancelled"
    # Stopped by its own cancel check, not ended without it once the grace period was over.
    assert "did not stop" not in (run["error"] or ""), run["error"]
    assert_still_serving(base, process, api)


def test_a_task_that_ignores_its_cancel_is_ended_after_the_grace_period_and_says_so(
    standalone_process,
):
    base, _, process = standalone_process
    api = StandaloneApi(base)
    created = api.post(
        "jobs/",
        {
            "team": "demo",
            "name": "sleeps without checking",
            "task_type": "tests.live.chatty",
            "args": {"lines": 1, "seconds": 8},
        },
    )
    assert created.status_code == 201, created.text
    run_id = api.trigger(created.json()["id"])
    api.wait_for_state(run_id, {"running"}, timeout=30)

    assert api.post(f"runs/{run_id}/cancel/").status_code == 200
    run = api.wait_for_state(
        run_id, {"cancelled", "failed", "succeeded"}, timeout=CANCEL_GRACE_SECONDS + 10
    )

    assert run["state"] == "cancelled"
    assert "did not stop" in run["error"]
    assert "make dev" in run["error"]
    assert_still_serving(base, process, api)
    # The task's own end, when it comes, changes nothing.
    time.sleep(8)
    assert api.get(f"runs/{run_id}/").json() == run


def test_stopping_while_a_run_executes_ends_in_bounded_time_and_records_the_run_lost(tmp_path):
    started = standalone_start(tmp_path, arguments=("--shutdown-wait", "1"))
    base, log, process = next(started)
    try:
        api = StandaloneApi(base)
        run_id = api.trigger(api.job_id("demo: take five seconds"), {"seconds": 600})
        api.wait_for_state(run_id, {"running"}, timeout=30)

        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=30)
    finally:
        started.close()

    assert process.returncode == 0
    assert f"recorded lost: {run_id}" in log.read_text()
    with closing(sqlite3.connect(tmp_path / "dts.sqlite3")) as database:
        state, error = database.execute(
            "SELECT state, error FROM runs_run WHERE id = ?", [uuid.UUID(run_id).hex]
        ).fetchone()
    assert state == "lost"
    assert "make dev stopped while this run executed" in error


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("concurrency", 0, "--concurrency must be at least 1."),
        ("shutdown_wait", -1.0, "--shutdown-wait must be 0 or more seconds."),
        ("shutdown_wait", float("nan"), "--shutdown-wait must be 0 or more seconds."),
    ],
)
def test_a_bad_option_is_refused_naming_it_before_anything_starts(option, value, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("run_standalone", **{option: value})


def test_a_sleep_past_its_jobs_soft_time_limit_ends_timed_out(standalone_process):
    base, _, process = standalone_process
    api = StandaloneApi(base)
    created = api.post(
        "jobs/",
        {
            "team": "demo",
            "name": "sleeps past its limit",
            "task_type": "dts.sleep",
            "args": {"seconds": 600},
            "soft_timeout_seconds": 2,
        },
    )
    assert created.status_code == 201, created.text

    run_id = api.trigger(created.json()["id"])
    run = api.wait_for_state(run_id, {"succeeded", "failed", "timed_out", "lost"}, timeout=30)

    assert run["state"] == "timed_out"
    assert "SoftTimeLimitExceeded" in run["error"]
    assert_still_serving(base, process, api)


def test_a_run_longer_than_the_heartbeat_timeout_is_not_declared_lost(standalone_process):
    base, _, _ = standalone_process
    api = StandaloneApi(base)
    # Long enough for a sweep of the reaper (every SWEEP_EVERY_SECONDS) to come after the timeout.
    seconds = HEARTBEAT_TIMEOUT_SECONDS + SWEEP_EVERY_SECONDS + 3

    run_id = api.trigger(api.job_id("demo: take five seconds"), {"seconds": seconds})
    run = api.wait_for_state(run_id, {"succeeded", "failed", "lost"}, timeout=seconds + 30)

    assert run["state"] == "succeeded", run["error"]
