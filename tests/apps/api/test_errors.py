"""Bad input of every kind answers a 4xx in the one error shape, never a 500."""

import json

import pytest
from django.test import override_settings

from apps.jobs.models import Job

pytestmark = pytest.mark.django_db


def post_raw(client, url: str, raw: str | bytes):
    return client.generic("POST", url, raw, content_type="application/json")


@pytest.mark.parametrize(
    "raw",
    [
        '{"team": "red", "name": "a\\u0000b", "task_type": "dts.noop", "args": {}}',
        '{"team": "red", "name": "ok", "task_type": "dts.noop", "args": {"k": "\\ud800"}}',
        '{"team": "red", "name": "ok", "task_type": "dts.noop", "args": '
        + '{"a": ' * 40
        + "1"
        + "}" * 40
        + "}",
        "[" * 100_000 + "]" * 100_000,
        "{not json",
        '"just a string"',
        "",
    ],
    ids=["nul", "lone surrogate", "deep", "very deep", "malformed", "not an object", "empty"],
)
def test_a_body_postgresql_could_not_store_or_nobody_could_parse_is_refused(world, client_as, raw):
    response = post_raw(client_as("admin"), "/api/v1/jobs/", raw)

    assert 400 <= response.status_code < 500, response.content
    assert response.json()["error"]["status"] == response.status_code
    assert not Job.objects.filter(name="ok").exists()


def test_a_nul_in_a_query_parameter_is_refused(world, client_as):
    response = client_as("viewer").get("/api/v1/jobs/?search=a%00b")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "search"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_limit_is_refused(world, client_as):
    body = json.dumps(
        {"team": "red", "name": "big", "task_type": "dts.noop", "args": {"x": "y" * 2000}}
    )

    response = post_raw(client_as("admin"), "/api/v1/jobs/", body)

    assert response.status_code == 413
    assert response.json()["error"]["status"] == 413


def test_an_unknown_url_and_a_wrong_method_answer_in_the_error_shape(world, client_as):
    client = client_as("viewer")

    assert client.get("/api/v1/runs/not-a-uuid/").status_code == 404
    wrong = client.put("/api/v1/task-types/", {}, format="json")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/jobs/", {"team": "red", "name": 123, "task_type": "dts.noop"}, "name"),
        ("schedule pause", {"note": 113}, "note"),
    ],
)
def test_a_number_where_text_belongs_is_refused(world, client_as, path, body, field):
    if path == "schedule pause":
        path = f"/api/v1/jobs/{world.job.id}/schedules/{world.schedule.id}/pause/"

    response = client_as("admin").post(path, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
