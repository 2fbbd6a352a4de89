"""Input an attacker writes by hand: forged cursors, numbers no database column holds, names of
another team's jobs. Each is a 4xx naming the parameter, never a 500 or a leak."""

from base64 import b64encode
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from drf_spectacular.generators import SchemaGenerator

from apps.api.pagination import MAX_ID, MAX_OFFSET, NewestFirstCursor
from apps.api.runs import RunFilterSerializer, RunLogFilterSerializer, RunScopeSerializer
from apps.jobs.models import Job
from tests.factories import JobFactory, MembershipFactory, RunFactory, UserFactory


def refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field, response.json()


def next_cursor(response) -> str:
    return parse_qs(urlsplit(response.json()["next"]).query)["cursor"][0]


@pytest.mark.parametrize(
    "cursor",
    [
        "cj0wJnA9bm90YWRhdGU=",  # r=0&p=notadate: DRF's own encoding, with a position not a date
        "cD05OTk5LTEyLTMxVDIzOjU5OjU5LTEyOjAw",  # p=9999-12-31T23:59:59-12:00: beyond UTC's years
        b64encode(b"o=99999999999999999999&p=2026-01-01").decode(),
        "not base64 at all!",
        "x:y:z",
        "\u00e9t\u00e9",
    ],
)
def test_a_forged_cursor_is_refused_naming_it(world, client_as, cursor):
    refused(client_as("viewer").get("/api/v1/runs/", {"cursor": cursor}), "cursor")


def test_a_cursor_the_server_signed_pages_on_and_a_tampered_one_is_refused(world, client_as):
    for _ in range(3):
        RunFactory(job=world.job, task_type="dts.noop", args={})
    api = client_as("viewer")

    first = api.get("/api/v1/runs/", {"limit": 2})
    cursor = next_cursor(first)
    second = api.get("/api/v1/runs/", {"limit": 2, "cursor": cursor})
    tokens = signing.loads(cursor, salt=NewestFirstCursor.signing_salt)
    forged = signing.dumps({**tokens, "p": "notadate"}, salt="another salt")

    assert second.status_code == 200
    listed = [run["id"] for run in first.json()["results"] + second.json()["results"]]
    assert len(listed) == len(set(listed)) == 4
    tampered = cursor[:-1] + ("B" if cursor.endswith("A") else "A")  # one in 64 ends with A
    refused(api.get("/api/v1/runs/", {"cursor": tampered}), "cursor")
    refused(api.get("/api/v1/runs/", {"cursor": forged}), "cursor")


def test_a_signed_cursor_of_the_wrong_shape_is_refused_all_the_same(world, client_as):
    """Were the secret key to leak, a signed position is still checked before it is queried."""
    for tokens in [
        {"o": 0, "r": False, "p": "9999-12-31T23:59:59-12:00"},
        {"o": 0, "r": False, "p": "notadate"},
        {"o": -1, "r": False, "p": None},
        {"o": "0", "r": False, "p": None},
        {"o": 0, "r": 1, "p": None},
        ["o", "r", "p"],
    ]:
        cursor = signing.dumps(tokens, salt=NewestFirstCursor.signing_salt)
        refused(client_as("viewer").get("/api/v1/runs/", {"cursor": cursor}), "cursor")


@pytest.mark.parametrize("url", ["/api/v1/runs/", "/api/v1/runs/counts/"])
@pytest.mark.parametrize("value", [str(10**20), str(MAX_ID + 1), "0", "-1"])
def test_a_job_id_beyond_64_bits_is_refused_naming_it(world, client_as, url, value):
    refused(client_as("viewer").get(url, {"job": value}), "job")


def test_the_largest_64_bit_job_id_is_asked_and_matches_nothing(world, client_as):
    response = client_as("viewer").get("/api/v1/runs/", {"job": str(MAX_ID)})

    assert (response.status_code, response.json()["results"]) == (200, [])


