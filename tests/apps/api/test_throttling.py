from django.core.cache import cache

from apps.api.throttling import CountingThrottle, UserThrottle


class ThreePerMinute(CountingThrottle):
    rate = "3/minute"
    cache = cache

    def get_cache_key(self, request, view):
        return "throttle_test"


def test_a_window_admits_its_rate_then_refuses_until_the_next_window(monkeypatch):
    throttle = ThreePerMinute()
    clock = iter([600.0, 610.0, 620.0, 630.0, 660.5])
    monkeypatch.setattr(throttle, "timer", lambda: next(clock))

    admitted = [throttle.allow_request(None, None) for _ in range(4)]

    assert admitted == [True, True, True, False]
    assert throttle.wait() == 30  # the window [600, 660) ends in 30 s
    assert throttle.allow_request(None, None)  # a new window
    assert cache.get("throttle_test:11") == 1


def test_a_window_counter_expires_with_its_window():
    throttle = ThreePerMinute()

    throttle.allow_request(None, None)

    key = f"throttle_test:{int(throttle.now // 60)}"
    assert 0 < cache.ttl(key) <= 60


def test_a_user_over_the_rate_gets_429_with_retry_after(client_as, monkeypatch):
    monkeypatch.setattr(UserThrottle, "THROTTLE_RATES", {"user": "2/minute"})
    api = client_as("viewer")

    codes = [api.get("/api/v1/jobs/").status_code for _ in range(3)]
    refused = api.get("/api/v1/jobs/")

    assert codes == [200, 200, 429]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "throttled"
    # Another user has a count of their own.
    assert client_as("admin").get("/api/v1/jobs/").status_code == 200
