"""One attempt to deliver a notice: a signed POST to the webhook's URL, to an address the guard
accepts (apps.notifications.addresses).

The host is resolved, every address it gives is checked, and the request is sent to the first
of them: the connection goes where the check looked, whatever the name resolves to a moment
later. The Host header and, for https, the TLS server name (and so the certificate's check) stay
the URL's host. Redirects are not followed (one could point anywhere), and no proxy of the
environment is used.

The receiver checks `X-DTS-Signature`: `sha256=` and the hex HMAC-SHA256, keyed by the webhook's
secret, of the `X-DTS-Timestamp` value, a dot, and the body; and refuses a timestamp too old
(a replay). `X-DTS-Delivery` is the same on every attempt of one delivery: a receiver drops the
repeats by it.
"""

import hashlib
import hmac
import time
from dataclasses import dataclass

import httpx

from apps.core.exceptions import ValidationFailed
from apps.notifications.addresses import addresses_refusal, host_addresses, url_parts

# How much of a receiver's answer or error the delivery log keeps.
ERROR_CHARS = 500


@dataclass(frozen=True)
class Attempt:
    status: int | None  # the receiver's HTTP status, if it answered
    error: str  # why it did not deliver ("" when it did)
    final: bool  # no later attempt can do better: the address is refused

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def webhook_post(
    *, url: str, secret: str, body: bytes, event: str, delivery_id: str, timeout: float
) -> Attempt:
    """POST `body` to `url`, signed; what came of it."""
    try:
        parts = url_parts(url)
    except ValidationFailed as malformed:
        return Attempt(status=None, error=f"The URL {malformed.message}", final=True)
    try:
        addresses = host_addresses(parts)
    except OSError as error:
        return Attempt(
            status=None, error=f"{parts.hostname} does not resolve: {error}", final=False
        )
    refusal = addresses_refusal(addresses)
    if refusal is not None:
        return Attempt(status=None, error=f"Not sent: {parts.hostname} {refusal}", final=True)
    address = addresses[0]
    host = f"[{address}]" if ":" in address else address
    pinned = parts.split._replace(netloc=f"{host}:{parts.port}").geturl()
    timestamp = str(int(time.time()))
    headers = {
        "Host": parts.split.netloc,
        "Content-Type": "application/json",
        "User-Agent": "dts-webhooks/1",
        "X-DTS-Event": event,
        "X-DTS-Delivery": delivery_id,
        "X-DTS-Timestamp": timestamp,
        "X-DTS-Signature": signature(secret, timestamp, body),
    }
    extensions = {"sni_hostname": parts.hostname} if parts.split.scheme == "https" else {}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(pinned, content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError as error:
        return Attempt(
            status=None, error=f"{type(error).__name__}: {error}"[:ERROR_CHARS], final=False
        )
    if 200 <= response.status_code < 300:
        return Attempt(status=response.status_code, error="", final=False)
    answer = response.text[:ERROR_CHARS]
    return Attempt(
        status=response.status_code,
        error=f"HTTP {response.status_code}: {answer}".strip(),
        final=False,
    )
