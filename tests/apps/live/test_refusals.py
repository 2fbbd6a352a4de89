"""Addresses with no route, and whatever clients send, are refused or ignored quietly: no error,
no traceback (anyone could fill the log with them)."""

import logging

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from apps.accounts.services import token_create
from config.asgi import application
from tests.factories import JobFactory, MembershipFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
NO_ROUTE = [
    "/ws/",
    "/ws/nothing/",
    "/ws/runs/not-a-uuid/",
    "/ws/jobs/abc/",
    "/ws/jobs/-1/",
    "/ws/jobs/1/extra/",
    "/ws/runs/%00/",
    "/ws/j\u00f6bs/1/",
    "/",
    "/api/v1/jobs/",
    "/ws/" + "x" * 10_000 + "/",
]


@pytest_asyncio.fixture(autouse=True)
async def _connections_closed():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def member():
    """A member of a team with a job, and their token."""
    membership = MembershipFactory()
    job = JobFactory(team=membership.team)
    return job, token_create(user=membership.user, name="ws")[1]


@pytest.fixture
def secret(member):
    return member[1]


async def closing_code(path: str, *headers: tuple[bytes, bytes]) -> int:
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])
    accepted, _ = await communicator.connect(timeout=5)
    assert accepted
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message["code"]


@pytest.mark.parametrize("path", NO_ROUTE)
async def test_an_address_with_no_route_is_refused_as_not_found_without_an_error(path, caplog):
    caplog.set_level(logging.INFO)

    assert await closing_code(path) == 4404
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", [*NO_ROUTE, "/ws/jobs/99999999999999999999999/"])
async def test_an_address_with_no_route_is_refused_when_signed_in_too(path, secret, caplog):
    assert await closing_code(path, (b"authorization", f"Bearer {secret}".encode())) == 4404
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_what_a_client_sends_is_ignored_without_an_error(member, caplog):
    job, secret = member
    communicator = WebsocketCommunicator(
        application,
        f"/ws/jobs/{job.id}/",
        headers=[ORIGIN, (b"authorization", f"Bearer {secret}".encode())],
    )
    assert (await communicator.connect(timeout=5))[0]
    await communicator.receive_json_from(timeout=5)  # the sync

    await communicator.send_to(text_data="{not json")
    await communicator.send_to(bytes_data=b"\x00\xff")
    await communicator.send_to(text_data='{"type": "live.close", "code": 1000}')

    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "query",
    [
        "after=" + "a" * 100_000,
        "after=team.1:" + "f" * 33 + ":1",
        "after=team.1:ab:" + "9" * 19,
        "after=team.1:ab:1&after=%ff%fe",
        "after=t\u00e9am.1:ab:1",
        "after=team.1:ab:1,,",
    ],
)
async def test_a_hostile_position_is_refused_as_malformed_without_an_error(member, query, caplog):
    _, secret = member

    code = await closing_code(f"/ws/runs/?{query}", (b"authorization", f"Bearer {secret}".encode()))

    assert code == 4400
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
