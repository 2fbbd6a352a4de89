from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.accounts.models import ROLE_ORDER, Membership, Role, Team


def user_teams(*, user: User | AnonymousUser) -> QuerySet[Team]:
    """The teams whose objects `user` may see: all for a superuser."""
    if not user.is_authenticated:
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user)


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


def role_allows(role: Role | None, needed: Role) -> bool:
    return role is not None and ROLE_ORDER.index(role) >= ROLE_ORDER.index(needed)
