"""The WebSocket side of the web process: `/ws/…`, authenticated by session or API token, from
pages of an allowed host only (browsers send their page's Origin; the CLI sends the server's)."""

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from apps.accounts.services import token_authenticate
from apps.live.consumers import StreamsConsumer


class TokenAuthMiddleware(BaseMiddleware):
    """`Authorization: Bearer <token>` (the CLI) takes the place of the session's user."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() == "bearer" and secret:
            token = await database_sync_to_async(token_authenticate)(secret=secret.strip())
            scope = {**scope, "user": token.user if token is not None else None}
        return await super().__call__(scope, receive, send)


consumer: Any = StreamsConsumer.as_asgi()
websocket_urlpatterns: list[Any] = [
    path("ws/runs/", consumer),
    path("ws/jobs/<int:job_id>/", consumer),
    path("ws/runs/<uuid:run_id>/", consumer),
]

websocket_application = AllowedHostsOriginValidator(
    AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
)
