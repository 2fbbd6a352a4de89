"""The live pages in a real headless Chromium (Debian's, driven by Playwright), against the real
web server (uvicorn), a real Celery worker, PostgreSQL and Redis. Screenshots are saved under
test-artifacts/e2e/."""

import re
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.accounts.models import Role
from apps.accounts.services import token_create
from apps.logs.documents import templates_ensure
from apps.logs.indexer import Batch, batch_index
from apps.logs.source import LineRange
from apps.runs.models import RunLogLine
from apps.runs.services.build import run_trigger
from apps.runs.states import RunState
from apps.workflows.services import workflow_create, workflow_trigger
from tests.conftest import start_celery, stop_process
from tests.e2e.conftest import ARTIFACTS, TIMEOUT_MS, Web
from tests.factories import (
    JobFactory,
    MembershipFactory,
    RunFactory,
    ScheduleFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    team = TeamFactory(name="red")
    operator = MembershipFactory(team=team, user=UserFactory(username="ops"), role=Role.OPERATOR)
    job = JobFactory(
        team=team, name="chatty", task_type="tests.live.chatty", args={"lines": 3, "seconds": 3}
    )
    return job, token_create(user=operator.user, name="e2e")[1]


@pytest.fixture
def page(browser, web, world):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{web.url}/live/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/live/$"))
    expect(page.locator("#connection")).to_have_text("Live")
    yield page
    context.close()


def trigger(web: Web, job, token: str) -> str:
    response = httpx.post(
        f"{web.url}/api/v1/jobs/{job.id}/trigger/",
        json={},
        headers={"Authorization": f"Bearer {token}", "Origin": web.url},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def run_row(page: Page, run_id: str):
    return page.locator(f'#runs-body tr[data-run="{run_id}"]')


def test_the_dashboard_shows_a_run_go_from_queued_to_succeeded_without_reloading(page, web, world):
    job, token = world
    page.evaluate("window.notReloaded = true")

    run_id = trigger(web, job, token)

    state = run_row(page, run_id).locator(".state")
    expect(state).to_have_text(re.compile("queued|running"))
    expect(state).to_have_text("running")
    page.screenshot(path=ARTIFACTS / "dashboard-running.png", full_page=True)
    expect(state).to_have_text("succeeded")
    expect(page.locator("#count-succeeded")).to_have_text("1")
    page.screenshot(path=ARTIFACTS / "dashboard-succeeded.png", full_page=True)
    assert page.evaluate("window.notReloaded") is True


def test_the_run_page_streams_the_log_lines_as_they_are_written(page, web, world):
    job, token = world
    run_id = trigger(web, job, token)

    page.goto(f"{web.url}/live/runs/{run_id}/")

    expect(page.locator("#connection")).to_have_text("Live")
    expect(page.locator("#log li")).to_have_count(3)
    expect(page.locator("#log")).to_contain_text("line 3 of 3")
    expect(page.locator("#run-state")).to_have_text("succeeded")
    expect(page.locator("#attempts-body tr")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "run-page.png", full_page=True)


def test_a_page_reconnects_after_the_server_goes_away_and_catches_up(page, web, world):
    job, _ = world

    web.stop()
    expect(page.locator("#connection")).to_contain_text("Disconnected")
    page.screenshot(path=ARTIFACTS / "dashboard-disconnected.png", full_page=True)
    run = run_trigger(job=job)  # while the page is away: the worker still runs it
    web.start()

    expect(page.locator("#connection")).to_have_text("Live")
    expect(run_row(page, str(run.id)).locator(".state")).to_have_text("succeeded")
    page.screenshot(path=ARTIFACTS / "dashboard-caught-up.png", full_page=True)


def test_signing_out_in_another_tab_stops_the_page_instead_of_reconnecting(page, web, world):
    other_tab = page.context.new_page()
    other_tab.goto(f"{web.url}/live/")

    other_tab.click(".signout button")

    expect(page.locator("#connection")).to_have_text("Signed out: reload the page")
    page.wait_for_timeout(2000)  # a page that retried would show "Connecting"/"Live" again
    expect(page.locator("#connection")).to_have_text("Signed out: reload the page")
    page.screenshot(path=ARTIFACTS / "dashboard-signed-out.png", full_page=True)


# Pixels of the chart's canvas in a colour (runs_chart.js's COLOURS), opaque: the bars, not their
# anti-aliased edges.
COUNT_PIXELS = """([r, g, b]) => {
  const canvas = document.querySelector("#per-minute-chart canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [red, green, blue, alpha] = pixels.slice(i, i + 4);
    if (red === r && green === g && blue === b && alpha === 255) count++;
  }
  return count;
}"""
GREEN = [0x1A, 0x7F, 0x37]


def history(team) -> None:
    """A job that ran over the last hour, its latest runs failed: the pictures have colours."""
    nightly = JobFactory(team=team, name="nightly", task_type="dts.noop", args={})
    states = [RunState.SUCCEEDED] * 6 + [RunState.TIMED_OUT, RunState.CANCELLED, RunState.LOST]
    states += [RunState.SUCCEEDED] * 6 + [RunState.FAILED] * 3
    now = timezone.now()
    for index, state in enumerate(states):
        RunFactory(job=nightly, state=state, finished_at=now - timedelta(minutes=55 - 3 * index))


def test_the_chart_of_runs_per_minute_counts_a_run_as_it_ends(page, web, world):
    job, token = world
    chart = page.locator("#per-minute-chart canvas")
    expect(chart).to_be_visible()
    expect(page.locator('#per-minute-totals [data-outcome="succeeded"]')).to_have_text(
        "succeeded 0"
    )
    assert chart.bounding_box()["width"] > 300
    assert page.evaluate(COUNT_PIXELS, GREEN) == 0
    page.evaluate("window.notReloaded = true")

    run_id = trigger(web, job, token)

    expect(run_row(page, run_id).locator(".state")).to_have_text("succeeded")
    expect(page.locator('#per-minute-totals [data-outcome="succeeded"]')).to_have_text(
        "succeeded 1"
    )
    expect(page.locator("#per-minute-chart")).to_have_attribute("data-total", "1")
    page.wait_for_timeout(100)  # the bar is drawn on the next frame
    assert page.evaluate(COUNT_PIXELS, GREEN) > 0
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=ARTIFACTS / "dashboard-chart.png", full_page=True)


def test_the_jobs_grid_shows_a_new_run_as_a_cell_that_links_to_it(page, web, world):
    job, token = world
    history(job.team)
    weekly = JobFactory(team=job.team, name="weekly", task_type="dts.noop", args={})
    cron = {"kind": "cron", "cron_expression": "30 2 * * 1", "interval_seconds": None}
    ScheduleFactory(job=weekly, timezone="Europe/Paris", **cron)
    ScheduleFactory(job=weekly, interval_seconds=600, paused=True)
    page.goto(f"{web.url}/live/")
    expect(page.locator('#per-minute-totals [data-outcome="failed"]')).to_have_text("failed 3")
    expect(page.locator("#count-failed")).to_have_text("3")
    page.screenshot(path=ARTIFACTS / "dashboard-chart-history.png", full_page=True)

    page.click("nav >> text=Jobs")
    page.wait_for_url(re.compile(r"/live/jobs/$"))
    expect(page.locator("#connection")).to_have_text("Live")
    nightly = page.locator("#jobs-body tr", has_text="nightly")
    expect(nightly.locator(".health")).to_have_text("failing")
    expect(page.locator("#jobs-body tr", has_text="weekly").locator(".schedules li")).to_have_text(
        ["At 02:30, only on Monday, Europe/Paris", "Every 10 minutes (paused)"]
    )
    expect(nightly.locator(".cell")).to_have_count(18)
    chatty = page.locator(f'#jobs-body tr[data-job="{job.id}"]')
    expect(chatty.locator(".health")).to_have_text("ok")
    expect(chatty.locator(".cell")).to_have_count(0)
    page.evaluate("window.notReloaded = true")

    run_id = trigger(web, job, token)

    cell = chatty.locator(f'.cell[data-run="{run_id}"]')
    expect(cell).to_have_attribute("data-state", re.compile("queued|running"))
    expect(cell).to_have_attribute("data-state", "succeeded")
    expect(chatty.locator(".cell")).to_have_count(1)
    expect(chatty.locator("td", has_text="ago")).to_have_count(1)  # its last success, reloaded
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=ARTIFACTS / "jobs-grid.png", full_page=True)

    cell.click()

    page.wait_for_url(re.compile(f"/live/runs/{run_id}/$"))
    expect(page.locator("#run-state")).to_have_text("succeeded")


