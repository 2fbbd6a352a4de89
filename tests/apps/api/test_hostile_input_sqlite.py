"""The hostile input of test_hostile_input.py and test_fuzz.py's query parameters
(hostile_values.py), against `make dev`'s process on SQLite: where PostgreSQL compares a 21-digit
id or a date past year 9999 in UTC, SQLite (and Python's datetime on the way to it) fails, so what
holds on one must be seen to hold on the other."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from apps.api.pagination import MAX_ID
from tests.apps.api.hostile_values import RAW_URL_TEXTS, filled, operations, values_for
from tests.processes import StandaloneApi, standalone_start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """`make dev`'s process on its own SQLite file, with a few runs; its API as its admin, not
    throttled (the hostile inputs are thousands of requests)."""
    unthrottled = {"DTS_API_THROTTLE_USER": "1000000/minute"}
    for base, _, _ in standalone_start(tmp_path_factory.mktemp("sqlite"), env=unthrottled):
        api = StandaloneApi(base)
        job_id = api.job_id("demo: say hello")
        runs = [api.trigger(job_id) for _ in range(3)]
        yield api, job_id, runs


def refused(response: requests.Response, field: str) -> None:
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"]["field"] == field, response.text[:500]


@pytest.mark.parametrize(
    "cursor",
    ["cj0wJnA9bm90YWRhdGU%3D", "cD05OTk5LTEyLTMxVDIzOjU5OjU5LTEyOjAw"],
)
def test_a_forged_cursor_is_a_400_on_sqlite(dev, cursor):
    api, _, _ = dev

    refused(api.get(f"runs/?cursor={cursor}"), "cursor")


@pytest.mark.parametrize("path", ["runs/", "runs/counts/", "runs/per-minute/"])
def test_a_job_id_beyond_64_bits_is_a_400_on_sqlite(dev, path):
    api, _, _ = dev

    refused(api.get(f"{path}?job=100000000000000000000"), "job")
    assert api.get(f"{path}?job={MAX_ID}").status_code == 200


def test_the_signed_cursor_pages_through_the_runs_on_sqlite(dev):
    api, _, runs = dev

    first = api.get("runs/?limit=2").json()
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
    second = api.get(f"runs/?limit=2&cursor={cursor}").json()

    listed = [run["id"] for run in first["results"] + second["results"]]
    assert set(runs) <= set(listed)


def test_hostile_query_parameters_are_no_server_error_on_sqlite(dev):
    api, job_id, runs = dev
    schedules = api.get(f"jobs/{job_id}/schedules/").json()
    valid = {
        "job_id": str(job_id),
        "schedule_id": str(schedules[0]["id"]) if schedules else "1",
        "run_id": runs[0],
        "token_id": "1",
        "team_id": "1",
        "username": "admin",
        "workflow_id": "1",
        "workflow_run_id": runs[0],  # no workflow run's: not found, as it should be
        "webhook_id": "1",
        "delivery_id": runs[0],
    }
    failures = []

    for method, path, operation in operations():
        if method != "get":
            continue
        url = filled(path, valid).removeprefix("/api/v1/")
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            for text in values_for(parameter["schema"], parameter["name"], "query"):
                response = api.get(f"{url}?{parameter['name']}={text}")
                if response.status_code >= 500 or response.status_code == 429:
                    failures.append(f"GET {url}?{parameter['name']}={text[:80]}")
        for text in RAW_URL_TEXTS:
            response = api.get(f"{url}{text}/")
            if response.status_code >= 500 or response.status_code == 429:
                failures.append(f"GET {url}{text}/")

    assert failures == [], "\n".join(failures)


def test_the_live_pictures_read_the_latest_runs_and_runs_per_minute_on_sqlite(dev):
    api, job_id, runs = dev

    overview = api.get("jobs/overview/?runs=20&search=say%20hello").json()["results"]
    chart = api.get("runs/per-minute/?minutes=5").json()

    (job,) = [job for job in overview if job["id"] == job_id]
    assert set(runs) <= {run["id"] for run in job["latest_runs"]}
    assert len(chart["counts"]["succeeded"]) == 5
