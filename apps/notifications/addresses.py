"""Where a webhook may point: the SSRF guard.

A webhook's URL is given by a team admin, and dts's processes sit inside the operator's network:
without a guard, a webhook could make the scheduler post to the cloud's metadata service, to
PostgreSQL's or Redis's port, or to any internal service. So a URL is http(s), with a host and no
credentials, and every address its host resolves to must be a public one: loopback, private,
link-local, shared, reserved and multicast addresses are refused, unless the operator allows
them (DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES, for receivers inside the network). The check is made
when the URL is saved and again before every attempt, on the addresses the attempt then connects
to (apps.notifications.sending pins them): a name that resolves elsewhere later (DNS rebinding)
is caught then.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from apps.core.exceptions import ValidationFailed

MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class Target:
    """Where a webhook's URL points: its parts, host and port."""

    split: SplitResult
    hostname: str
    port: int


def webhook_url_check(url: str) -> None:
    """Refuse, naming `url`, a URL a webhook cannot have: malformed, not http(s), with
    credentials, or whose host is (or resolves to) an address the guard refuses. A name that does
    not resolve now is accepted: each attempt resolves it again, and is refused then if need be."""
    parts = url_parts(url)
    if parts.hostname.endswith(".localhost") or parts.hostname == "localhost":
        _refuse_unless_allowed(f"{parts.hostname} is this machine.")
    try:
        addresses = host_addresses(parts)
    except OSError:
        return
    refusal = addresses_refusal(addresses)
    if refusal is not None:
        raise ValidationFailed(refusal, field="url")


def url_parts(url: str) -> Target:
    """The URL's parts, refused naming `url` when it is no webhook's."""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(f"is longer than {MAX_URL_LENGTH} characters.", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValidationFailed(f"is not a URL: {error}.", field="url") from error
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed("must start with https:// or http://.", field="url")
    if not parts.hostname:
        raise ValidationFailed("has no host.", field="url")
    try:
        parts.hostname.encode("idna")
    except UnicodeError as error:
        raise ValidationFailed(
            f"has a host name that is not valid: {error}.", field="url"
        ) from error
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(
            "must not hold credentials: the receiver checks the signature instead.", field="url"
        )
    return Target(parts, parts.hostname, port or (443 if parts.scheme == "https" else 80))


def host_addresses(parts: Target) -> list[str]:
    """The addresses the URL's host resolves to (OSError when it does not resolve)."""
    found = socket.getaddrinfo(parts.hostname, parts.port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def addresses_refusal(addresses: list[str]) -> str | None:
    """Why the guard refuses to connect to one of `addresses`, or None."""
    if settings.DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return None
    for text in addresses:
        kind = _non_public_kind(ipaddress.ip_address(text.split("%", 1)[0]))
        if kind is not None:
            return (
                f"reaches {text}, {kind}: webhooks are sent to public addresses only "
                "(DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES allows others)."
            )
    return None


def _non_public_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or not address.is_global:
        return "not a public address"
    return None


def _refuse_unless_allowed(message: str) -> None:
    if not settings.DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        raise ValidationFailed(
            f"{message} Webhooks are sent to public addresses only "
            "(DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES allows others).",
            field="url",
        )
