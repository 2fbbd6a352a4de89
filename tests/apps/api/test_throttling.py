import socket

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.api import throttling
from apps.api.throttling import CountingThrottle, UserThrottle
from apps.core.outages import Outage
from config.settings.base import cache_settings
from tests.factories import UserFactory

LOGIN_LIMIT = 10  # DTS_API_THROTTLE_LOGIN's default, 10/minute


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


@pytest.fixture
def cache_unreachable(settings, monkeypatch):
    """The cache on a port nothing listens on; a fresh outage record, so that its start is logged
    here whatever other tests saw."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = cache_settings(f"redis://127.0.0.1:{port}/0")
    outage = Outage(dependency="test", logger=throttling.logger)
    monkeypatch.setattr(throttling, "cache_outage", lambda: outage)


def test_the_api_answers_while_the_cache_is_down_and_says_so_once(
    client_as, cache_unreachable, caplog
):
    api = client_as("viewer")

    codes = [api.get("/api/v1/jobs/").status_code for _ in range(3)]

    assert codes == [200, 200, 200]
    assert caplog.text.count("test unreachable") == 1


def test_token_logins_answer_and_lock_out_while_the_cache_is_down(db, cache_unreachable):
    UserFactory(username="ann")
    body = {"username": "ann", "name": "cli"}

    def login(password: str) -> int:
        return (
            APIClient()
            .post("/api/v1/tokens/", {**body, "password": password}, format="json")
            .status_code
        )

    assert login("password") == 201
    # The throttle lets every login through; the lockout (in the database) still counts.
    assert [login("wrong") for _ in range(LOGIN_LIMIT)] == [401] * (LOGIN_LIMIT - 1) + [429]
    assert login("password") == 429
