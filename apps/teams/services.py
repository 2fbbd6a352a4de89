"""Managing teams and their members through the API and the CLI: every change audited, and a team
never left without an admin. The models are apps.accounts'; these services sit above the audit
trail, which apps.accounts may not import.

Who may call them is the API's to enforce (apps.api.teams): a team's admins manage its members,
superusers (who run the platform) everything, teams and their settings included."""

import re
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from apps.accounts.models import Membership, Role, Team
from apps.accounts.services import membership_set, role_check
from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record, field_changes
from apps.core.exceptions import InvalidTransition, NotFound, ValidationFailed
from apps.core.validation import model_validate

TEAM_SETTINGS = ("name", "max_active_schedules")
# What Django lets a user name be (UnicodeUsernameValidator, AbstractUser's length).
USERNAME = re.compile(r"[\w.@+-]{1,150}")


@transaction.atomic
def team_add(*, name: str, max_active_schedules: int | None = None, actor: Actor) -> Team:
    team = Team(name=name, max_active_schedules=max_active_schedules)
    model_validate(team)
    team.save()
    audit_record(actor=actor, action=AuditAction.CREATE, target=team, team_id=team.id)
    return team


@transaction.atomic
def team_update(*, team: Team, data: dict[str, Any], actor: Actor) -> Team:
    """Change the team's name or its cap on active schedules (TEAM_SETTINGS)."""
    unknown = set(data) - set(TEAM_SETTINGS)
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationFailed(f"{field!r} cannot be changed here.", field=field)
    before = {field: getattr(team, field) for field in TEAM_SETTINGS}
    for field, value in data.items():
        setattr(team, field, value)
    model_validate(team)
    team.save(update_fields=list(data))
    changes = field_changes(before, {f: getattr(team, f) for f in TEAM_SETTINGS}, fields=data)
    if changes:
        audit_record(
            actor=actor, action=AuditAction.UPDATE, target=team, team_id=team.id, changes=changes
        )
    return team


@transaction.atomic
def member_add(*, team: Team, username: str, role: str, actor: Actor) -> Membership:
    """Make the user named `username` a member of `team` with `role`."""
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed(f"No user is named {username!r}.", field="username")
    if Membership.objects.filter(team=team, user=user).exists():
        raise InvalidTransition(
            f"{username} is already a member of {team.name}: change their role instead.",
            field="username",
        )
    membership = membership_set(team=team, user=user, role=role)
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        target=membership,
        team_id=team.id,
        changes={"role": {"old": None, "new": membership.role}},
    )
    return membership


@transaction.atomic
def member_role_set(*, membership: Membership, role: str, actor: Actor) -> Membership:
    role_check(role)
    old = membership.role
    if old == Role.ADMIN and role != Role.ADMIN:
        _other_admin_require(membership, "demoted")
    membership.role = role
    membership.save(update_fields=["role"])
    if old != role:
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=membership,
            team_id=membership.team_id,
            changes={"role": {"old": old, "new": role}},
        )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: Actor) -> None:
    if membership.role == Role.ADMIN:
        _other_admin_require(membership, "removed")
    audit_record(
        actor=actor,
        action=AuditAction.DELETE,
        target=membership,
        team_id=membership.team_id,
        changes={"role": {"old": membership.role, "new": None}},
    )
    membership.delete()


def membership_get(*, team: Team, username: str) -> Membership:
    """The membership in `team` of the user named `username` (from a URL: anything at all)."""
    membership = None
    if USERNAME.fullmatch(username):  # else no user has it, and PostgreSQL refuses a NUL
        membership = (
            Membership.objects.select_related("user", "team")
            .filter(team=team, user__username=username)
            .first()
        )
    if membership is None:
        raise NotFound(f"{username!r} is not a member of {team.name}.", field="username")
    return membership


def _other_admin_require(membership: Membership, change: str) -> None:
    """Refuse to leave the team without an admin: only another admin, or a superuser, could then
    manage its members. The team's admins are locked first, so that two admins cannot each
    demote the other at once."""
    admins = Membership.objects.select_for_update().filter(
        team_id=membership.team_id, role=Role.ADMIN
    )
    if not admins.exclude(id=membership.id).exists():
        raise InvalidTransition(
            f"The team's last admin cannot be {change}: make another member admin first.",
            field="role",
        )
