"""Hostile input for every endpoint and every WebSocket path: no 5xx, no unhandled exception.

The endpoints come from the OpenAPI schema (every API operation with its path, query and body
parameters) and from the URL resolver (every other page), the WebSocket paths from
apps.live.routing: a new endpoint or route is fuzzed without a change here. Each parameter in
turn gets values chosen to break naive code (integers beyond 64 bits and negative, far-future and
malformed dates, forged cursors, JSON of the wrong type, NUL, lone surrogates, invalid UTF-8,
right-to-left marks, very long strings), the others being valid, as a member of the team that owns
the objects (so that the input reaches the services) and anonymously. Hypothesis then mixes
values at random within a fixed budget. Schemathesis (test_schemathesis.py) covers what the
schema says is valid; this covers what it says is not."""

import asyncio
import json
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.services import token_create
from apps.api.throttling import CountingThrottle
from apps.live.routing import websocket_urlpatterns
from apps.runs.states import RunState
from tests.factories import (
    JobFactory,
    MembershipFactory,
    RunFactory,
    ScheduleFactory,
    TeamFactory,
    UserFactory,
)

DEEP = json.loads("[" * 200 + "]" * 200)
INTEGERS = [
    "-1",
    "0",
    str(2**31),
    str(2**63),
    str(2**64),
    str(10**30),
    f"-{10**30}",
    "1e309",
    "NaN",
    "Infinity",
    "0x1F",
    "1.5",
    " 7 ",
    "٣",  # an Arabic-Indic digit: int() takes it, a database need not
]
DATES = [
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "2026-13-01",
    "yesterday",
]
CURSORS = [
    "cj0wJnA9bm90YWRhdGU=",  # r=0&p=notadate
    "cD05OTk5LTEyLTMxVDIzOjU5OjU5LTEyOjAw",  # p=9999-12-31T23:59:59-12:00
    "bz0tMSZwPTIwMjYtMDEtMDE=",  # o=-1&p=2026-01-01
    "=",
    ":",
    "a:b:c",
    "eyJvIjowfQ:1abc:def",
]
TEXTS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "é",
    "🙂",
    "\u202e\ufeff\u200b",
    "x" * 20_000,
    "' OR 1=1 --",
    "../../../etc/passwd",
    "%s%n{0}",
    "null",
]
# Already percent-encoded for a URL: what no Python string quotes to (invalid UTF-8, the UTF-8
# of a lone surrogate), and escapes that are not escapes.
RAW_URL_TEXTS = ["%00", "%ED%A0%80", "%FF%FE", "%C0%AF", "%", "%zz", "%25%32%35"]
JSON_VALUES: list[Any] = [
    None,
    True,
    -1,
    2**63,
    -(10**30),
    1.5,
    "",
    "\x00",
    "\ud800",  # json.dumps writes it as the escape "\ud800": a lone surrogate once parsed
    "x" * 20_000,
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
    [],
    {"\x00": ["\x00"]},
    DEEP,
]
RAW_BODIES = [b"", b"null", b"[]", b"1", b'"x"', b"{", b"\xff\xfe", b"NaN", b'{"a":' * 5000]
# Bodies that let a create reach its service: a hostile value then replaces one field at a time.
VALID_BODIES = {
    "jobs_create": {"team": "red", "name": "fuzzed", "task_type": "dts.noop", "args": {}},
    "schedules_create": {"kind": "interval", "interval_seconds": 3600},
    "tokens_create": {"username": "admin", "password": "wrong", "name": "fuzz"},
    "schedules_pause": {"note": "fuzz"},
    "jobs_trigger": {},
}
WS_JUNK_PATHS = [
    "/",
    "/ws",
    "/ws/",
    "/ws/nothing/",
    "/ws/runs/not-a-uuid/",
    "/ws/jobs/abc/",
    f"/ws/jobs/{10**30}/",
    "/ws/jobs/-1/",
    "/ws/runs/%00/",
    "/ws/runs/%ED%A0%80/",
    "/ws/" + "x" * 5000 + "/",
    "/api/v1/jobs/",
    "/ws/runs/../../admin/",
]
WS_QUERIES = [
    "",
    "after=",
    "after=x",
    "after=runs:epoch:-1",
    f"after=runs:epoch:{10**30}",
    "after=" + ",".join(["a:b:1"] * 500),
    "after=%00:%ED%A0%80:1",
    "after=runs::",
    "after=::::",
    "%ff=%fe",
]
WS_FRAMES = ["null", "{", '{"type": "subscribe"}', "\x00" * 10, "x" * 100_000]
MAX_SECONDS = 60


