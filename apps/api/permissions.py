"""Who may do what through the API: every endpoint needs a signed-in user; what a user sees is
limited to their teams by the selectors, and what they may change by their role in the object's
team (apps.accounts.models.Role)."""

from typing import Any

from rest_framework import exceptions, permissions, serializers
from rest_framework.request import Request

from apps.accounts.models import ApiToken, Role, Team
from apps.accounts.selectors import role_allows, user_role, user_teams


class ReadOnlyTokenPermission(permissions.BasePermission):
    """A read-only token allows only reads."""

    message = "This token is read-only."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        return not (
            isinstance(token, ApiToken)
            and token.read_only
            and request.method not in permissions.SAFE_METHODS
        )


def role_require(request: Request, *, team_id: int, role: Role) -> None:
    """Refuse (403) unless the user holds at least `role` in the team. Objects of teams the user
    is not in are not found at all (404): the selectors never return them."""
    if not role_allows(user_role(user=request.user, team_id=team_id), role):
        raise exceptions.PermissionDenied(f"This needs the {role.value} role in the object's team.")


def team_administered(request: Request, name: str) -> Team:
    """The team of this name, which a body names as the owner of what it creates: one of the
    user's (400 otherwise, naming `team`), where the user is an admin (403 otherwise)."""
    team = user_teams(user=request.user).filter(name=name).first()
    if team is None:
        raise serializers.ValidationError({"team": ["No team of yours has this name."]})
    role_require(request, team_id=team.id, role=Role.ADMIN)
    return team
