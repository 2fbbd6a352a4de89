"""Hostile input for every API operation and every other page: no 5xx.

The endpoints come from the OpenAPI schema (every API operation with its path, query and body
parameters) and from the URL resolver (every other page): a new endpoint is fuzzed without a change
here. Each parameter in turn gets values chosen to break naive code (hostile_values.py: integers
beyond 64 bits and negative, far-future and malformed dates, forged cursors, JSON of the wrong
type, NUL, lone surrogates, invalid UTF-8, right-to-left marks, very long strings), the others
being valid, as an admin of the team that owns the objects (so that the input reaches the
services) and anonymously. Hypothesis then mixes values at random within a fixed budget.
Schemathesis (test_schemathesis.py) covers what the schema says is valid; this covers what it says
is not. test_fuzz_websocket.py does the same for the WebSocket paths."""

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.accounts.services import token_create
from apps.api.throttling import CountingThrottle
from tests.apps.api.hostile_values import (
    CURSORS,
    DATES,
    INTEGERS,
    JSON_VALUES,
    RAW_BODIES,
    TEXTS,
    filled,
    operations,
    page_urls,
    path_values,
    values_for,
)

# Bodies that let a create reach its service: a hostile value then replaces one field at a time.
VALID_BODIES = {
    "jobs_create": {"team": "red", "name": "fuzzed", "task_type": "dts.noop", "args": {}},
    "schedules_create": {"kind": "interval", "interval_seconds": 3600},
    "tokens_create": {"username": "admin", "password": "wrong", "name": "fuzz"},
    "teams_create": {"name": "fuzzed"},
    "teams_members_create": {"username": "other_team", "role": "viewer"},
    "schedules_pause": {"note": "fuzz"},
    "jobs_trigger": {},
}


@pytest.fixture
def valid(world) -> dict[str, str]:
    """Valid path parameters: the red team's objects, and a token of its admin."""
    token, _ = token_create(user=world.users["admin"], name="fuzz")
    return path_values(world, token.id)


@pytest.fixture
def unthrottled(monkeypatch):
    """Thousands of requests a minute are what this test sends: the throttles are tested apart."""
    monkeypatch.setattr(CountingThrottle, "allow_request", lambda self, request, view: True)


# Operations only a superuser may call (a team's admin gets 403): fuzzed as the superuser.
PLATFORM_OPERATIONS = {"teams_create", "teams_update"}


def clients(world) -> dict[str, Client]:
    """The red team's admin (the member), a superuser and an anonymous client."""
    member, superuser = (APIClient(raise_request_exception=False) for _ in range(2))
    member.force_login(world.users["admin"])
    superuser.force_login(world.users["superuser"])
    return {
        "member": member,
        "superuser": superuser,
        "anonymous": APIClient(raise_request_exception=False),
    }


def actor_of(operation: dict[str, Any]) -> str:
    return "superuser" if operation["operationId"] in PLATFORM_OPERATIONS else "member"


class Sender:
    """Sends requests and keeps those answered with a 5xx."""

    def __init__(self, clients: dict[str, Client]) -> None:
        self.clients = clients
        self.failures: list[str] = []
        self.statuses: Counter[tuple[str, int]] = Counter()

    def send(self, actor: str, method: str, url: str, body: bytes | None = None) -> None:
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


def test_no_api_operation_answers_a_server_error_to_hostile_parameters(world, valid, unthrottled):
    sender = Sender(clients(world))

    for method, path, operation in in_fuzzing_order():
        actor = actor_of(operation)
        for parameter in operation.get("parameters", []):
            for text in values_for(parameter["schema"], parameter["name"], parameter["in"]):
                if parameter["in"] == "path":
                    url = filled(path, {**valid, parameter["name"]: text})
                else:
                    url = f"{filled(path, valid)}?{parameter['name']}={text}"
                sender.send(actor, method, url)
        if method != "delete":  # with a valid id it would delete, whatever the query
            for unknown in ("?unknown=1", "?limit=1&limit=2", "?" + "a=1&" * 2000, "?%00=%00"):
                sender.send(actor, method, filled(path, valid) + unknown)
        anonymous_url = filled(path, valid)
        sender.send("anonymous", method, anonymous_url + "?cursor=%00&job=" + str(10**30))
        sender.send("anonymous", method, anonymous_url, b"{")

    assert sender.failures == [], "\n".join(sender.failures)
    member = member_statuses(sender)
    assert member[200] > 100, sender.statuses
    assert member[400] > 500, sender.statuses


def test_no_api_operation_answers_a_server_error_to_hostile_bodies(world, valid, unthrottled):
    sender = Sender(clients(world))

    for method, path, operation in in_fuzzing_order():
        if method not in ("post", "patch", "put"):
            continue
        url = filled(path, valid)
        actor = actor_of(operation)
        base = VALID_BODIES.get(operation["operationId"], {})
        for name in operation["body_properties"]:
            for value in JSON_VALUES:
                sender.send(actor, method, url, json.dumps({**base, name: value}).encode())
        for raw in RAW_BODIES:
            sender.send(actor, method, url, raw)
        sender.send("anonymous", method, url, json.dumps(base).encode())

    assert sender.failures == [], "\n".join(sender.failures)
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


def test_no_page_answers_a_server_error_to_hostile_input(world, valid, unthrottled):
    admin = Client(raise_request_exception=False)
    admin.force_login(world.users["superuser"])
    sender = Sender({**clients(world), "superuser": admin})
    page_values = {**valid, "object_id": str(world.job.id), "app_label": "jobs"}

    for route in pages():
        for url in page_urls(route, page_values):
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


def test_random_mixes_of_hostile_query_parameters_are_no_server_error(world, valid, unthrottled):
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
        sender.send("member", method, f"{filled(path, valid)}?{query}")

    mixed()

    assert sender.failures == [], "\n".join(sender.failures)
