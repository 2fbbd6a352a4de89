from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models

from apps.audit.models import AuditAction, AuditEntry

Actor = User | AnonymousUser | None


def audit_record(
    *,
    actor: Actor,
    action: AuditAction,
    target: models.Model,
    team_id: int | None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record that `actor` did `action` to `target`; call it in the transaction of the change.
    `changes` maps each changed field to {"old": …, "new": …}."""
    person = actor if actor is not None and actor.is_authenticated else None
    return AuditEntry.objects.create(
        actor=person,
        actor_name=person.get_username() if person is not None else "",
        action=action,
        object_type=target._meta.model_name or "",
        object_id=str(target.pk),
        object_repr=str(target)[:200],
        team_id=team_id,
        changes=changes or {},
    )


def field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], *, fields: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The `changes` of an update for `audit_record`: each of `fields` whose value differs
    between `before` and `after`, as {"old": …, "new": …}, in name order."""
    return {
        field: {"old": before[field], "new": after[field]}
        for field in sorted(fields)
        if before[field] != after[field]
    }
