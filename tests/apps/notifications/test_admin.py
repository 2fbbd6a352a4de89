"""Webhooks in the admin: made with what they are told of through the services, the URL and the
entries refused under their fields, the secret write-only; deliveries read-only, sent again."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.notifications.models import Delivery, DeliveryState, Webhook
from apps.notifications.services import webhook_ping
from tests.factories import JobFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    return JobFactory(team=TeamFactory(name="ops"), name="nightly", task_type="dts.noop", args={})


def webhook_form(job, rules, **fields):
    form = {
        "team": str(job.team_id),
        "name": "ops",
        "url": "https://93.184.215.14/hooks",
        "secret": "a-secret-of-some-length",
        "enabled": "on",
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": "0",
        **fields,
    }
    for index, on in enumerate(rules):
        form |= {f"rules-{index}-job": str(job.id), f"rules-{index}-on": on}
    return form


def test_the_admin_creates_a_webhook_with_what_it_is_told_of(admin_client, job):
    response = admin_client.post(
        reverse("admin:notifications_webhook_add"), webhook_form(job, [["failure", "late"]])
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    webhook = Webhook.objects.get()
    assert [(rule.job_id, rule.on) for rule in webhook.rules.all()] == [
        (job.id, ["failure", "late"])
    ]
    assert webhook.secret == "a-secret-of-some-length"
    assert AuditEntry.objects.filter(object_type="webhook", action="create").exists()
    page = admin_client.get(reverse("admin:notifications_webhook_change", args=[webhook.id]))
    assert "a-secret-of-some-length" not in page.content.decode()


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"url": "http://10.0.0.7/hooks"}, "a private address"),
        ({"secret": "short"}, "at least 16"),
        ({"secret": ""}, "needs its secret"),
    ],
)
def test_a_bad_webhook_is_shown_on_the_form_and_nothing_is_saved(admin_client, job, fields, shown):
    response = admin_client.post(
        reverse("admin:notifications_webhook_add"), webhook_form(job, [["failure"]], **fields)
    )

    assert response.status_code == 200
    assert shown in response.content.decode()
    assert not Webhook.objects.exists()


def test_a_failed_delivery_is_sent_again_from_the_log(admin_client, job):
    webhook = Webhook.objects.create(
        team=job.team, name="ops", url="https://93.184.215.14/", secret="x" * 16
    )
    delivery = webhook_ping(webhook=webhook)
    Delivery.objects.filter(id=delivery.id).update(state=DeliveryState.FAILED, attempts=8)

    page = admin_client.get(reverse("admin:notifications_delivery_changelist"))
    response = admin_client.post(
        reverse("admin:notifications_delivery_changelist"),
        {"action": "redeliver", "_selected_action": [str(delivery.id)]},
    )

    assert page.status_code == 200
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("pending", 0)
