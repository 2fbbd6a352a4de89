from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.accounts.selectors import user_teams
from apps.audit.models import AuditEntry


def audit_entries_visible(*, user: User | AnonymousUser) -> QuerySet[AuditEntry]:
    """Entries about the user's teams' objects, newest first (all for a superuser)."""
    entries = AuditEntry.objects.order_by("-at", "-id")
    if user.is_authenticated and user.is_superuser:
        return entries
    return entries.filter(team_id__in=user_teams(user=user).values("id"))
