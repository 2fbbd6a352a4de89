"""Webhooks: defining them and what they are told of, and delivering what they are told.

Notices are written as deliveries by the notifier (apps.notifications.notices) and sent by
`deliveries_send`, which every scheduler replica runs from its Notifier thread (workers.scheduler).
A delivery is claimed for one attempt in a short transaction (`FOR UPDATE SKIP LOCKED`, then its
next attempt moved past the attempt's end), sent outside any transaction, and its outcome
recorded: delivered on a 2xx answer; otherwise tried again after a backoff that doubles from
DTS_WEBHOOK_RETRY_BASE_SECONDS up to an hour, and failed after DTS_WEBHOOK_MAX_ATTEMPTS attempts,
or at once when the guard refuses its address. A sender that dies mid-attempt leaves the delivery
to be tried again once its claim runs out: a receiver may see a delivery twice, with the same
X-DTS-Delivery.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Team
from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record, field_changes
from apps.core.exceptions import InvalidTransition, ValidationFailed
from apps.core.validation import editable_fields_check, model_validate
from apps.notifications.addresses import webhook_url_check
from apps.notifications.metrics import delivery_record
from apps.notifications.models import (
    WORKFLOW_NOTIFY_ON,
    Delivery,
    DeliveryState,
    NotifyOn,
    Webhook,
    WebhookRule,
)
from apps.notifications.sending import webhook_post

EDITABLE_FIELDS = frozenset({"name", "url", "secret", "enabled", "notify"})
MIN_SECRET_CHARS = 16
MAX_RULES = 200
MAX_BACKOFF = timedelta(hours=1)
NAME_TAKEN = "Your team has a webhook of this name already."


# Defining


def webhook_notify_resolved(
    team: Team, notify: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """What a webhook is told of, each entry naming a job or a workflow of `team` (by name), with
    the job or workflow itself; refused naming the entry's field at fault (`notify[1].on`)."""
    if len(notify) > MAX_RULES:
        raise ValidationFailed(f"A webhook has at most {MAX_RULES} entries.", field="notify")
    resolved: list[dict[str, Any]] = []
    for index, entry in enumerate(notify):
        where = f"notify[{index}]"
        job_name, workflow_name = entry.get("job"), entry.get("workflow")
        if (job_name is None) == (workflow_name is None):
            raise ValidationFailed("names a job or a workflow, one of them.", field=where)
        on = list(entry.get("on") or [])
        if not on:
            raise ValidationFailed("names what to notify on.", field=f"{where}.on")
        unknown = [value for value in on if value not in NotifyOn.values]
        if unknown:
            raise ValidationFailed(
                f"{unknown[0]!r} is not one of {', '.join(NotifyOn.values)}.", field=f"{where}.on"
            )
        if len(set(on)) != len(on):
            raise ValidationFailed("names a value twice.", field=f"{where}.on")
        if job_name is not None:
            job = team.jobs.filter(name=job_name).first()
            if job is None:
                raise ValidationFailed(
                    f"No job of team {team.name} is named {job_name!r}.", field=f"{where}.job"
                )
            resolved.append({"job": job, "workflow": None, "on": on})
            continue
        workflow = team.workflows.filter(name=workflow_name).first()
        if workflow is None:
            raise ValidationFailed(
                f"No workflow of team {team.name} is named {workflow_name!r}.",
                field=f"{where}.workflow",
            )
        if not set(on) <= WORKFLOW_NOTIFY_ON:
            raise ValidationFailed(
                "A workflow notifies on failure and success (late and missed are a job's "
                "schedules' health).",
                field=f"{where}.on",
            )
        resolved.append({"job": None, "workflow": workflow, "on": on})
    return resolved


def webhook_definition(webhook: Webhook) -> dict[str, Any]:
    """What the webhook is defined by (its secret left out)."""
    rules = webhook.rules.select_related("job", "workflow").order_by("id") if webhook.pk else []
    return {
        "name": webhook.name,
        "url": webhook.url,
        "enabled": webhook.enabled,
        "notify": [_entry(rule) for rule in rules],
    }


def _entry(rule: WebhookRule) -> dict[str, Any]:
    if rule.job is not None:
        return {"job": rule.job.name, "on": rule.on}
    assert rule.workflow is not None  # noqa: S101 (a constraint of the table)
    return {"workflow": rule.workflow.name, "on": rule.on}


def _check(webhook: Webhook) -> None:
    others = Webhook.objects.filter(team_id=webhook.team_id, name=webhook.name)
    if others.exclude(pk=webhook.pk).exists():
        raise ValidationFailed(NAME_TAKEN, field="name")
    if len(webhook.secret) < MIN_SECRET_CHARS:
        raise ValidationFailed(f"has at least {MIN_SECRET_CHARS} characters.", field="secret")
    model_validate(webhook)
    webhook_url_check(webhook.url)


def _rules_save(webhook: Webhook, notify: list[dict[str, Any]]) -> None:
    """Replace what the webhook is told of; an entry kept as it was keeps the health it noticed."""
    kept: dict[tuple[Any, ...], WebhookRule | None] = {
        (rule.job_id, rule.workflow_id, tuple(rule.on)): rule for rule in webhook.rules.all()
    }
    wanted = []
    for entry in notify:
        job, workflow = entry["job"], entry["workflow"]
        key = (job.id if job else None, workflow.id if workflow else None, tuple(entry["on"]))
        wanted.append(
            kept.pop(key, None)
            or WebhookRule(webhook=webhook, job=job, workflow=workflow, on=entry["on"])
        )
    WebhookRule.objects.filter(id__in=[rule.id for rule in kept.values() if rule]).delete()
    WebhookRule.objects.bulk_create([rule for rule in wanted if rule.pk is None])