def values_for(schema: dict[str, Any], name: str, where: str) -> list[str]:
    """Hostile text for a query or path parameter of this schema, ready for a URL."""
    if where == "path":  # what is not digits (or a UUID) the resolver refuses before any view
        texts = [*INTEGERS[:8], "é", "x" * 5000]
    elif schema.get("type") in ("integer", "number"):
        texts = INTEGERS + TEXTS[:6]
    elif schema.get("format") in ("date-time", "date"):
        texts = DATES + TEXTS[:6]
    elif name == "cursor":
        texts = CURSORS + TEXTS
    else:
        texts = TEXTS + INTEGERS[:4] + DATES[:2]
    return [quote(text, safe="") for text in texts] + RAW_URL_TEXTS


class World:
    """Team "red" owns a job with a schedule and runs; "member" is its admin."""

    def __init__(self) -> None:
        red = TeamFactory(name="red")
        self.member = MembershipFactory(
            team=red, user=UserFactory(username="member"), role=Role.ADMIN
        ).user
        self.job = JobFactory(team=red, name="red job", task_type="dts.noop", args={})
        self.schedule = ScheduleFactory(job=self.job)
        self.run = RunFactory(job=self.job, task_type="dts.noop", args={}, state=RunState.FAILED)
        self.token, self.secret = token_create(user=self.member, name="fuzz")

    def path_values(self) -> dict[str, str]:
        return {
            "job_id": str(self.job.id),
            "schedule_id": str(self.schedule.id),
            "run_id": str(self.run.id),
            "token_id": str(self.token.id),
        }


@pytest.fixture
def unthrottled(monkeypatch):
    """Thousands of requests a minute are what this test sends: the throttles are tested apart."""
    monkeypatch.setattr(CountingThrottle, "allow_request", lambda self, request, view: True)


def clients(world: World) -> dict[str, Client]:
    member = APIClient(raise_request_exception=False)
    member.force_login(world.member)
    return {"member": member, "anonymous": APIClient(raise_request_exception=False)}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    found = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            properties: dict[str, Any] = {}
            if body:
                reference = body["schema"].get("$ref", "")
                properties = components[reference.rsplit("/", 1)[-1]].get("properties", {})
            found.append((method, path, {**operation, "body_properties": properties}))
    return found


class Sender:
    """Sends requests and keeps those answered with a 5xx."""

    def __init__(self, clients: dict[str, Client]) -> None:
        self.clients = clients
        self.failures: list[str] = []
        self.sent = 0
        self.statuses: Counter[tuple[str, int]] = Counter()

    def send(self, actor: str, method: str, url: str, body: bytes | None = None) -> None:
        self.sent += 1
        response = self.clients[actor].generic(
            method.upper(), url, body or b"", content_type="application/json"
        )
        self.statuses[actor, response.status_code] += 1
        if response.status_code >= 500:
            shown = url if len(url) < 300 else url[:300] + "…"
            detail = (body or b"")[:200]
            self.failures.append(
                f"{actor} {method.upper()} {shown} {detail!r}: {response.status_code}"
            )


def filled(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], path)


def member_statuses(sender: Sender) -> dict[int, int]:
    """How often each status answered the member. None may be 403: the member is an admin of
    the objects' team, so the input reached the views (a 401 is the token login's wrong
    password)."""
    member = {
        status: count for (actor, status), count in sender.statuses.items() if actor == "member"
    }
    assert member.get(403, 0) == 0, sender.statuses
    return member


def in_fuzzing_order() -> list[tuple[str, str, dict[str, Any]]]:
    """Deletions last: a deleted job would end the other operations' fuzzing."""
    return sorted(operations(), key=lambda item: item[0] == "delete")


