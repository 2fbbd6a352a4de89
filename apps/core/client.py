"""What a request says about its client, read the same way by the REST API, the sign-in pages, the
admin and the WebSockets: its address and its bearer token."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request


def client_address(request: HttpRequest | Request) -> str | None:
    """The address of the client that sent `request`: what API throttling counts and django-axes
    locks out (AXES_CLIENT_IP_CALLABLE).

    Each of the DTS_TRUSTED_PROXIES reverse proxies in front of the web process appends the
    address it received the request from to X-Forwarded-For, so the client is the entry the
    outermost of them wrote: the N-th from the right. Entries left of it are the client's own
    words. With no trusted proxy the header is ignored and the peer (REMOTE_ADDR) is the client."""
    peer: str | None = request.META.get("REMOTE_ADDR")
    proxies: int = settings.DTS_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies == 0 or not forwarded.strip():
        return peer
    entries = [entry.strip() for entry in forwarded.split(",")]
    try:
        return str(ipaddress.ip_address(entries[-min(proxies, len(entries))]))
    except ValueError:
        # Not an address, so no proxy of ours wrote it (DTS_TRUSTED_PROXIES counts too many):
        # count the request against the peer rather than a name anyone can vary.
        return peer


def bearer_secret(authorization: bytes) -> str | None:
    """The token of an `Authorization: Bearer <token>` header: None when the header names another
    scheme (or none), "" when it names Bearer but carries no token. The scheme is matched without
    regard to case (RFC 9110, 11.1), for HTTP and WebSockets alike."""
    scheme, _, secret = authorization.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip()
