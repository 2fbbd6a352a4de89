"""The HTTP and WebSocket side of the CLI: one client per command, and every failure turned into
an ApiError that says what went wrong and which exit code it means (docs/cli.md)."""

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import connect
from websockets.typing import Origin

from cli.config import Settings

TIMEOUT_SECONDS = 30.0
RECONNECT_FIRST_SECONDS, RECONNECT_MOST_SECONDS = 0.5, 30.0
# A socket the server closes with one of these was refused: 4000 + the HTTP status it stands for
# (docs/live.md); retrying would be refused again.
REFUSED_CLOSE_CODES = range(4400, 4500)
_REFUSALS = {
    400: "a request the server cannot read",
    401: "not signed in, or no longer: the token is unknown, expired or revoked, or the user "
    "deactivated (dts login)",
    403: "not allowed, or no longer (removed from the team?)",
    404: "not found, or not one of your teams'",
}


class ExitCode:
    OK = 0
    FAILED = 1  # a run that was waited for did not succeed
    USAGE = 2  # bad options (typer's own)
    NETWORK = 3
    AUTH = 4
    NOT_FOUND = 5
    INVALID = 6
    SERVER = 7


class ApiError(Exception):
    def __init__(
        self, message: str, exit_code: int, errors: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.errors = errors or {}  # every field at fault, when the server named several


def _received(
    message: dict[str, Any], positions: dict[str, tuple[str, int]]
) -> Iterator[dict[str, Any] | None]:
    """What a message of a stream means for the client: nothing (seen already), None (reload the
    view), or its event."""
    stream, epoch, seq = message["stream"], message["epoch"], message["seq"]
    known = positions.get(stream)
    if message["type"] == "message" and known and known[0] == epoch and seq <= known[1]:
        return
    positions[stream] = (epoch, seq)
    if message["type"] == "sync" or not known or known != (epoch, seq - 1):
        yield None
    else:
        yield message["event"]


def exit_code_for(status: int) -> int:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status >= 500:
        return ExitCode.SERVER
    return ExitCode.INVALID


class Client:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url
        self.http = httpx.Client(base_url=url, headers=self.headers, timeout=TIMEOUT_SECONDS)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Client":
        return cls(settings.url, settings.token)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ApiError(f"Cannot reach {self.url}: {error}", ExitCode.NETWORK) from error
        if response.status_code >= 400:
            raise ApiError(
                _error_message(response),
                exit_code_for(response.status_code),
                _field_errors(response),
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def follow(self, path: str) -> Iterator[dict[str, Any] | None]:
        """The events of the WebSocket at `path` (docs/live.md), in order and each once, across
        reconnections (with backoff): None when the view must be reloaded from the REST API
        (first, and after anything was missed). A refusal ends it with an ApiError: a close code
        4xxx (the server's refusal, 4000 + the HTTP status it stands for) or a 4xx handshake;
        anything else (no server, a 5xx, a dropped connection) is retried."""
        positions: dict[str, tuple[str, int]] = {}
        delay = RECONNECT_FIRST_SECONDS
        while True:
            try:
                with connect(
                    self._socket_url(path, positions),
                    additional_headers=self.headers,
                    origin=Origin(self.url),
                    open_timeout=TIMEOUT_SECONDS,
                ) as socket:
                    for frame in socket:
                        # Reset only once the server has sent something: one that accepts and
                        # closes at once is retried with backoff too.
                        delay = RECONNECT_FIRST_SECONDS
                        yield from _received(json.loads(frame), positions)
            except InvalidStatus as refused:
                status = refused.response.status_code
                if not _retried_status(status):
                    raise ApiError(
                        f"{self.url} refused to stream {path} ({status}): "
                        f"{_REFUSALS.get(status, 'refused')}",
                        exit_code_for(status),
                    ) from refused
            except ConnectionClosed as closed:
                code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (0, "")
                if REFUSED_CLOSE_CODES.start <= code < REFUSED_CLOSE_CODES.stop:
                    status = code - 4000
                    because = _REFUSALS.get(status, "refused") + (f" ({reason})" if reason else "")
                    raise ApiError(
                        f"{self.url} refused to stream {path} ({code}): {because}",
                        exit_code_for(status),
                    ) from closed
            except (OSError, WebSocketException):
                pass
            time.sleep(delay)
            delay = min(delay * 2, RECONNECT_MOST_SECONDS)

    def _socket_url(self, path: str, positions: dict[str, tuple[str, int]]) -> str:
        base = "ws" + self.url.removeprefix("http").rstrip("/")
        after = ",".join(f"{stream}:{epoch}:{seq}" for stream, (epoch, seq) in positions.items())
        return f"{base}{path}" + (f"?after={after}" if after else "")

    def get(self, path: str, **params: Any) -> Any:
        clean = {key: value for key, value in params.items() if value is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(self, path: str, most: int | None = None, **params: Any) -> list[Any]:
        """The results of a paginated list, following `next`, up to `most` items."""
        found: list[Any] = []
        body = self.get(path, **params)
        while True:
            found.extend(body["results"])
            if body.get("next") is None or (most is not None and len(found) >= most):
                return found[:most]
            body = self.request("GET", body["next"])


def _retried_status(status: int) -> bool:
    """Whether a handshake answered with `status` is worth trying again: the server is failing,
    restarting or busy, not refusing."""
    return status >= 500 or status in (408, 429)


def _field_errors(response: httpx.Response) -> dict[str, list[str]]:
    try:
        errors = response.json()["error"]["errors"]
    except (ValueError, KeyError, TypeError):
        return {}
    return errors if isinstance(errors, dict) else {}


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} from the server: {response.text[:200]}"
    field = f" ({error['field']})" if error.get("field") else ""
    return f"{error['message']}{field} [{response.status_code} {error['code']}]"
