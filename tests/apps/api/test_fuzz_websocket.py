"""Hostile input for every WebSocket path: no unhandled exception (what a 500 handshake is).

The paths come from apps.live.routing, with valid and hostile parameters (hostile_values.py), and
junk paths; each gets hostile queries, anonymously, with a token of the team that owns the objects,
and with a forged token or session, then junk frames if it is accepted. test_fuzz.py does the same
for HTTP."""

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from apps.accounts.services import token_create
from apps.live.routing import websocket_urlpatterns
from apps.workflows.services import workflow_create, workflow_trigger
from tests.apps.api.hostile_values import page_urls

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


def websocket_paths(world) -> list[str]:
    """Every route of apps.live.routing with valid and hostile parameters, and junk paths."""
    steps = [{"name": "a", "job": world.job}]
    workflow_run = workflow_trigger(workflow=workflow_create(team=world.red, name="w", steps=steps))
    valid = {
        "job_id": str(world.job.id),
        "run_id": str(world.failed_run.id),
        "workflow_run_id": str(workflow_run.id),
    }
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
def test_no_websocket_path_fails_with_hostile_input(world):
    """Until the no-route fix of apps/live/routing.py is in, the junk paths fail here."""
    _, secret = token_create(user=world.users["admin"], name="fuzz")
    actors = {
        "anonymous": [],
        "member": [(b"authorization", f"Bearer {secret}".encode())],
        "forged token": [(b"authorization", b"Bearer dts_\x00\xff")],
        "forged session": [(b"cookie", b"sessionid=%00" + b"x" * 5000)],
    }

    paths = websocket_paths(world)

    async def fuzz() -> list[str]:
        failures = []
        for path in paths:
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
