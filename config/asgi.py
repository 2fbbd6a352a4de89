"""The web process: `uvicorn config.asgi:application`. HTTP goes to Django through the body limit
(config/body_limit.py), `/ws/…` to Channels (apps.live.routing)."""

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# Every request runs in a new thread: take database connections from a pool (settings/base.py).
os.environ.setdefault("DTS_DATABASE_POOL", "true")

django_application = get_asgi_application()  # sets Django up before the consumers are imported

from apps.live.routing import websocket_application  # noqa: E402
from config.body_limit import BodyLimitMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {"http": BodyLimitMiddleware(django_application), "websocket": websocket_application}
)
