"""Deliveries sent to a real receiver on loopback (the operator's setting allows it here): signed,
retried with a doubling backoff, given up after the last attempt; and never sent to an address
the guard refuses, even when the name resolved elsewhere when the webhook was saved."""

import hashlib
import hmac
import json
import socket
import time

import pytest
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryState, Webhook
from apps.notifications.services import deliveries_send, delivery_redeliver, webhook_ping
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def allowed(settings):
    settings.DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.DTS_WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.DTS_WEBHOOK_TIMEOUT_SECONDS = 5


def hook(url, **fields):
    return Webhook.objects.create(
        team=TeamFactory(name="ops"), name="ops", url=url, secret=SECRET, **fields
    )


def send_until_over(delivery, timeout=10):
    deadline = time.monotonic() + timeout
    while (delivery := Delivery.objects.get(id=delivery.id)).state == DeliveryState.PENDING:
        assert time.monotonic() < deadline
        deliveries_send()
        time.sleep(0.02)
    return delivery


def test_a_delivery_is_posted_signed_and_logged(allowed, receiver):
    delivery = webhook_ping(webhook=hook(receiver.url))

    assert deliveries_send() == 1

    [request] = receiver.wait(1, timeout=5)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_status) == (
        DeliveryState.DELIVERED,
        1,
        200,
    )
    assert request.path == "/hooks/dts"
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["x-dts-event"] == "ping"
    assert headers["x-dts-delivery"] == str(delivery.id)
    assert headers["host"] == receiver.url.split("/")[2]
    signed = headers["x-dts-timestamp"].encode() + b"." + request.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["x-dts-signature"] == f"sha256={expected}"
    assert abs(int(headers["x-dts-timestamp"]) - time.time()) < 60
    body = json.loads(request.body)
    assert body["id"] == str(delivery.id)
    assert body["event"] == "ping"
    assert body["webhook"]["name"] == "ops"


def test_a_failed_attempt_is_tried_again_after_a_doubling_backoff_then_delivered(allowed, receiver):
    receiver.statuses = [500, 503]
    delivery = webhook_ping(webhook=hook(receiver.url))

    deliveries_send()
    first = Delivery.objects.get(id=delivery.id)
    delivered = send_until_over(delivery)

    assert (first.state, first.attempts, first.response_status) == ("pending", 1, 500)
    assert first.error.startswith("HTTP 500")
    assert first.next_attempt_at - first.last_attempt_at == pytest.approx(
        timezone.timedelta(seconds=0.05), abs=timezone.timedelta(seconds=0.01)
    )
    assert (delivered.state, delivered.attempts, delivered.error) == ("delivered", 3, "")
    ids = {request.headers["X-DTS-Delivery"] for request in receiver.wait(3, timeout=5)}
    assert ids == {str(delivery.id)}  # one delivery, however many attempts


def test_a_delivery_is_given_up_after_its_last_attempt_and_can_be_sent_again(
    allowed, receiver, settings
):
    settings.DTS_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500] * 3
    delivery = webhook_ping(webhook=hook(receiver.url))

    failed = send_until_over(delivery)
    again = send_until_over(delivery_redeliver(delivery=failed))

    assert (failed.state, failed.attempts, failed.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.wait(4, timeout=5)) == 4
    assert (again.state, again.attempts) == ("delivered", 1)


def test_a_redirect_is_not_followed(allowed, receiver):
    receiver.statuses = [302]
    delivery = webhook_ping(webhook=hook(receiver.url))

    deliveries_send()

    delivery.refresh_from_db()
    assert (delivery.state, delivery.response_status) == ("pending", 302)
    assert len(receiver.wait(2, timeout=1)) == 1


def test_nothing_is_sent_to_a_loopback_receiver_unless_the_operator_allows_it(receiver):
    delivery = webhook_ping(webhook=hook(receiver.url))  # written around the check

    deliveries_send()

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert "127.0.0.1, a loopback address" in delivery.error
    assert receiver.wait(1, timeout=0.5) == []


def test_a_name_that_resolves_to_a_private_address_at_sending_time_is_not_sent_to(
    receiver, monkeypatch
):
    """DNS rebinding: the name was public when the webhook was saved, and points inward now."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    delivery = webhook_ping(webhook=hook(f"http://hooks.example.test:{port}/hooks/dts"))
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
    )

    deliveries_send()

    delivery.refresh_from_db()
    assert delivery.state == "failed"
    assert "hooks.example.test reaches 127.0.0.1" in delivery.error
    assert receiver.wait(1, timeout=0.5) == []


def test_a_disabled_webhooks_deliveries_wait(allowed, receiver):
    delivery = webhook_ping(webhook=hook(receiver.url, enabled=False))

    assert deliveries_send() == 0

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("pending", 0)
