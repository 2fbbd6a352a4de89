"""The web process: `uvicorn config.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# Every request runs in a new thread: take database connections from a pool (settings/base.py).
os.environ.setdefault("DTS_DATABASE_POOL", "true")

application = get_asgi_application()