def _secret_changes(changes: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    if old != new:
        changes["secret"] = {"old": "(hidden)", "new": "(hidden)"}
    return changes


@transaction.atomic
def webhook_create(
    *,
    team: Team,
    name: str,
    url: str,
    secret: str,
    enabled: bool = True,
    notify: list[dict[str, Any]] | None = None,
    actor: Actor = None,
) -> Webhook:
    """`notify` as webhook_notify_resolved gives it."""
    webhook = Webhook(team=team, name=name, url=url, secret=secret, enabled=enabled)
    _check(webhook)
    webhook.save()
    _rules_save(webhook, notify or [])
    changes = {
        key: {"old": None, "new": value} for key, value in webhook_definition(webhook).items()
    }
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        target=webhook,
        team_id=team.id,
        changes=_secret_changes(changes, "", secret),
    )
    return webhook


@transaction.atomic
def webhook_update(*, webhook: Webhook, data: dict[str, Any], actor: Actor = None) -> Webhook:
    """Change its fields; `notify` (as webhook_notify_resolved gives it) replaces every entry."""
    editable_fields_check(data, EDITABLE_FIELDS)
    Webhook.objects.select_for_update().get(id=webhook.id)
    before, secret = webhook_definition(webhook), webhook.secret
    for field in ("name", "url", "secret", "enabled"):
        if field in data:
            setattr(webhook, field, data[field])
    _check(webhook)
    webhook.save()
    if "notify" in data:
        _rules_save(webhook, data["notify"])
    shown = [field for field in data if field != "secret"]
    changes = field_changes(before, webhook_definition(webhook), fields=shown)
    changes = _secret_changes(changes, secret, webhook.secret)
    if changes:
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=webhook,
            team_id=webhook.team_id,
            changes=changes,
        )
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor: Actor = None) -> None:
    """Delete the webhook with its delivery log."""
    audit_record(actor=actor, action=AuditAction.DELETE, target=webhook, team_id=webhook.team_id)
    webhook.delete()


def webhook_ping(*, webhook: Webhook) -> Delivery:
    """A `ping` delivery, sent as any other: to see that the receiver gets and checks them."""
    now = timezone.now()
    return Delivery.objects.create(
        webhook=webhook,
        event="ping",
        key=f"ping:{now.isoformat()}",
        payload={"team": webhook.team.name, "webhook": {"id": webhook.id, "name": webhook.name}},
        next_attempt_at=now,
    )


def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Send a failed delivery again, from its first attempt."""
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().get(id=delivery.id)
        if locked.state != DeliveryState.FAILED:
            raise InvalidTransition(
                f"Only a failed delivery is sent again; this one is {locked.state}.", field="state"
            )
        locked.state, locked.attempts = DeliveryState.PENDING, 0
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["state", "attempts", "next_attempt_at"])
    return locked


# Delivering


def deliveries_send(*, limit: int = 20) -> int:
    """Make one attempt at each of up to `limit` due deliveries; return how many."""
    due = _due_claim(now=timezone.now(), limit=limit)
    timeout = settings.DTS_WEBHOOK_TIMEOUT_SECONDS
    for delivery in due:
        attempt = webhook_post(
            url=delivery.webhook.url,
            secret=delivery.webhook.secret,
            body=delivery_body(delivery),
            event=delivery.event,
            delivery_id=str(delivery.id),
            timeout=timeout,
        )
        _attempt_record(delivery, attempt.delivered, attempt.status, attempt.error, attempt.final)
    return len(due)


def delivery_body(delivery: Delivery) -> bytes:
    document = {
        "id": str(delivery.id),
        "event": delivery.event,
        "time": delivery.created_at,
        **delivery.payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def _due_claim(*, now: datetime, limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries for one attempt each: no other sender takes them until
    the attempt has had its time (a sender that died mid-attempt gives them up so)."""
    with transaction.atomic():
        due = list(
            Delivery.objects.select_related("webhook")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(state=DeliveryState.PENDING, next_attempt_at__lte=now, webhook__enabled=True)
            .order_by("next_attempt_at")[:limit]
        )
        claim_ends = now + timedelta(seconds=settings.DTS_WEBHOOK_TIMEOUT_SECONDS * limit + 60)
        Delivery.objects.filter(id__in=[delivery.id for delivery in due]).update(
            next_attempt_at=claim_ends
        )
    return due


def _attempt_record(
    delivery: Delivery, delivered: bool, status: int | None, error: str, final: bool
) -> None:
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status = status
    delivery.error = error
    if delivered:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = (
            DeliveryState.DELIVERED,
            now,
            None,
        )
    elif final or delivery.attempts >= settings.DTS_WEBHOOK_MAX_ATTEMPTS:
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "response_status",
            "error",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    delivery_record(delivery.state if delivery.state != DeliveryState.PENDING else "retrying")


def backoff(attempts: int) -> timedelta:
    """How long after its `attempts`-th failed attempt a delivery is tried again."""
    base = timedelta(seconds=settings.DTS_WEBHOOK_RETRY_BASE_SECONDS)
    return min(base * 2 ** (attempts - 1), MAX_BACKOFF)


def deliveries_purge(*, now: datetime, keep: timedelta) -> int:
    """Delete the deliveries made before `now - keep` that are over (delivered or failed)."""
    over = Delivery.objects.filter(created_at__lt=now - keep).exclude(state=DeliveryState.PENDING)
    deleted, _ = over.delete()
    return deleted
