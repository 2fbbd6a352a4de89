"""The WebSocket side of the web process: `/ws/…`, authenticated by session or API token, from
pages of an allowed host only (browsers send their page's Origin; the CLI sends the server's).
An address with no route is refused like a stream that does not exist (4404), not with an error."""

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path, re_path

from apps.accounts.services import token_authenticate
from apps.core.client import bearer_secret
from apps.live.consumers import NoRouteConsumer, StreamsConsumer


class TokenAuthMiddleware(BaseMiddleware):
    """`Authorization: Bearer <token>` (the CLI) takes the place of the session's user; the
    scheme is read as the REST API reads it (bearer_secret)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        secret = bearer_secret(dict(scope.get("headers", [])).get(b"authorization", b""))
        if secret is not None:
            token = await database_sync_to_async(token_authenticate)(secret=secret)
            scope = {
                **scope,
                "user": token.user if token is not None else None,
                "token_id": token.id if token is not None else None,
            }
        return await super().__call__(scope, receive, send)


consumer: Any = StreamsConsumer.as_asgi()
no_route: Any = NoRouteConsumer.as_asgi()
websocket_urlpatterns: list[Any] = [
    path("ws/runs/", consumer),
    path("ws/jobs/<int:job_id>/", consumer),
    path("ws/runs/<uuid:run_id>/", consumer),
    path("ws/workflow-runs/<uuid:workflow_run_id>/", consumer),
    re_path(r"", no_route),
]

websocket_application = AllowedHostsOriginValidator(
    AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
)
