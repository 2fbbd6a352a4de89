"""`/healthz`: the process answers. `/readyz`: it can reach the database and Redis. Neither needs
authentication: load balancers and Kubernetes probes call them.

The web process starts and keeps answering while PostgreSQL or Redis is down: `/readyz` says
which is unreachable (503), and the process's log says so once per outage, with a reminder each
minute and its end (apps.core.outages), however often it is probed."""

import functools
import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

from apps.core.outages import Outage

logger = logging.getLogger(__name__)


@functools.cache
def _outage(dependency: str) -> Outage:
    """Made at the first probe: a process that only imports this module (the relay loads the
    URLconf for its checks) must not report these dependencies in its metrics."""
    return Outage(dependency=dependency, logger=logger)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    ready = all(checks.values())
    response = JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
    # The outage is logged above, once: Django would add an error line for every probe's 503.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as problem:
        _outage("PostgreSQL").failed(problem)
        return False
    _outage("PostgreSQL").succeeded()
    return True


def _redis_ok() -> bool:
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return True  # make dev: an in-memory broker
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
        )
        answered = bool(client.ping())
    except redis.RedisError as problem:
        _outage("Redis (the broker)").failed(problem)
        return False
    _outage("Redis (the broker)").succeeded()
    return answered
