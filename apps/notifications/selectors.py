from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.accounts.selectors import visible_to
from apps.notifications.models import Webhook


def webhooks_visible(*, user: User | AnonymousUser) -> QuerySet[Webhook]:
    """The webhooks of the user's teams (every one for a superuser)."""
    return visible_to(
        Webhook.objects.select_related("team"), user=user, memberships="team__memberships"
    )
