"""/api/v1/webhooks/: defined with what they are told of, refused naming the field, their secret
never shown, and their delivery log read, filtered and sent again."""

import json

import pytest

from apps.audit.models import AuditEntry
from apps.notifications.models import Delivery, DeliveryState, Webhook
from apps.workflows.services import workflow_create

pytestmark = pytest.mark.django_db

HOOK = {
    "team": "red",
    "name": "ops",
    "url": "https://93.184.215.14/hooks/dts",
    "secret": "a-secret-of-some-length",
    "notify": [{"job": "red job", "on": ["failure", "missed"]}],
}


def test_a_webhook_is_created_read_changed_and_deleted_its_secret_never_shown(world, client_as):
    admin = client_as("admin")
    workflow_create(team=world.red, name="etl", steps=[{"name": "a", "job": world.job}])

    created = admin.post("/api/v1/webhooks/", HOOK, "json")
    url = f"/api/v1/webhooks/{created.json()['id']}/"
    changed = admin.patch(
        url,
        {"notify": [{"workflow": "etl", "on": ["failure"]}], "secret": "another-secret-of-length"},
        "json",
    )
    listed = client_as("viewer").get("/api/v1/webhooks/?team=red").json()
    deleted = admin.delete(url)

    assert created.status_code == 201, created.content
    assert created.json()["notify"] == [{"job": "red job", "on": ["failure", "missed"]}]
    assert changed.json()["notify"] == [{"workflow": "etl", "on": ["failure"]}]
    assert [hook["name"] for hook in listed["results"]] == ["ops"]
    for response in (created, changed):
        assert "secret" not in response.json()
        assert b"secret-of" not in response.content
    changes = list(
        AuditEntry.objects.filter(object_type="webhook").values_list("changes", flat=True)
    )
    assert "secret-of" not in json.dumps(changes)
    assert [entry["secret"] for entry in changes if entry] == [  # created, changed; deleted
        {"old": "(hidden)", "new": "(hidden)"}
    ] * 2
    assert deleted.status_code == 204
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "http://127.0.0.1:5432/"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"secret": "short"}, "secret"),
        ({"notify": [{"on": ["failure"]}]}, "notify[0]"),
        ({"notify": [{"job": "red job", "workflow": "etl", "on": ["failure"]}]}, "notify[0]"),
        ({"notify": [{"job": "red job", "on": []}]}, "notify[0].on"),
        ({"notify": [{"job": "red job", "on": ["sometimes"]}]}, "notify"),
        ({"notify": [{"job": "blue job", "on": ["failure"]}]}, "notify[0].job"),
        ({"notify": [{"workflow": "etl", "on": ["late"]}]}, "notify[0].on"),
        ({"team": "blue"}, "team"),
    ],
)
def test_a_bad_webhook_is_refused_naming_the_field_and_nothing_is_written(
    world, client_as, change, field
):
    workflow_create(team=world.red, name="etl", steps=[{"name": "a", "job": world.job}])

    response = client_as("admin").post("/api/v1/webhooks/", {**HOOK, **change}, "json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert not Webhook.objects.exists()


def test_the_delivery_log_is_listed_newest_first_filtered_and_a_failed_one_sent_again(
    world, client_as
):
    operator = client_as("operator")
    hook = client_as("admin").post("/api/v1/webhooks/", HOOK, "json").json()
    base = f"/api/v1/webhooks/{hook['id']}/"
    pinged = operator.post(f"{base}ping/").json()
    Delivery.objects.filter(id=pinged["id"]).update(
        state=DeliveryState.FAILED, attempts=8, error="HTTP 500: down"
    )
    other = operator.post(f"{base}ping/").json()

    log = client_as("viewer").get(f"{base}deliveries/").json()
    failed = client_as("viewer").get(f"{base}deliveries/?state=failed").json()
    again = operator.post(f"{base}deliveries/{pinged['id']}/redeliver/")
    refused = operator.post(f"{base}deliveries/{other['id']}/redeliver/")

    assert [d["id"] for d in log["results"]] == [other["id"], pinged["id"]]
    assert [(d["event"], d["attempts"], d["error"]) for d in failed["results"]] == [
        ("ping", 8, "HTTP 500: down")
    ]
    assert (again.json()["state"], again.json()["attempts"]) == ("pending", 0)
    assert refused.status_code == 409
