"""/api/v1/logs/ and /api/v1/runs/?q= against the real Elasticsearch, and on PostgreSQL without
one: lines and runs of the user's teams only (no line, count or highlight of another team),
highlights, stable paging by cursor, a 400 naming the parameter for a bad query, and a 503 while
Elasticsearch cannot be reached (the rest of the API answering on)."""

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from apps.logs.documents import templates_ensure
from apps.logs.indexer import Batch, batch_index
from apps.logs.source import LineRange
from apps.runs.models import Run, RunLogLine
from tests.processes import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

START = datetime(2026, 11, 30, 12, tzinfo=UTC)
RED_LINES = [
    "connecting to the warehouse",
    "timeout <reading> the orders table",
    "retrying after a timeout",
    "loaded 120 rows",
]
BLUE_LINES = ["blue secret: timeout on the payroll", "payroll exported"]


@pytest.fixture(params=["elasticsearch", "database"])
def backend(request, world, settings) -> str:
    """The world's runs with errors and log lines, indexed into this test's indices, or no
    Elasticsearch."""
    world.failed_run.error = "TimeoutError: the warehouse did not answer"
    world.blue_run.error = "TimeoutError: the payroll service did not answer"
    for minutes, run in enumerate((world.failed_run, world.blue_run)):
        run.save()
        Run.objects.filter(id=run.id).update(created_at=START + timedelta(minutes=minutes))
    for run, messages in ((world.failed_run, RED_LINES), (world.blue_run, BLUE_LINES)):
        RunLogLine.objects.bulk_create(
            RunLogLine(
                run=run,
                attempt=1,
                sequence=number,
                logged_at=START + timedelta(seconds=number),
                level="ERROR" if "timeout" in message else "INFO",
                logger="loader",
                message=message,
            )
            for number, message in enumerate(messages, start=1)
        )
    if request.param == "elasticsearch":
        client: Elasticsearch = request.getfixturevalue("es")
        templates_ensure(client)
        ranges = [LineRange(world.failed_run.id, 1, 4), LineRange(world.blue_run.id, 1, 2)]
        run_ids = {world.queued_run.id, world.failed_run.id, world.blue_run.id}
        batch_index(client, Batch(ranges=ranges, run_ids=run_ids))
        client.indices.refresh(index=f"{settings.DTS_LOG_INDEX_PREFIX}-*")
    else:
        settings.ELASTICSEARCH_URL = ""
    return request.param


