"""Throttling that counts instead of logging: DRF's rates ("1200/minute") over fixed windows.

DRF's own throttles keep the time of every request in the window as one cache value, read and
rewritten whole by each request: at 1200/minute that is a list of up to 1200 numbers per request.
These keep one counter per client and window, incremented in the cache (INCR in Redis). A fixed
window lets a client send up to twice the rate across a window's boundary.

While the cache cannot be reached they let every request through (fail open): the API stays up
without its rate limits, and the outage is logged once, not once per request. The sign-in
lockout, kept in the database, still holds.

A client is its address as apps.core.client.client_address reads it, for these throttles and
for django-axes' sign-in lockout alike (AXES_CLIENT_IP_CALLABLE); DRF's own reading
(get_ident, NUM_PROXIES) is not used."""

import logging
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_message
from django.conf import settings
from django_redis.exceptions import ConnectionInterrupted  # type: ignore[import-untyped]
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from apps.core.client import client_address
from apps.core.outages import Outage, redis_outage

logger = logging.getLogger(__name__)

CACHE_UNREACHABLE = (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError)


def cache_outage() -> Outage | None:
    """The outage of the Redis that holds the counts (one per server in a process, shared); None
    when they are counted in memory (`make dev`), which is never unreachable."""
    cache = settings.CACHES["default"]
    if "redis" not in cache["BACKEND"].lower():
        return None
    return redis_outage(str(cache["LOCATION"]).split(",")[0])


class CountingThrottle(SimpleRateThrottle):
    num_requests: int  # set from the rate by SimpleRateThrottle
    duration: int

    def get_ident(self, request: Request) -> str:
        return client_address(request) or ""

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        try:
            count = self.count(f"{key}:{window}")
        except CACHE_UNREACHABLE as error:
            if outage := cache_outage():
                outage.failed(error)
            return True
        if outage := cache_outage():
            outage.succeeded()
        return bool(count <= self.num_requests)

    def count(self, counter: str) -> int:
        """`counter` incremented: the requests counted in its window, this one included."""
        try:
            return int(self.cache.incr(counter))
        except ValueError:  # the window's first request
            return 1 if self.cache.add(counter, 1, self.duration) else int(self.cache.incr(counter))

    def wait(self) -> float:
        return float(self.duration - self.now % self.duration)


class UserThrottle(CountingThrottle, UserRateThrottle):
    pass


class LoginThrottle(CountingThrottle, AnonRateThrottle):
    scope = "login"


def login_failed_lockout_check(request: Request) -> None:
    """Refuse (429) the failed token login that reached django-axes' limit, as the sign-in pages
    answer theirs: axes marks the request it was given (here DRF's, which its middleware does not
    see), so the API reads the mark itself."""
    if getattr(request, "axes_locked_out", False):
        raise LoginLockedOut()


def login_lockout_check(request: Request, *, username: str) -> None:
    """Refuse (429) a token login while django-axes has locked out its user name or its client
    address, before its password is checked: the API counts failed sign-ins together with the
    sign-in pages, so neither door adds guesses to the other's."""
    if not AxesProxyHandler.is_allowed(request, {"username": username}):
        raise LoginLockedOut()


class LoginLockedOut(exceptions.Throttled):
    def __init__(self) -> None:
        super().__init__(detail=str(get_lockout_message()))
        # Set here: given to Throttled, the wait would be said a second time in the message.
        self.wait = int(settings.AXES_COOLOFF_TIME.total_seconds())
