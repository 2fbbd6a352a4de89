"""Open WebSockets whose access ends are told so at once (apps.live.consumers closes or re-checks
them); the consumers' periodic re-check catches whatever changes without a signal.

Every socket joins the group of its user, and that of its token or of its session; a change
that ends access is sent there, from the process that made it, after it commits:

    a session logged out          its session's sockets close: 4401
    a token revoked or deleted    its sockets close: 4401
    a user deactivated or deleted their sockets close: 4401
    a user removed from a team    their sockets re-check what they may follow: 4403 if nothing

Connected by LiveConfig.ready(): the apps that make these changes know nothing of WebSockets."""

import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.http import HttpRequest

from apps.accounts.signals import membership_removed, token_revoked, user_deactivated
from apps.live.broadcast import group_name

logger = logging.getLogger(__name__)

NOT_AUTHENTICATED, NOT_AUTHORISED = 4401, 4403


def user_group(user_id: int) -> str:
    return group_name(f"user.{user_id}")


def token_group(token_id: int) -> str:
    return group_name(f"token.{token_id}")


def session_group(session_key: str) -> str:
    # The key itself would let anyone who can read the channel layer's Redis use the session.
    return group_name(f"session.{hashlib.sha256(session_key.encode()).hexdigest()[:32]}")


def live_access_subscribe() -> None:
    """Close or re-check sockets when access ends (called once, by LiveConfig.ready)."""
    user_logged_out.connect(_logged_out, dispatch_uid="live.logged_out")
    token_revoked.connect(_token_revoked, dispatch_uid="live.token_revoked")
    user_deactivated.connect(_user_deactivated, dispatch_uid="live.user_deactivated")
    membership_removed.connect(_membership_removed, dispatch_uid="live.membership_removed")


def _logged_out(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
    # Sent before the session is flushed: its key is still there.
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        _send(session_group(session_key), _close(NOT_AUTHENTICATED, "signed out"))


def _token_revoked(sender: Any, token_id: int, **kwargs: Any) -> None:
    _send(token_group(token_id), _close(NOT_AUTHENTICATED, "token revoked"))


def _user_deactivated(sender: Any, user_id: int, **kwargs: Any) -> None:
    _send(user_group(user_id), _close(NOT_AUTHENTICATED, "user deactivated"))


def _membership_removed(sender: Any, user_id: int, **kwargs: Any) -> None:
    _send(user_group(user_id), {"type": "live.recheck"})


def _close(code: int, reason: str) -> dict[str, Any]:
    return {"type": "live.close", "code": code, "reason": reason}


def _send(group: str, message: dict[str, Any]) -> None:
    """Best effort: the change has been made; a socket this misses (the channel layer down) is
    closed by its own periodic re-check instead."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as error:
        logger.warning("Could not tell the sockets of %s that access ended: %r", group, error)