def search(client, **params) -> dict:
    response = client.get("/api/v1/logs/", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("actor", ["viewer", "other_team", "superuser"])
def test_a_search_sees_only_the_users_teams(backend, client_as, actor):
    found = search(client_as(actor), q="timeout")

    messages = {line["message"] for line in found["results"]}
    expected = {
        "viewer": {RED_LINES[1], RED_LINES[2]},
        "other_team": {BLUE_LINES[0]},
        "superuser": {RED_LINES[1], RED_LINES[2], BLUE_LINES[0]},
    }[actor]
    assert messages == expected
    assert found["total"] == len(expected)
    assert found["backend"] == backend
    highlights = " ".join(line["highlight"] for line in found["results"])
    assert ("secret" in highlights) == (actor != "viewer")


def test_a_word_only_another_team_logged_finds_nothing_not_even_a_count(backend, client_as):
    found = search(client_as("viewer"), q="payroll")

    assert (found["total"], found["results"], found["next"]) == (0, [], None)


def test_a_line_has_its_job_run_and_highlight(backend, client_as, world):
    found = search(client_as("viewer"), q="orders")

    (line,) = found["results"]
    assert line | {"logged_at": None} == {
        "run": str(world.failed_run.id),
        "attempt": 1,
        "sequence": 2,
        "logged_at": None,
        "level": "ERROR",
        "logger": "loader",
        "message": "timeout <reading> the orders table",
        "job": world.job.id,
        "job_name": "red job",
        "team": world.red.id,
        "task_type": "dts.noop",
        "queue": world.failed_run.queue,
        "worker": world.failed_run.worker,
        "highlight": "timeout &lt;reading&gt; the <mark>orders</mark> table",
    }


def test_filters_narrow_the_lines(backend, client_as, world):
    viewer = client_as("viewer")
    assert search(viewer, level="ERROR")["total"] == 2
    assert search(viewer, run=str(world.failed_run.id))["total"] == 4
    assert search(viewer, job=world.blue_job.id)["total"] == 0  # not the viewer's team
    since, until = START + timedelta(seconds=2), START + timedelta(seconds=4)
    window = search(viewer, since=since.isoformat(), until=until.isoformat())
    assert [line["sequence"] for line in window["results"]] == [3, 2]


def test_pages_follow_each_other_without_gaps_or_repeats(backend, client_as):
    viewer = client_as("viewer")
    seen, page = [], search(viewer, limit=1)
    while True:
        seen += [line["sequence"] for line in page["results"]]
        if page["next"] is None:
            break
        page = viewer.get(page["next"]).json()

    assert seen == [4, 3, 2, 1]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"q": "x" * 201}, "q", "Ensure this field has no more than 200 characters."),
        ({"q": " ".join(["w"] * 17)}, "q", "At most 16 words."),
        ({"q": "| - *"}, "q", "Needs a word to look for: operators alone match nothing."),
        ({"level": "LOUD"}, "level", '"LOUD" is not a valid choice.'),
        ({"run": "nope"}, "run", "Must be a valid UUID."),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "until",
         "Must be after `since`."),
        ({"cursor": "forged"}, "cursor",
         "Not a cursor of this search: pass `next` as given, with the same query."),
        ({"limit": "201"}, "limit", "Ensure this value is less than or equal to 200."),
        ({"sort": "message"}, "sort", "Unknown parameter."),
    ],
)  # fmt: skip
def test_a_bad_search_is_a_400_naming_the_parameter(backend, client_as, params, field, message):
    response = client_as("viewer").get("/api/v1/logs/", params)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["field"], error["errors"][field]) == (field, [message])


def test_a_cursor_is_bound_to_its_query(backend, client_as):
    viewer = client_as("viewer")
    following = search(viewer, q="timeout", limit=1)["next"]

    response = viewer.get(following.replace("q=timeout", "q=rows"))

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize("actor", ["viewer", "other_team", "superuser"])
def test_runs_are_found_by_their_error_text_in_the_users_teams_only(
    backend, client_as, world, actor
):
    client = client_as(actor)

    found = client.get("/api/v1/runs/", {"q": "TimeoutError answer"}).json()
    payroll = client.get("/api/v1/runs/", {"q": "payroll", "state": "queued"}).json()

    expected = {
        "viewer": [world.failed_run],
        "other_team": [world.blue_run],
        "superuser": [world.blue_run, world.failed_run],  # newest first
    }[actor]
    assert [run["id"] for run in found["results"]] == [str(run.id) for run in expected]
    assert found["results"][0]["error"].startswith("TimeoutError")
    assert [run["id"] for run in payroll["results"]] == (
        [str(world.blue_run.id)] if actor != "viewer" else []
    )


def test_runs_found_by_error_text_page_by_cursor(backend, client_as, world):
    superuser = client_as("superuser")

    seen, page = [], superuser.get("/api/v1/runs/", {"q": "TimeoutError", "limit": 1}).json()
    while True:
        seen += [run["id"] for run in page["results"]]
        if page["next"] is None:
            break
        page = superuser.get(page["next"]).json()

    assert seen == [str(world.blue_run.id), str(world.failed_run.id)]


def test_elasticsearch_unreachable_is_a_503_and_the_rest_answers(world, client_as, settings):
    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{free_port()}"
    viewer = client_as("viewer")

    response = viewer.get("/api/v1/logs/", {"q": "timeout"})

    assert viewer.get("/api/v1/runs/", {"q": "timeout"}).status_code == 503
    assert response.status_code == 503
    assert response.json()["error"] == {
        "status": 503,
        "code": "search_unavailable",
        "message": "Search is unavailable: Elasticsearch cannot be reached.",
        "field": None,
        "errors": {},
    }
    assert viewer.get("/api/v1/jobs/").status_code == 200
