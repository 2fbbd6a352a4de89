"""Webhooks told by a real scheduler process (its Notifier thread) of a run a real worker failed:
the receiver on loopback (the operator's setting allows it) gets the signed notice, once, after
the first attempt it refused is tried again."""

import hashlib
import hmac
import json

import pytest

from apps.notifications.models import Delivery, DeliveryState
from apps.notifications.services import webhook_create, webhook_notify_resolved
from apps.runs.models import RunTrigger
from apps.runs.services.build import run_trigger
from apps.runs.states import RunState
from tests.webhooks import receiver_running
from tests.workers.conftest import job, wait_for_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

SECRET = "a-secret-of-some-length"


def test_a_failed_run_is_told_to_the_webhook_signed_and_retried_until_delivered(cluster, settings):
    settings.DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # for the check when it is saved here
    cluster.worker("w")
    cluster.scheduler(
        env={"DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1", "DTS_WEBHOOK_RETRY_BASE_SECONDS": "0.5"}
    )
    failing = job("nightly", "dts.fail", {"message": "disk full"}, max_attempts=1)
    with receiver_running() as receiver:
        receiver.statuses = [503]
        webhook_create(
            team=failing.team,
            name="ops",
            url=receiver.url,
            secret=SECRET,
            notify=webhook_notify_resolved(failing.team, [{"job": "nightly", "on": ["failure"]}]),
        )
        run = run_trigger(job=failing, trigger=RunTrigger.MANUAL)
        wait_for_state(run.id, RunState.FAILED)

        first, second = receiver.wait(2, timeout=30)

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.event) == (
        DeliveryState.DELIVERED,
        2,
        "run.failed",
    )
    assert first.body == second.body
    headers = {name.lower(): value for name, value in second.headers.items()}
    signed = headers["x-dts-timestamp"].encode() + b"." + second.body
    assert hmac.compare_digest(
        headers["x-dts-signature"],
        "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest(),
    )
    notice = json.loads(second.body)
    assert notice["event"] == "run.failed"
    assert notice["run"]["id"] == str(run.id)
    assert "disk full" in notice["run"]["error"]
