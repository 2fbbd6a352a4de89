"""`make dev`: the whole platform in one process on SQLite and an in-memory broker."""

from .base import *  # noqa: F403
from .base import BASE_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dts-local-development-only-not-secret")

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'dts.sqlite3'}"),
}
# SQLite allows one writer; the web and worker threads wait for each other instead of failing.
DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
# The in-memory transport polls; a short interval keeps "Run now" snappy.
CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.1}

# There is no Kafka in `make dev`: write no events unless told to (and run a relay yourself).
DTS_EVENTS_ENABLED = env.bool("DTS_EVENTS_ENABLED", default=False)

# No Redis in `make dev`: API throttling counts in this process's memory.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# No Redis in `make dev`: the Channels layer and the streams' backlogs live in this process.
DTS_LIVE_REDIS_URL = None
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
