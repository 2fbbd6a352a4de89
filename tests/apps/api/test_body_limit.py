"""The body limit (DTS_API_MAX_BODY_BYTES) holds while a body arrives, chunked or not
(config/body_limit.py): through the real web server, and at the ASGI level for what it reads."""

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings

from apps.accounts.models import Role
from apps.accounts.services import token_create
from config.body_limit import BodyLimitMiddleware
from tests.factories import MembershipFactory, TeamFactory, UserFactory

LIMIT = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # the web server's: it runs on these settings
CHUNK = 64 * 1024


class Counted:
    """A chunked body of `total` bytes, counting what the client got to send."""

    def __init__(self, total: int, piece: bytes = b" ") -> None:
        self.total, self.piece, self.sent = total, piece, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.total:
            chunk = self.piece * min(CHUNK, self.total - self.sent)
            self.sent += len(chunk)
            yield chunk


@pytest.fixture
def token():
    team = TeamFactory(name="ops")
    user = MembershipFactory(team=team, user=UserFactory(username="ana"), role=Role.ADMIN).user
    return token_create(user=user, name="body")[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
class TestThroughTheWebServer:
    def post(self, url: str, token: str, content, headers=None) -> httpx.Response:
        return httpx.post(
            f"{url}/api/v1/jobs/",
            content=content,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
            timeout=30,
        )

    def test_a_chunked_body_over_the_limit_is_refused_before_it_is_all_read(
        self, api_server, token
    ):
        body = Counted(64 * LIMIT)

        response = self.post(api_server, token, iter(body))

        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "too_large"
        assert str(LIMIT) in response.json()["error"]["message"]
        # What the sockets' buffers hold beyond the limit, not the 64 MiB offered.
        assert body.sent < 16 * LIMIT

    def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read(
        self, api_server, token
    ):
        body = Counted(64 * LIMIT)

        response = self.post(
            api_server, token, iter(body), headers={"Content-Length": str(64 * LIMIT)}
        )

        assert response.status_code == 413, response.text
        assert body.sent < 16 * LIMIT

    def test_a_chunked_body_within_the_limit_is_read_whole(self, api_server, token):
        definition = (
            b'{"team": "ops", "name": "chunked", "task_type": "dts.noop", "args": {},'
            b' "description": "' + b"d" * 9000 + b'"}'
        )
        pieces = [definition[start : start + 1000] for start in range(0, len(definition), 1000)]

        response = self.post(api_server, token, iter(pieces))

        assert response.status_code == 201, response.text
        assert response.json()["name"] == "chunked"

    def test_a_padded_chunked_body_just_within_the_limit_is_parsed(self, api_server, token):
        """Whitespace pads a JSON body up to the limit, chunked: read whole, then validated."""
        head = b'{"team": "ops", "name": "padded", "task_type": "dts.noop"}'
        padding = Counted(LIMIT - len(head))

        response = self.post(api_server, token, iter([head, *padding]))

        assert response.status_code == 201, response.text


def asgi_call(
    app, messages: list[dict], headers: list[tuple[bytes, bytes]], path: str = "/api/v1/jobs/"
):
    """Call `app` with these receive() messages; what it read and what it sent."""
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    read, sent = [], []

    async def receive():
        message = messages[len(read)]
        read.append(message)
        return message

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return read, sent


def chunks(count: int, size: int) -> list[dict]:
    return [
        {"type": "http.request", "body": b"x" * size, "more_body": n < count - 1}
        for n in range(count)
    ]


@pytest.mark.parametrize("size", [100, 1000])
def test_the_middleware_stops_reading_once_the_limit_is_passed(settings, size):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    called = []

    async def django(scope, receive, send):
        called.append(scope)

    read, sent = asgi_call(BodyLimitMiddleware(django), chunks(50, size), headers=[])

    assert called == []
    assert sent[0]["status"] == 413
    assert len(read) == 1000 // size + 1  # the chunk that passed the limit is the last one read


def test_the_middleware_gives_django_a_chunked_body_with_its_length(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    seen = {}

    async def django(scope, receive, send):
        seen["headers"] = dict(scope["headers"])
        seen["body"] = await receive()

    headers = [(b"transfer-encoding", b"chunked")]
    asgi_call(BodyLimitMiddleware(django), chunks(10, 100), headers=headers)

    assert seen["headers"] == {b"content-length": b"1000"}
    assert seen["body"] == {"type": "http.request", "body": b"x" * 1000, "more_body": False}


def test_the_middleware_refuses_a_declared_length_over_the_limit_unread(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    read, sent = asgi_call(
        BodyLimitMiddleware(not_for_django), chunks(1, 1001), headers=[(b"content-length", b"1001")]
    )

    assert (read, sent[0]["status"]) == ([], 413)


async def not_for_django(scope, receive, send):
    raise AssertionError("not for Django")


def test_the_middleware_answers_the_error_djangos_own_check_answers(settings, world, client_as):
    """A body that bypasses the middleware (the test client's) meets Django's own check: the
    same 413, word for word."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"name": "' + b"x" * 2000 + b'"}'

    by_django = client_as("admin").generic(
        "POST", "/api/v1/jobs/", body, content_type="application/json"
    )
    _, sent = asgi_call(
        BodyLimitMiddleware(not_for_django),
        chunks(1, len(body)),
        headers=[(b"content-length", str(len(body)).encode())],
    )

    assert by_django.status_code == sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == by_django.json()
    assert by_django.json()["error"]["message"] == (
        "The request body is too large: at most 1000 bytes."
    )


@pytest.mark.parametrize("path", ["/admin/jobs/job/add/", "/live/login/"])
def test_outside_the_api_the_413_is_plain_text(settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    _, sent = asgi_call(
        BodyLimitMiddleware(not_for_django),
        chunks(1, 1001),
        headers=[(b"content-length", b"1001")],
        path=path,
    )

    assert sent[0]["status"] == 413
    assert dict(sent[0]["headers"])[b"content-type"] == b"text/plain; charset=utf-8"
    assert sent[1]["body"] == b"The request body is too large: at most 1000 bytes."