@pytest.mark.django_db
def test_no_api_operation_answers_a_server_error_to_hostile_parameters(unthrottled):
    world = World()
    sender = Sender(clients(world))
    started = time.monotonic()

    for method, path, operation in in_fuzzing_order():
        valid = world.path_values()
        for parameter in operation.get("parameters", []):
            for text in values_for(parameter["schema"], parameter["name"], parameter["in"]):
                if parameter["in"] == "path":
                    url = filled(path, {**valid, parameter["name"]: text})
                else:
                    url = f"{filled(path, valid)}?{parameter['name']}={text}"
                sender.send("member", method, url)
        if method != "delete":  # with a valid id it would delete, whatever the query
            for unknown in ("?unknown=1", "?limit=1&limit=2", "?" + "a=1&" * 2000, "?%00=%00"):
                sender.send("member", method, filled(path, valid) + unknown)
        anonymous_url = filled(path, valid)
        sender.send("anonymous", method, anonymous_url + "?cursor=%00&job=" + str(10**30))
        sender.send("anonymous", method, anonymous_url, b"{")

    assert sender.failures == [], "\n".join(sender.failures)
    assert time.monotonic() - started < MAX_SECONDS, f"{sender.sent} requests"
    member = member_statuses(sender)
    assert member[200] > 100, sender.statuses
    assert member[400] > 500, sender.statuses


@pytest.mark.django_db
def test_no_api_operation_answers_a_server_error_to_hostile_bodies(unthrottled):
    world = World()
    sender = Sender(clients(world))
    started = time.monotonic()

    for method, path, operation in in_fuzzing_order():
        if method not in ("post", "patch", "put"):
            continue
        url = filled(path, world.path_values())
        base = VALID_BODIES.get(operation["operationId"], {})
        for name in operation["body_properties"]:
            for value in JSON_VALUES:
                sender.send("member", method, url, json.dumps({**base, name: value}).encode())
        for raw in RAW_BODIES:
            sender.send("member", method, url, raw)
        sender.send("anonymous", method, url, json.dumps(base).encode())

    assert sender.failures == [], "\n".join(sender.failures)
    assert time.monotonic() - started < MAX_SECONDS, f"{sender.sent} requests"
    member = member_statuses(sender)
    assert member[201] > 10, sender.statuses
    assert member[400] > 500, sender.statuses


def pages() -> list[str]:
    """Every route outside /api/ (the schema has those), its converters left in."""

    def walk(patterns: list[Any], prefix: str) -> list[str]:
        found = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append(prefix + str(pattern.pattern))
        return found

    return [
        route for route in walk(get_resolver().url_patterns, "") if not route.startswith("api/")
    ]


def page_urls(route: str, valid: dict[str, str]) -> list[str]:
    """The route with each of its parameters in turn hostile, or as given when it has none."""
    route = route.lstrip("^").rstrip("$").replace("\\Z", "")
    converters = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)", route)
    names = [first or second for first, second in converters]

    def substituted(values: dict[str, str]) -> str:
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: values[match.group(1)], route)
        return "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: values[match.group(1)], url)

    known = {name: valid.get(name, "1") for name in names}
    if not names:
        return [substituted({})]
    hostile = [quote(text, safe="") for text in [*INTEGERS[:5], "é", "x" * 5000]]
    hostile += RAW_URL_TEXTS[:3]
    return [substituted({**known, name: text}) for name in names for text in hostile]


@pytest.mark.django_db
def test_no_page_answers_a_server_error_to_hostile_input(unthrottled):
    world = World()
    superuser = User.objects.create_superuser("root", "root@example.com", "password")
    admin = Client(raise_request_exception=False)
    admin.force_login(superuser)
    sender = Sender({**clients(world), "superuser": admin})
    valid = {**world.path_values(), "object_id": str(world.job.id), "app_label": "jobs"}
    started = time.monotonic()

    for route in pages():
        for url in page_urls(route, valid):
            for actor in ("member", "anonymous", "superuser"):
                sender.send(actor, "get", url + "?q=%00&p=" + str(10**30) + "&o=%ED%A0%80")
    for fields in [
        {"username": "\x00", "password": "x"},
        {"username": "a" * 20_000, "password": "\x00"},
        {"username": "\ud800", "password": "\ud800"},
        {"username": ["a", "b"], "password": None},
    ]:
        for url in ("/live/login/", "/admin/login/", "/live/logout/"):
            encoded = "&".join(
                f"{name}={quote(str(value), safe='', errors='surrogatepass')}"
                for name, value in fields.items()
            )
            response = Client(raise_request_exception=False).post(
                url, encoded, content_type="application/x-www-form-urlencoded"
            )
            if response.status_code >= 500:
                sender.failures.append(f"anonymous POST {url} {fields!r}: {response.status_code}")

    assert sender.failures == [], "\n".join(sender.failures)
    assert time.monotonic() - started < MAX_SECONDS, f"{sender.sent} requests"


