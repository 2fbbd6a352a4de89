"""Token logins are limited per client address, read from X-Forwarded-For only as far as trusted
proxies wrote it, and share django-axes' per-account and per-address lockout with the sign-in
pages."""

import re
from datetime import UTC, datetime

import pytest
import requests
import time_machine
from django.core.cache import cache
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from apps.core.client import client_address
from tests.factories import UserFactory
from tests.processes import standalone_start

LIMIT = 10  # DTS_API_THROTTLE_LOGIN's default, 10/minute


@pytest.fixture(autouse=True)
def private_throttle_counts(settings):
    """Counts in this process only: the tests' Redis is shared with other test runs, which clear
    it and log in from 127.0.0.1 too."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()


@pytest.fixture
def frozen_clock():
    """Time stands still: the throttle counts in fixed windows of a minute, and a test that
    crossed into the next one would see its count start again."""
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC), tick=False):
        yield


def token_login(username: str, password: str, **headers: str):
    body = {"username": username, "password": password, "name": "cli"}
    return APIClient().post("/api/v1/tokens/", body, format="json", headers=headers)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "address"),
    [
        (0, "198.51.100.1", "192.0.2.10"),  # no proxy trusted: the header is the client's word
        (0, None, "192.0.2.10"),
        (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the entry our proxy appended
        (1, "203.0.113.7", "203.0.113.7"),
        (1, None, "192.0.2.10"),  # not through the proxy: the peer itself
        (2, "198.51.100.1, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),  # fewer entries than proxies: the left-most
        (1, "198.51.100.1, not-an-address", "192.0.2.10"),  # garbage: the peer, not the garbage
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_the_client_address_trusts_only_the_entries_trusted_proxies_wrote(
    settings, proxies, forwarded, address
):
    settings.DTS_TRUSTED_PROXIES = proxies
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.10", **headers)

    assert client_address(request) == address


def test_a_changing_x_forwarded_for_does_not_reset_the_login_throttle(db, settings, frozen_clock):
    """The throttle alone (django-axes off): each request claims another address."""
    settings.AXES_ENABLED = False

    codes = [
        token_login("nobody", "wrong", x_forwarded_for=f"198.51.100.{i}").status_code
        for i in range(LIMIT + 5)
    ]

    assert codes == [401] * LIMIT + [429] * 5


def test_guessing_passwords_with_a_changing_x_forwarded_for_stays_refused(db, frozen_clock):
    codes = [
        token_login(f"user{i}", "wrong", x_forwarded_for=f"198.51.100.{i}").status_code
        for i in range(LIMIT + 15)
    ]

    # The address's LIMIT-th failure locks it out (django-axes), then the throttle refuses too.
    assert codes == [401] * (LIMIT - 1) + [429] * 16


@pytest.mark.parametrize(
    ("lockout", "refused_from"),
    [(True, LIMIT), (False, LIMIT + 1)],  # the lockout answers the LIMIT-th failure itself
    ids=["throttle and lockout", "throttle"],
)
def test_behind_a_trusted_proxy_each_client_behind_it_has_its_own_count(
    db, settings, frozen_clock, lockout, refused_from
):
    settings.DTS_TRUSTED_PROXIES = 1
    settings.AXES_ENABLED = lockout
    # The client writes what it likes on the left; the proxy appends the address it saw.
    first = [
        token_login(f"user{i}", "wrong", x_forwarded_for=f"10.9.9.{i}, 203.0.113.7").status_code
        for i in range(LIMIT + 1)
    ]
    second = token_login("another", "wrong", x_forwarded_for="10.9.9.1, 203.0.113.8")

    assert first == [401] * (refused_from - 1) + [429] * (LIMIT + 2 - refused_from)
    assert second.status_code == 401


def test_one_account_guessed_from_many_addresses_is_locked_out_right_password_included(
    db, settings, frozen_clock
):
    settings.DTS_TRUSTED_PROXIES = 1
    UserFactory(username="ann")

    guesses = [
        token_login("ann", "wrong", x_forwarded_for=f"203.0.113.{i}").status_code
        for i in range(LIMIT)
    ]
    refused = token_login("ann", "password", x_forwarded_for="203.0.113.200")

    assert guesses == [401] * (LIMIT - 1) + [
        429
    ]  # the LIMIT-th failure is answered with the lockout
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "throttled"
    assert error["message"] == (
        "Too many failed sign-ins for this user name or from this address: try again in a minute."
    )
    assert int(refused["Retry-After"]) == 60
    # Another account from that address is not locked out.
    assert token_login("bob", "wrong", x_forwarded_for="203.0.113.200").status_code == 401


@pytest.mark.parametrize("door", ["token login", "/live/login/", "/admin/login/"])
def test_every_sign_in_door_answers_the_limit_th_failure_with_the_lockout(db, frozen_clock, door):
    """The same number at every door: LIMIT - 1 failures are answered as failures, the LIMIT-th
    and those after it as the lockout (429)."""
    UserFactory(username="ann")

    def refused() -> bool:
        if door == "token login":
            response = token_login("ann", "wrong")
        else:
            response = Client().post(door, {"username": "ann", "password": "wrong"})
        return response.status_code == 429

    assert [refused() for _ in range(LIMIT + 1)] == [False] * (LIMIT - 1) + [True] * 2


def test_failures_at_the_sign_in_page_count_for_the_token_login_too(db):
    UserFactory(username="ann")
    page = Client()
    for _ in range(LIMIT):
        page.post("/live/login/", {"username": "ann", "password": "wrong"})

    assert token_login("ann", "password").status_code == 429


@pytest.fixture
def standalone(tmp_path):
    """`make dev`'s process (manage.py run_standalone) on a SQLite file of its own: its URL."""
    yield from (url for url, _log, _process in standalone_start(tmp_path))


def test_make_dev_does_not_take_the_client_address_from_x_forwarded_for(standalone):
    """The server in front of Django (uvicorn) must not rewrite the peer's address from the
    header either: it trusts 127.0.0.1 to send it unless told not to."""
    codes = [
        requests.post(
            f"{standalone}/api/v1/tokens/",
            json={"username": f"user{i}", "password": "wrong", "name": "x"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
            timeout=10,
        ).status_code
        for i in range(LIMIT + 5)
    ]

    # The address's LIMIT-th failure locks it out (django-axes, counted in the database: no window
    # to cross), then the throttle refuses too.
    assert codes == [401] * (LIMIT - 1) + [429] * 6


@pytest.mark.parametrize("page", ["/live/login/", "/admin/login/"])
def test_make_dev_locks_out_its_sign_in_pages(standalone, page):
    """Under the ASGI server, where django-axes' middleware runs in its async form."""
    browser = requests.Session()
    form = browser.get(f"{standalone}{page}", timeout=10).text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)

    def sign_in(password: str) -> requests.Response:
        body = {"username": "admin", "password": password, "csrfmiddlewaretoken": csrf}
        return browser.post(f"{standalone}{page}", data=body, timeout=10, allow_redirects=False)

    codes = [sign_in("wrong").status_code for _ in range(LIMIT + 2)]
    refused = sign_in("admin")  # the demo's password

    assert codes == [200] * (LIMIT - 1) + [429] * 3
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert "Too many failed sign-ins for this user name or from this address" in refused.text
