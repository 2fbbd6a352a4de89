"""One rule for `Authorization: Bearer`, on HTTP and WebSockets: the scheme in any case (RFC 9110,
11.1), read by one function (apps.core.client.bearer_secret)."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.test import APIClient

from apps.accounts.services import token_create
from apps.core.client import bearer_secret
from config.asgi import application
from tests.factories import MembershipFactory

SCHEMES = ["Bearer", "bearer", "BEARER", "bEaReR"]


@pytest.fixture
def secret(db):
    return token_create(user=MembershipFactory().user, name="cli")[1]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Bearer dts_abc", "dts_abc"),
        (b"bearer dts_abc", "dts_abc"),
        (b"BEARER  dts_abc ", "dts_abc"),
        (b"Bearer", ""),
        (b"Bearer ", ""),
        (b"Basic dXNlcjpwYXNz", None),
        (b"Bearerdts_abc", None),
        (b"", None),
        (b"\xff\xfe", None),
    ],
)
def test_bearer_secret_reads_the_scheme_in_any_case(header, expected):
    assert bearer_secret(header) == expected


@pytest.mark.parametrize("scheme", SCHEMES)
def test_http_accepts_the_scheme_in_any_case(secret, scheme):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}")

    assert client.get("/api/v1/jobs/").status_code == 200


@pytest.mark.parametrize("scheme", SCHEMES)
def test_http_refuses_a_bad_token_in_any_case(db, scheme):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} dts_not-a-token")

    response = client.get("/api/v1/jobs/")

    assert response.status_code == 401
    assert "unknown, expired or revoked" in response.json()["error"]["message"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_websockets_accept_the_scheme_in_any_case(secret, scheme):
    communicator = WebsocketCommunicator(
        application,
        "/ws/runs/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"authorization", f"{scheme} {secret}".encode()),
        ],
    )

    accepted, _ = await communicator.connect(timeout=5)
    first = await communicator.receive_output(timeout=5)

    assert accepted
    assert first["type"] == "websocket.send"  # the sync, not a close
    await communicator.disconnect()
    await sync_to_async(connections.close_all)()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_websockets_refuse_a_bad_token_in_any_case(scheme):
    communicator = WebsocketCommunicator(
        application,
        "/ws/runs/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"authorization", f"{scheme} dts_not-a-token".encode()),
        ],
    )

    await communicator.connect(timeout=5)
    closing = await communicator.receive_output(timeout=5)

    assert (closing["type"], closing["code"]) == ("websocket.close", 4401)
    await sync_to_async(connections.close_all)()
