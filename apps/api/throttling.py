"""Throttling that counts instead of logging: DRF's rates ("1200/minute") over fixed windows.

DRF's own throttles keep the time of every request in the window as one cache value, read and
rewritten whole by each request: at 1200/minute that is a list of up to 1200 numbers per request.
These keep one counter per client and window, incremented in the cache (INCR in Redis). A fixed
window lets a client send up to twice the rate across a window's boundary."""

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class CountingThrottle(SimpleRateThrottle):
    num_requests: int  # set from the rate by SimpleRateThrottle
    duration: int

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
