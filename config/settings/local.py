"""`make dev`: the whole platform in one process on SQLite and an in-memory broker."""

from .base import *  # noqa: F403
from .base import BASE_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dts-local-development-only-not-secret")

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'dts.sqlite3'}"),
}
# SQLite allows one writer at a time; the web, worker and scheduler threads of `make dev` wait
# for each other instead of failing with "database is locked":
# - every transaction takes the write lock when it begins (IMMEDIATE), waiting up to `timeout`
#   seconds for it. A transaction that read first and wrote later (the default, DEFERRED) cannot
#   wait: SQLite refuses its write at once when another writer got in between;
# - the write-ahead log lets readers (the pages, the API) read the last commit while a writer
#   writes, instead of waiting for its commit. It needs a local file system and keeps
#   `-wal` and `-shm` files beside the database.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL;",
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS | DATABASES["default"].get("OPTIONS", {})

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