QUERY_OPERATIONS = [
    (method, path, operation)
    for method, path, operation in operations()
    if method == "get" and any(p["in"] == "query" for p in operation.get("parameters", []))
]
HOSTILE_TEXT = st.one_of(
    st.sampled_from(INTEGERS + DATES + CURSORS + TEXTS),
    st.integers().map(str),
    st.text(max_size=50),
    st.datetimes().map(lambda moment: moment.isoformat() + "+14:00"),
)


@pytest.mark.django_db
def test_random_mixes_of_hostile_query_parameters_are_no_server_error(unthrottled):
    world = World()
    sender = Sender(clients(world))

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(data=st.data())
    def mixed(data: st.DataObject) -> None:
        method, path, operation = data.draw(st.sampled_from(QUERY_OPERATIONS))
        names = [p["name"] for p in operation["parameters"] if p["in"] == "query"]
        chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        query = "&".join(
            f"{name}={quote(data.draw(HOSTILE_TEXT), safe='', errors='surrogatepass')}"
            for name in chosen
        )
        sender.send("member", method, f"{filled(path, world.path_values())}?{query}")

    mixed()

    assert sender.failures == [], "\n".join(sender.failures)


def websocket_paths(world: World) -> list[str]:
    """Every route of apps.live.routing with valid and hostile parameters, and junk paths."""
    valid = {"job_id": str(world.job.id), "run_id": str(world.run.id)}
    found = list(WS_JUNK_PATHS)
    for pattern in websocket_urlpatterns:
        route = str(pattern.pattern)
        if not route or route.startswith("^"):
            continue  # the catch-all of unknown paths: the junk paths are its input
        found += page_urls(route, valid)
        if "<" in route:
            found.append(
                "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda match: valid[match.group(1)], route)
            )
    return found


async def websocket_failure(path: str, headers: list[tuple[bytes, bytes]]) -> str | None:
    """What went wrong when a client opens `path` and sends junk: None if nothing did."""
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://127.0.0.1:8000"), *headers]
    )
    try:
        accepted, _ = await communicator.connect(timeout=5)
        if accepted:
            for frame in WS_FRAMES:
                await communicator.send_to(text_data=frame)
            await communicator.send_to(bytes_data=b"\xff\x00")
            await communicator.receive_nothing(timeout=0.05)
    except Exception as error:  # an exception of the application: what a 500 handshake is
        return f"{path[:100]} {repr(headers)[:100]}: {type(error).__name__}: {error}"
    finally:
        await communicator.disconnect()
    return None


@pytest.mark.django_db(transaction=True)
def test_no_websocket_path_fails_with_hostile_input():
    """Until the no-route fix of apps/live/routing.py is in, the junk paths fail here."""
    world = World()
    actors = {
        "anonymous": [],
        "member": [(b"authorization", f"Bearer {world.secret}".encode())],
        "forged token": [(b"authorization", b"Bearer dts_\x00\xff")],
        "forged session": [(b"cookie", b"sessionid=%00" + b"x" * 5000)],
    }
    started = time.monotonic()

    async def fuzz() -> list[str]:
        failures = []
        for path in websocket_paths(world):
            queries = WS_QUERIES if path.startswith("/ws/") and len(path) < 100 else [""]
            for query in queries:
                url = f"{path}?{query}" if query else path
                for headers in actors.values():
                    failure = await websocket_failure(url, headers)
                    if failure:
                        failures.append(failure)
        await sync_to_async(connections.close_all)()  # those the consumers' threads opened
        return failures

    failures = asyncio.run(fuzz())

    assert failures == [], "\n".join(failures[:40])
    assert time.monotonic() - started < MAX_SECONDS