def test_the_log_search_finds_the_teams_lines_highlighted_and_links_to_the_run(
    es, page, web, world
):
    job, _ = world
    other = JobFactory(team=TeamFactory(name="blue"), name="payroll")
    runs = {owner: RunFactory(job=owner, state=RunState.FAILED) for owner in (job, other)}
    lines = {
        job: ["connecting to <the> warehouse", "Timeout while reading orders", "retry done"],
        other: ["blue secret: timeout on payroll"],
    }
    for owner, messages in lines.items():
        RunLogLine.objects.bulk_create(
            RunLogLine(run=runs[owner], attempt=1, sequence=number, logged_at=timezone.now(),
                       level="ERROR" if "imeout" in message else "INFO", logger="loader",
                       message=message)
            for number, message in enumerate(messages, start=1)
        )  # fmt: skip
    templates_ensure(es)
    ranges = [LineRange(runs[owner].id, 1, len(lines[owner])) for owner in lines]
    batch_index(es, Batch(ranges=ranges))
    es.indices.refresh(index=f"{settings.DTS_LOG_INDEX_PREFIX}-*")

    page.fill("#log-search input[name=q]", "timeout")
    page.click("#log-search button[type=submit]")

    results = page.locator("#log-search-results li")
    expect(results).to_have_count(1)
    expect(results.locator("mark")).to_have_text("Timeout")
    expect(page.locator("#log-search-status")).to_have_text("1 line, searched in Elasticsearch")
    expect(page.locator("#log-search-results")).not_to_contain_text("secret")
    page.screenshot(path=ARTIFACTS / "dashboard-log-search.png", full_page=True)

    page.fill("#log-search input[name=q]", "warehouse")
    page.click("#log-search button[type=submit]")
    expect(results.locator(".message")).to_have_text("connecting to <the> warehouse")
    results.locator("a").click()

    page.wait_for_url(re.compile(f"/live/runs/{runs[job].id}/$"))


