"""The sign-in pages (/live/login/ and /admin/login/) lock out, with django-axes, a user name or a
client address after DTS_API_THROTTLE_LOGIN's count of failed sign-ins, for its period."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from tests.factories import UserFactory

LIMIT = 10  # DTS_API_THROTTLE_LOGIN's default, 10/minute
MESSAGE = "Too many failed sign-ins for this user name or from this address: try again in a minute."
PAGES = ["/live/login/", "/admin/login/"]


@pytest.fixture
def ann(db):
    return UserFactory(username="ann", is_staff=True)  # staff: the admin lets her in too


def sign_in(page: str, username: str, password: str, address: str = "192.0.2.10"):
    return Client(REMOTE_ADDR=address).post(page, {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.mark.parametrize("page", PAGES)
def test_one_account_guessed_from_many_addresses_is_locked_out(ann, page):
    responses = [sign_in(page, "ann", "wrong", f"203.0.113.{i}") for i in range(25)]

    assert [response.status_code for response in responses] == [200] * (LIMIT - 1) + [429] * (
        25 - LIMIT + 1
    )
    locked = responses[-1]
    assert MESSAGE in locked.content.decode()
    assert locked["Retry-After"] == "60"
    assert 'name="password"' in locked.content.decode()  # the form again, to try later


@pytest.mark.parametrize("page", PAGES)
def test_many_accounts_guessed_from_one_address_are_locked_out(ann, page):
    codes = [sign_in(page, f"user{i}", "wrong").status_code for i in range(25)]

    assert codes == [200] * (LIMIT - 1) + [429] * (25 - LIMIT + 1)
    # Ann's own account is refused from that address, and not from another.
    assert sign_in(page, "ann", "password").status_code == 429
    assert signed_in(sign_in(page, "ann", "password", address="198.51.100.1"))


@pytest.mark.parametrize("page", PAGES)
def test_a_changing_x_forwarded_for_does_not_escape_the_address_lockout(ann, page):
    client = Client(REMOTE_ADDR="192.0.2.10")
    codes = [
        client.post(
            page,
            {"username": f"user{i}", "password": "wrong"},
            headers={"x-forwarded-for": f"198.51.100.{i}"},
        ).status_code
        for i in range(LIMIT + 5)
    ]

    assert codes == [200] * (LIMIT - 1) + [429] * 6


@pytest.mark.parametrize("page", PAGES)
def test_the_right_password_is_refused_during_the_lockout_and_accepted_after_it(ann, page):
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        for i in range(LIMIT):
            sign_in(page, "ann", "wrong", f"203.0.113.{i}")

        clock.move_to(start + timedelta(seconds=59))
        during = sign_in(page, "ann", "password", "198.51.100.1")
        refused_while_locked = not signed_in(during)
        clock.move_to(start + timedelta(seconds=61))
        # Inside the travel: the session it starts expires two weeks after the travelled time.
        accepted_after = signed_in(sign_in(page, "ann", "password", "198.51.100.1"))

    assert during.status_code == 429
    assert MESSAGE in during.content.decode()
    assert refused_while_locked
    assert accepted_after


def test_a_wrong_password_below_the_limit_answers_the_form_with_its_error(ann):
    response = sign_in("/live/login/", "ann", "wrong")

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert MESSAGE not in response.content.decode()
