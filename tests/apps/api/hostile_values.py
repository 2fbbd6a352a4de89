"""Hostile values for the fuzz tests (test_fuzz.py, test_fuzz_websocket.py) and the SQLite run of
them (test_hostile_input_sqlite.py): values chosen to break naive code, and the operations of the
OpenAPI schema and the routes to send them to."""

import json
import re
from typing import Any
from urllib.parse import quote

from drf_spectacular.generators import SchemaGenerator

from apps.notifications.models import Webhook
from apps.notifications.services import webhook_ping
from apps.workflows.services import workflow_create, workflow_trigger

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


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of the OpenAPI schema: its method, its path, and the operation with the
    properties of its JSON body ("body_properties")."""
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


def filled(path: str, values: dict[str, str]) -> str:
    """The schema's path with its {parameters} replaced by `values`."""
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], path)


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


def path_values(world: Any, token_id: int) -> dict[str, str]:
    """The path parameters of the schema's operations, naming the objects of tests/apps/api/
    conftest.py's world (its red team's), a workflow made here and a run of it, a webhook and a
    delivery of it, and a token of its admin."""
    workflow = workflow_create(
        team=world.red, name="fuzzed", steps=[{"name": "a", "job": world.job}]
    )
    webhook = Webhook.objects.create(
        team=world.red, name="fuzzed", url="https://93.184.215.14/hooks", secret="x" * 16
    )
    return {
        "webhook_id": str(webhook.id),
        "delivery_id": str(webhook_ping(webhook=webhook).id),
        "workflow_id": str(workflow.id),
        "workflow_run_id": str(workflow_trigger(workflow=workflow).id),
        "job_id": str(world.job.id),
        "schedule_id": str(world.schedule.id),
        "run_id": str(world.failed_run.id),
        "token_id": str(token_id),
        "team_id": str(world.red.id),
        "username": "viewer",
    }
