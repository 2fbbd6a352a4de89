"""The request body limit, enforced while the body arrives (config/asgi.py puts it in front of
Django for HTTP).

Django checks `DATA_UPLOAD_MAX_MEMORY_SIZE` (`DTS_API_MAX_BODY_BYTES`) only against a declared
Content-Length, after its ASGI handler has already spooled the whole body to disk; a chunked body,
which declares none, it reads as empty. Here a declared length over the limit is refused before a
byte is read, and a chunked body is counted as it comes: past the limit the answer is 413 at once,
the rest unread; within it, Django gets the body with its length. The 413 is the API's error shape
under /api/ (apps.api.errors, as Django's own check answers it), its message as plain text
elsewhere.
"""

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings

from apps.api.errors import body_too_large_error, body_too_large_message

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if scope["type"] != "http" or limit is None:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit():
            # The server reads no more than the declared length: the limit holds without counting.
            if int(declared) > limit:
                await _too_large(scope, send)
            else:
                await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(_with_length(scope, size), _replayed(b"".join(chunks), receive), send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _with_length(scope: Scope, size: int) -> Scope:
    """The scope with the body's length declared, as Django reads only a declared length."""
    headers = [
        (key, value)
        for key, value in scope.get("headers", [])
        if key.lower() not in (b"content-length", b"transfer-encoding")
    ]
    return {**scope, "headers": [*headers, (b"content-length", str(size).encode())]}


def _replayed(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the body read already, then what the client sends next (its
    disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


async def _too_large(scope: Scope, send: Send) -> None:
    if scope["path"].startswith("/api/"):
        body, content_type = json.dumps(body_too_large_error()).encode(), b"application/json"
    else:
        body, content_type = body_too_large_message().encode(), b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body stays unread: this connection cannot carry another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