@pytest.mark.parametrize(
    ("url", "parameter", "value"),
    [
        ("/api/v1/jobs/", "offset", str(MAX_OFFSET + 1)),
        ("/api/v1/jobs/", "offset", str(10**30)),
        ("/api/v1/audit/", "offset", str(10**30)),
        ("/api/v1/runs/", "limit", str(10**30)),
    ],
)
def test_offsets_and_limits_beyond_their_bounds_are_refused(
    world, client_as, url, parameter, value
):
    refused(client_as("viewer").get(url, {parameter: value}), parameter)


def test_a_log_position_beyond_64_bits_is_refused(world, client_as):
    url = f"/api/v1/runs/{world.queued_run.id}/log/"

    refused(client_as("viewer").get(url, {"after": str(10**20)}), "after")


@pytest.mark.parametrize(
    "serializer", [RunFilterSerializer, RunScopeSerializer, RunLogFilterSerializer]
)
def test_integer_parameters_are_bounded_before_any_database_sees_them(serializer):
    """SQLite (`make dev`) raises OverflowError for an integer beyond 64 bits where PostgreSQL
    compares it: the bound is the serializer's, so it holds on either."""
    fields = {
        name: field
        for name, field in serializer().fields.items()
        if field.__class__.__name__.endswith("IntegerField") or name in ("job", "after")
    }
    for name in fields:
        query = serializer(data={name: str(MAX_ID + 1)})
        assert not query.is_valid()
        assert name in query.errors


def test_every_integer_query_parameter_of_every_endpoint_is_bounded():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    unbounded = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
        and parameter["schema"].get("type") == "integer"
        and not (
            "maximum" in parameter["schema"]
            and parameter["schema"]["maximum"] <= MAX_ID
            and parameter["schema"].get("minimum", -MAX_ID - 1) >= -MAX_ID - 1
        )
    ]

    assert unbounded == []


@pytest.mark.parametrize("url", ["/api/v1/jobs/{}/", "/api/v1/jobs/{}/schedules/"])
def test_a_path_id_beyond_64_bits_is_not_found(world, client_as, url):
    assert client_as("viewer").get(url.format(10**20)).status_code == 404


def test_a_job_may_take_a_name_another_team_has_and_the_refusal_names_no_other_team(
    world, client_as
):
    api = client_as("admin")
    body = {"team": "red", "task_type": "dts.noop", "args": {}}

    created = api.post("/api/v1/jobs/", {**body, "name": "blue job"}, format="json")
    renamed = api.patch(f"/api/v1/jobs/{world.job.id}/", {"name": "blue job 2"}, format="json")
    clash = api.post("/api/v1/jobs/", {**body, "name": "blue job 2"}, format="json")

    assert created.status_code == 201, created.content
    assert renamed.status_code == 200, renamed.content
    refused(clash, "name")
    assert "blue" not in clash.json()["error"]["message"].replace("blue job 2", "")
    assert Job.objects.filter(name="blue job").count() == 2


def test_the_jobs_list_finds_a_name_exactly_within_a_team(world, client_as):
    both = MembershipFactory(team=world.blue, user=UserFactory(username="both")).user
    MembershipFactory(team=world.red, user=both)
    JobFactory(team=world.blue, name="red job")
    api = client_as("anonymous")
    api.force_login(both)

    everywhere = api.get("/api/v1/jobs/", {"name": "red job"}).json()["results"]
    in_blue = api.get("/api/v1/jobs/", {"name": "red job", "team": "blue"}).json()["results"]
    partial = api.get("/api/v1/jobs/", {"name": "red"}).json()["results"]

    assert sorted(job["team"] for job in everywhere) == ["blue", "red"]
    assert [job["team"] for job in in_blue] == ["blue"]
    assert partial == []


@pytest.mark.parametrize(
    ("url", "parameter", "longest"),
    [("/api/v1/audit/", "object_type", 50), ("/api/v1/jobs/", "tag", 50)],
)
def test_a_text_parameter_past_its_length_is_refused_even_with_trailing_white_space(
    world, client_as, url, parameter, longest
):
    # Schemathesis found it: DRF trimmed U+001F before checking the length the schema promises.
    api = client_as("viewer")

    refused(api.get(url, {parameter: "a" * longest + "\x1f"}), parameter)
    assert api.get(url, {parameter: "a" * longest}).status_code == 200
