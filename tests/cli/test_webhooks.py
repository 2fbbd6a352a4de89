"""`dts webhooks` against a live server: listed, shown without their secret, pinged, their
delivery log read and a failed delivery sent again."""

import pytest
import yaml

from apps.notifications.models import Delivery, DeliveryState
from apps.notifications.services import webhook_create
from cli.client import ExitCode
from tests.cli.conftest import as_json

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_webhooks_log_is_read_and_a_failed_delivery_sent_again(dts, team):
    webhook_create(
        team=team, name="ops-hook", url="https://93.184.215.14/hooks", secret="s" * 20, notify=[]
    )

    listed = as_json(dts("webhooks", "ls", "-o", "json"))
    shown = yaml.safe_load(dts("webhooks", "show", "ops-hook").stdout)
    pinged = as_json(dts("webhooks", "ping", "ops-hook", "-o", "json"))
    Delivery.objects.filter(id=pinged["id"]).update(
        state=DeliveryState.FAILED, attempts=8, error="HTTP 500: down"
    )
    table = dts("webhooks", "deliveries", "ops-hook").stdout
    log = as_json(dts("webhooks", "deliveries", "ops-hook", "--state", "failed", "-o", "json"))
    again = as_json(dts("webhooks", "redeliver", "ops-hook", pinged["id"], "-o", "json"))
    refused = dts("webhooks", "redeliver", "ops-hook", pinged["id"], expect=ExitCode.INVALID)
    missing = dts("webhooks", "show", "nope", expect=ExitCode.NOT_FOUND)

    assert [webhook["name"] for webhook in listed] == ["ops-hook"]
    assert "secret" not in shown
    assert shown["url"] == "https://93.184.215.14/hooks"
    assert pinged["event"] == "ping"
    assert "ping" in table
    assert [(d["id"], d["error"]) for d in log] == [(pinged["id"], "HTTP 500: down")]
    assert (again["state"], again["attempts"]) == ("pending", 0)
    assert "Only a failed delivery" in refused.stderr
    assert "No webhook named 'nope' in your teams." in missing.stderr