@pytest.fixture
def scheduler(tmp_path):
    """A scheduler on the test database, whose advancer moves workflow runs on."""
    process = start_celery(
        "beat",
        *("--scheduler", "workers.scheduler:DatabaseScheduler"),
        *("--pidfile", str(tmp_path / "beat.pid")),
        log=tmp_path / "beat.log",
    )
    yield process
    stop_process(process)


def test_a_workflow_runs_graph_colours_each_step_as_it_moves_on(page, web, world, scheduler):
    job, _ = world
    slow = JobFactory(team=job.team, name="slow", task_type="dts.sleep", args={"seconds": 4})
    quick = JobFactory(team=job.team, name="quick", task_type="dts.noop", args={})
    steps = [
        {"name": "extract", "job": slow},
        {"name": "left", "job": quick, "depends_on": ["extract"]},
        {"name": "right", "job": quick, "depends_on": ["extract"]},
        {"name": "load", "job": quick, "depends_on": ["left", "right"]},
        {"name": "alert", "job": quick, "depends_on": ["load"], "condition": "on_failure"},
    ]
    run = workflow_trigger(workflow=workflow_create(team=job.team, name="etl", steps=steps))

    page.goto(f"{web.url}/live/workflow-runs/{run.id}/")

    expect(page.locator("#connection")).to_have_text("Live")
    extract = page.locator('[data-step="extract"]')
    expect(extract).to_have_attribute("data-state", "running")
    expect(page.locator('[data-step="load"]')).to_have_attribute("data-state", "pending")
    page.screenshot(path=ARTIFACTS / "workflow-run-running.png", full_page=True)
    page.evaluate("window.notReloaded = true")
    expect(page.locator('[data-step="load"]')).to_have_attribute("data-state", "succeeded")
    expect(page.locator('[data-step="alert"]')).to_have_attribute("data-state", "skipped")
    expect(page.locator("#workflow-run-state")).to_have_text("succeeded")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=ARTIFACTS / "workflow-run-succeeded.png", full_page=True)

    extract.locator("a").click()

    page.wait_for_url(re.compile(f"/live/runs/{run.steps.get(name='extract').run_id}/$"))
