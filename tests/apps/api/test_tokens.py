from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import token_create

pytestmark = pytest.mark.django_db


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_login_trades_a_password_for_a_token_stored_only_hashed(world):
    response = APIClient().post(
        "/api/v1/tokens/",
        {"username": "viewer", "password": "password", "name": "laptop", "days": 7},
        format="json",
    )

    assert response.status_code == 201, response.content
    secret = response.json()["token"]
    assert secret.startswith("dts_")
    token = ApiToken.objects.get()
    assert secret not in (token.key_hash, token.prefix)
    assert secret.startswith(token.prefix)
    assert bearer(secret).get("/api/v1/jobs/").status_code == 200


def test_a_wrong_password_is_refused():
    response = APIClient().post(
        "/api/v1/tokens/",
        {"username": "nobody", "password": "wrong", "name": "x"},
        format="json",
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize("case", ["revoked", "expired", "unknown", "inactive user"])
def test_a_token_that_is_no_longer_good_is_refused(world, case):
    token, secret = token_create(user=world.users["viewer"], name="t")
    if case == "revoked":
        bearer(secret).delete(f"/api/v1/tokens/{token.id}/")
    elif case == "expired":
        ApiToken.objects.filter(id=token.id).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    elif case == "unknown":
        secret += "x"
    else:
        world.users["viewer"].is_active = False
        world.users["viewer"].save()

    response = bearer(secret).get("/api/v1/jobs/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_read_only_token_reads_but_changes_nothing(world):
    _, secret = token_create(user=world.users["admin"], name="ro", read_only=True)
    client = bearer(secret)

    assert client.get(f"/api/v1/jobs/{world.job.id}/").status_code == 200
    response = client.post(f"/api/v1/jobs/{world.job.id}/pause/")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This token is read-only."


def test_a_user_lists_and_revokes_only_their_own_tokens(world):
    mine, secret = token_create(user=world.users["viewer"], name="mine")
    theirs, _ = token_create(user=world.users["admin"], name="theirs")
    client = bearer(secret)

    assert [token["name"] for token in client.get("/api/v1/tokens/").json()] == ["mine"]
    assert client.delete(f"/api/v1/tokens/{theirs.id}/").status_code == 404
    assert client.delete(f"/api/v1/tokens/{mine.id}/").json()["revoked_at"] is not None


@pytest.mark.parametrize(("field", "value"), [("days", 0), ("days", 366), ("name", "")])
def test_a_bad_token_request_names_its_field(world, field, value):
    body = {"username": "viewer", "password": "password", "name": "n", field: value}

    response = APIClient().post("/api/v1/tokens/", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_logins_are_throttled(settings):
    """The request throttle alone (the sign-in lockout, tests/apps/api/test_login_throttle.py,
    answers the 10th failure itself); in one window of its minute, time standing still."""
    settings.AXES_ENABLED = False
    body = {"username": "nobody", "password": "wrong", "name": "x"}
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC), tick=False):
        codes = [
            APIClient().post("/api/v1/tokens/", body, format="json").status_code for _ in range(11)
        ]

    assert codes == [401] * 10 + [429]
