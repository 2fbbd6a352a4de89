from importlib import import_module
from typing import TypeVar

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import ROLE_ORDER, ApiToken, Membership, Role, Team

Visible = TypeVar("Visible", bound=Model)


def user_teams(*, user: User | AnonymousUser) -> QuerySet[Team]:
    """The teams whose objects `user` may see: all for a superuser."""
    return visible_to(Team.objects.all(), user=user, memberships="memberships")


def visible_to(
    objects: QuerySet[Visible], *, user: User | AnonymousUser, memberships: str
) -> QuerySet[Visible]:
    """The `objects` of the user's teams: all for a superuser, none for an anonymous user.
    `memberships` is the path from an object to its team's memberships. A join, not `team__in`
    a subquery: as exact (one membership per team and user) and cheaper to build, which every
    API read does."""
    if not user.is_authenticated:
        return objects.none()
    if user.is_superuser:
        return objects
    return objects.filter(**{f"{memberships}__user": user})


def user_role(*, user: User | AnonymousUser, team_id: int) -> Role | None:
    """The role of `user` in the team; a superuser is an admin everywhere."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    role = (
        Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True).first()
    )
    return Role(role) if role else None


def user_roles(*, user: User | AnonymousUser, team_ids: list[int]) -> dict[int, Role | None]:
    """The role of `user` in each of the teams, as user_role gives it, in one query."""
    if not user.is_authenticated or user.is_superuser:
        return {team_id: user_role(user=user, team_id=team_id) for team_id in team_ids}
    held = dict(
        Membership.objects.filter(user=user, team_id__in=team_ids).values_list("team_id", "role")
    )
    return {team_id: Role(held[team_id]) if team_id in held else None for team_id in team_ids}


def role_allows(role: Role | None, needed: Role) -> bool:
    return role is not None and ROLE_ORDER.index(role) >= ROLE_ORDER.index(needed)


def token_user(*, token_id: int) -> User | None:
    """The user of the token, while the token and its user are active (unrevoked, unexpired)."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(id=token_id, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    return token.user if token is not None and token.user.is_active else None


def socket_user(*, token_id: int | None, session_key: str | None) -> User | AnonymousUser:
    """The user a WebSocket's token or session signs in now: AnonymousUser when it no longer
    does (token revoked or expired, signed out, session expired, password changed, user
    deactivated). Read afresh: what the socket read when it opened may be out of date."""
    if token_id is not None:
        return token_user(token_id=token_id) or AnonymousUser()
    if session_key is None:
        return AnonymousUser()
    # Django's own reading of a session's user, as the HTTP side does it; it flushes a session
    # whose password hash no longer matches, as it would on the next page.
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user: User | AnonymousUser = get_user(request)
    return user
