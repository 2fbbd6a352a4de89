"""`/healthz`: the process answers. `/readyz`: it can reach the database and each Redis it uses
(the broker, the cache that counts API throttling, the live streams' Redis and the Channels
layer's). Neither needs authentication: load balancers and Kubernetes probes call them.

The web process starts and keeps answering while PostgreSQL or Redis is down: `/readyz` says
which is unreachable (503: `checks` false for it, and `failed` names its server without
credentials), and the process's log says so once per outage, with a reminder each minute and its
end (apps.core.outages), however often it is probed: Django's own line for each 503 of /readyz is
filtered out of `django.request`.

Kubelet probes and Prometheus scrapes reach a web pod by its address, over plain HTTP inside the
cluster: ALLOWED_HOSTS would refuse their Host header (400) and production's HTTPS redirect send
them away (301). ProbesMiddleware answers them, and `/metrics`, before those checks: none of the
three builds a URL from the Host header, which is what ALLOWED_HOSTS protects. These three paths
have no URL route: the middleware is their only door. `/readyz` (which names the backing servers)
and `/metrics` are for the cluster only: a request a proxy forwarded (it carries
X-Forwarded-For, as every reverse proxy and ingress controller adds) is not answered (404)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import Error, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_prometheus.exports import ExportToDjangoView

from apps.core.outages import Outage, database_outage, database_unreachable, redis_outage

logger = logging.getLogger(__name__)

# A probe answers within a few seconds even when a server drops packets instead of refusing.
REDIS_TIMEOUT_SECONDS = 1.0


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


class ProbesMiddleware:
    """Answers GET and HEAD of /healthz, and of /readyz and /metrics unless a proxy forwarded
    them, whatever the Host header and the scheme; everything else goes on through the
    middleware (to a 404 for those paths). Placed before SecurityMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if (
            probe is not None
            and request.method in {"GET", "HEAD"}
            and (probe is healthz or "HTTP_X_FORWARDED_FOR" not in request.META)
        ):
            return probe(request)
        return self.get_response(request)


def readyz(request: HttpRequest) -> JsonResponse:
    probe = _Probe()
    checks = {
        "database": probe.database_ok(),
        "broker": probe.redis_ok("broker", [settings.CELERY_BROKER_URL]),
        "cache": probe.redis_ok("cache", _cache_redis_urls()),
        "live": probe.redis_ok("live", [settings.DTS_LIVE_REDIS_URL, *_channel_layer_urls()]),
    }
    ready = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks, "failed": probe.failed},
        status=200 if ready else 503,
    )


class ReadyzUnavailableFilter(logging.Filter):
    """Drops `django.request`'s line for a 503 of /readyz: the outage behind it is logged once
    (above), while probes come every few seconds. Any other response of any view is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return not (
            getattr(record, "status_code", None) == 503
            and getattr(request, "path_info", None) == "/readyz"
        )


logging.getLogger("django.request").addFilter(ReadyzUnavailableFilter())


@dataclass
class _Probe:
    """One /readyz answer: what failed, and which Redis servers were found unreachable (the
    databases of one server are up or down together: it is not waited for twice)."""

    failed: list[dict[str, str]] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)

    def database_ok(self) -> bool:
        # The outages are looked up at the first probe: a process that only imports this module
        # (the relay loads the URLconf for its checks) must not report them in its metrics.
        outage = database_outage()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Error as problem:  # InterfaceError (a closed connection) is no DatabaseError
            if database_unreachable(problem):
                outage.failed(problem)
            else:
                logger.exception("Readiness check of the database failed")
            self._fail("database", outage)
            return False
        outage.succeeded()
        return True

    def redis_ok(self, check: str, urls: list[str | None]) -> bool:
        """Whether every Redis of `urls` answers; URLs of no Redis (make dev's in-memory broker,
        cache and channel layer) are not checked."""
        ok = True
        redis_urls = [url for url in urls if url and url.startswith(("redis", "unix"))]
        for url in dict.fromkeys(redis_urls):
            outage = redis_outage(url)
            if outage.address in self.unreachable or not self._ping(url, outage):
                self._fail(check, outage)
                ok = False
        return ok

    def _ping(self, url: str, outage: Outage) -> bool:
        try:
            client = redis.Redis.from_url(
                url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            try:
                answered = bool(client.ping())
            finally:
                client.close()
        except (redis.ConnectionError, redis.TimeoutError) as problem:
            outage.failed(problem)
            self.unreachable.add(outage.address)
            return False
        except redis.RedisError:
            logger.exception("Readiness check of Redis at %s failed", outage.address)
            return False
        outage.succeeded()
        return answered

    def _fail(self, check: str, outage: Outage) -> None:
        failure = {"check": check, "service": outage.dependency, "address": outage.address}
        if failure not in self.failed:
            self.failed.append(failure)


def _cache_redis_urls() -> list[str | None]:
    """The Redis servers of the default cache (none in `make dev`: it counts in memory)."""
    cache = settings.CACHES["default"]
    if "redis" not in cache["BACKEND"].lower():
        return []
    location = cache["LOCATION"]
    urls = location if isinstance(location, list | tuple) else location.split(",")
    return [url.strip() for url in urls]


def _channel_layer_urls() -> list[str | None]:
    """The Redis servers of the default Channels layer (none in `make dev`: it is in memory).
    channels-redis takes a host as a URL, a (host, port) pair or a dict with an `address`."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if "redis" not in layer.get("BACKEND", "").lower():
        return []
    return [_host_url(host) for host in layer.get("CONFIG", {}).get("hosts", [])]


def _host_url(host: Any) -> str | None:
    if isinstance(host, dict):
        host = host.get("address")
    if isinstance(host, list | tuple) and len(host) == 2:
        return f"redis://{host[0]}:{host[1]}"
    return host if isinstance(host, str) else None


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": ExportToDjangoView,
}
