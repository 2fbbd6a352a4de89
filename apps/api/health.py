"""`/healthz`: the process answers. `/readyz`: it can reach the database and Redis. Neither needs
authentication: load balancers and Kubernetes probes call them.

The web process starts and keeps answering while PostgreSQL or Redis is down: `/readyz` says
which is unreachable (503), and the process's log says so once per outage, with a reminder each
minute and its end (apps.core.outages), however often it is probed."""

import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

from apps.core.outages import Outage

logger = logging.getLogger(__name__)

_database = Outage(dependency="PostgreSQL", logger=logger)
_redis = Outage(dependency="Redis (the broker)", logger=logger)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    ready = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as problem:
        _database.failed(problem)
        return False
    _database.succeeded()
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
        _redis.failed(problem)
        return False
    _redis.succeeded()
    return answered
