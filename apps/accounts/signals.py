"""When someone's access ends, for the apps that hold it open (apps.live closes WebSockets).

Each signal is sent once the change has committed, with ids only:

    token_revoked       token_id, user_id   a token was revoked or deleted
    user_deactivated    user_id             a user was deactivated or deleted
    membership_removed  user_id, team_id    a user left a team (or the team was deleted)

Revoking a token goes through apps.accounts.services.token_revoke; deactivating a user or
removing a member is done in the admin (Django's user form, the team's member rows), so those
are caught on the models' own signals, connected by `model_signals_connect`."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal

from apps.accounts.models import ApiToken, Membership

token_revoked = Signal()
user_deactivated = Signal()
membership_removed = Signal()


def send_after_commit(signal: Signal, **ids: int) -> None:
    transaction.on_commit(lambda: signal.send(sender=None, **ids))


def model_signals_connect() -> None:
    """Turn the models' saves and deletes that end someone's access into the signals above."""
    post_save.connect(_user_saved, sender=User, dispatch_uid="accounts.user_saved")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid="accounts.user_deleted")
    post_delete.connect(_token_deleted, sender=ApiToken, dispatch_uid="accounts.token_deleted")
    post_delete.connect(
        _membership_deleted, sender=Membership, dispatch_uid="accounts.membership_deleted"
    )


def _user_saved(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    # A save does not say what changed; an inactive user's sockets are closed whatever it was.
    if not created and not instance.is_active:
        send_after_commit(user_deactivated, user_id=instance.pk)


def _user_deleted(sender: Any, instance: User, **kwargs: Any) -> None:
    send_after_commit(user_deactivated, user_id=instance.pk)


def _token_deleted(sender: Any, instance: ApiToken, **kwargs: Any) -> None:
    send_after_commit(token_revoked, token_id=instance.pk, user_id=instance.user_id)


def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    send_after_commit(membership_removed, user_id=instance.user_id, team_id=instance.team_id)
