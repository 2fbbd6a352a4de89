"""Throttling that counts instead of logging: DRF's rates ("1200/minute") over fixed windows.

DRF's own throttles keep the time of every request in the window as one cache value, read and
rewritten whole by each request: at 1200/minute that is a list of up to 1200 numbers per request.
These keep one counter per client and window, incremented in the cache (INCR in Redis). A fixed
window lets a client send up to twice the rate across a window's boundary.

A client is its address as `client_address` reads it, for these throttles and for django-axes'
sign-in lockout alike (AXES_CLIENT_IP_CALLABLE)."""

import ipaddress
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_message
from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


def client_address(request: HttpRequest | Request) -> str | None:
    """The address of the client that sent `request`.

    Each of the DTS_TRUSTED_PROXIES reverse proxies in front of the web process appends the
    address it received the request from to X-Forwarded-For, so the client is the entry the
    outermost of them wrote: the N-th from the right. Entries left of it are the client's own
    words. With no trusted proxy the header is ignored and the peer (REMOTE_ADDR) is the client."""
    peer: str | None = request.META.get("REMOTE_ADDR")
    proxies: int = settings.DTS_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies == 0 or not forwarded.strip():
        return peer
    entries = [entry.strip() for entry in forwarded.split(",")]
    try:
        return str(ipaddress.ip_address(entries[-min(proxies, len(entries))]))
    except ValueError:
        # Not an address, so no proxy of ours wrote it (DTS_TRUSTED_PROXIES counts too many):
        # count the request against the peer rather than a name anyone can vary.
        return peer


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
        counter = f"{key}:{window}"
        try:
            count = self.cache.incr(counter)
        except ValueError:  # the window's first request
            count = 1 if self.cache.add(counter, 1, self.duration) else self.cache.incr(counter)
        return bool(count <= self.num_requests)

    def wait(self) -> float:
        return float(self.duration - self.now % self.duration)


class UserThrottle(CountingThrottle, UserRateThrottle):
    pass


class LoginThrottle(CountingThrottle, AnonRateThrottle):
    scope = "login"


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
