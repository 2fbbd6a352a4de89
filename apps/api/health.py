"""`/healthz`: the process answers. `/readyz`: it can reach the database and each Redis it uses
(the broker, the cache that counts API throttling, the live streams' Redis). Neither needs
authentication: load balancers and Kubernetes probes call them.

The web process starts and keeps answering while PostgreSQL or Redis is down: `/readyz` says
which is unreachable (503), and the process's log says so once per outage, with a reminder each
minute and its end (apps.core.outages), however often it is probed: Django's own line for each
503 of /readyz is filtered out of `django.request`."""

import logging

import redis
from django.conf import settings
from django.db import Error, connection
from django.http import HttpRequest, JsonResponse

from apps.core.outages import database_outage, database_unreachable, redis_outage

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _database_ok(),
        "broker": _redis_ok(settings.CELERY_BROKER_URL),
        "cache": all(_redis_ok(url) for url in _cache_redis_urls()),
        "live": _redis_ok(settings.DTS_LIVE_REDIS_URL),
    }
    ready = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


class ReadyzUnavailableFilter(logging.Filter):
    """Drops `django.request`'s line for a 503 of /readyz: the outage behind it is logged once
    (above), while probes come every few seconds. Any other response of any view is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        match = getattr(request, "resolver_match", None)
        return not (
            getattr(record, "status_code", None) == 503
            and match is not None
            and match.func is readyz
        )


logging.getLogger("django.request").addFilter(ReadyzUnavailableFilter())


def _database_ok() -> bool:
    # The outages are looked up at the first probe: a process that only imports this module
    # (the relay loads the URLconf for its checks) must not report them in its metrics.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Error as problem:  # InterfaceError (a closed connection) is no DatabaseError
        if database_unreachable(problem):
            database_outage().failed(problem)
        else:
            logger.exception("Readiness check of the database failed")
        return False
    database_outage().succeeded()
    return True


def _cache_redis_urls() -> list[str]:
    """The Redis servers of the default cache (none in `make dev`: it counts in memory)."""
    cache = settings.CACHES["default"]
    if "redis" not in cache["BACKEND"].lower():
        return []
    location = cache["LOCATION"]
    urls = location if isinstance(location, list | tuple) else location.split(",")
    return [url.strip() for url in urls]


def _redis_ok(url: str | None) -> bool:
    if not url or not url.startswith(("redis", "unix")):
        return True  # make dev: an in-memory broker, cache and channel layer
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            answered = bool(client.ping())
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError) as problem:
        redis_outage(url).failed(problem)
        return False
    except redis.RedisError:
        logger.exception("Readiness check of Redis at %s failed", redis_outage(url).address)
        return False
    redis_outage(url).succeeded()
    return answered
