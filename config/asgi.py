"""The web process: `uvicorn config.asgi:application`. HTTP goes to Django, `/ws/…` to Channels
(apps.live.routing)."""

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# Every request runs in a new thread: take database connections from a pool (settings/base.py).
os.environ.setdefault("DTS_DATABASE_POOL", "true")

django_application = get_asgi_application()  # sets Django up before the consumers are imported

from apps.live.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": django_application, "websocket": websocket_application})
