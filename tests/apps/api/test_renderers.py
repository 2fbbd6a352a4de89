import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from apps.api.renderers import FastJSONRenderer

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 27, 14, 5, 6, 789012, tzinfo=UTC)


@pytest.mark.parametrize(
    "data",
    [
        {
            "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "utc": AT,
            "whole_second": AT.replace(microsecond=0),
            "elsewhere": AT.astimezone(timezone(timedelta(hours=-5))),
            "day": date(2026, 11, 27),
            "lazy": gettext_lazy("This field is required."),
            "error": [ErrorDetail("Unknown parameter.", code="invalid")],
            "counts": {1: 2, "queued": 0},
            "text": "héllo, 世界",
            "nothing": None,
            "nested": [[{"a": [1, 2.5, True]}]],
        },
        {"args": {"big": 10**30}},  # beyond 64 bits: orjson refuses it
        {"message": "one\u2028two\u2029three"},
        [],
    ],
    ids=["types", "big integer", "line separators", "empty list"],
)
def test_it_writes_the_bytes_drf_writes(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_an_indented_answer_is_left_to_drf():
    media_type = "application/json; indent=2"

    rendered = FastJSONRenderer().render({"a": [1]}, media_type)

    assert rendered == JSONRenderer().render({"a": [1]}, media_type)
    assert b"\n" in rendered


def test_a_job_whose_arguments_hold_a_huge_integer_is_answered(world, client_as):
    admin = client_as("admin")
    definition = {"team": "red", "name": "huge", "task_type": "dts.echo", "args": {"n": 10**30}}

    created = admin.post("/api/v1/jobs/", definition, format="json")
    read = admin.get(f"/api/v1/jobs/{created.json()['id']}/")

    assert (created.status_code, read.status_code) == (201, 200)
    assert read.json()["args"] == {"n": 10**30}


def test_the_api_answers_through_it(world, client_as):
    response = client_as("viewer").get("/api/v1/runs/")

    assert response.status_code == 200
    assert isinstance(response.accepted_renderer, FastJSONRenderer)
