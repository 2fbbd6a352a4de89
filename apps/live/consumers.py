"""The WebSockets: each follows the streams (apps.live.streams) its user may see.

    /ws/runs/             the runs of the user's teams (team.<id> each; the dashboard)
    /ws/jobs/<id>/        a job and its runs (job.<id>)
    /ws/runs/<uuid>/      a run: its states and its log lines (run.<uuid>)

The consumers only authenticate, authorise, join and relay. Joining happens before the
connection is accepted; then, per stream, either the messages after the client's position
(`?after=<stream>:<epoch>:<seq>,...`, from its last connection) or, when there is none or the
backlog no longer covers it, a `sync`: the client reloads that view from the REST API and
continues from the number given. Every message after that is sent as it comes:

    {"type": "sync", "stream": "team.3", "epoch": "9f…", "seq": 41}
    {"type": "message", "stream": "team.3", "epoch": "9f…", "seq": 42, "event": {CloudEvent}}

Numbers are contiguous within an epoch: a client that sees one skipped, or another epoch, reloads.

A refused socket is accepted, then closed with a code that says why (a browser or client sees no
code when the handshake itself is refused): 4400 a malformed `after`, 4401 not authenticated (or no
longer: signed out, token revoked or expired, user deactivated), 4403 no longer allowed (removed
from the team), 4404 not found, not the user's, or no such address. Access is checked again when
apps.live.access says it ended, and every RECHECK_SECONDS in any case."""

import asyncio
import logging
import random
import re
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError
from prometheus_client import Gauge

from apps.accounts.selectors import socket_user, user_teams
from apps.core.outages import database_outage
from apps.jobs.selectors import jobs_visible
from apps.live.access import (
    NOT_AUTHENTICATED,
    NOT_AUTHORISED,
    session_group,
    token_group,
    user_group,
)
from apps.live.broadcast import group_name, live_relay_ensure
from apps.live.streams import Position, backlog
from apps.runs.selectors import runs_visible
from apps.workflows.selectors import workflow_runs_visible

logger = logging.getLogger(__name__)

BAD_REQUEST, NOT_FOUND = 4400, 4404
CONNECTIONS = Gauge("dts_live_connections", "Open live WebSockets (refused ones not counted)")
# However access ends, a socket that was not told (the change made without a signal, the channel
# layer down) is closed within this.
RECHECK_SECONDS = 60.0
_AFTER = re.compile(
    r"^(?P<stream>[a-z]+\.[0-9a-f-]+):(?P<epoch>[0-9a-f]{1,32}):(?P<seq>[0-9]{1,18})$"
)


class StreamsConsumer(AsyncJsonWebsocketConsumer):
    streams: list[str]
    access_groups: list[str]
    closed = False
    counted = False  # in dts_live_connections
    rechecking: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        live_relay_ensure()
        self.streams, self.access_groups = [], []
        user: Any = self.scope.get("user") or AnonymousUser()
        if not user.is_authenticated:
            await self.refuse(NOT_AUTHENTICATED, "not signed in, or a token unknown or revoked")
            return
        after = _positions(self.scope.get("query_string", b""))
        if after is None:
            await self.refuse(BAD_REQUEST, "malformed after")
            return
        streams = await database_sync_to_async(self.streams_allowed)(user)
        if not streams:
            await self.refuse(NOT_FOUND, "not found")
            return
        self.streams, self.access_groups = streams, self.access_groups_of(user)
        for group in [*map(group_name, self.streams), *self.access_groups]:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        CONNECTIONS.inc()
        self.counted = True
        for stream in self.streams:
            for message in await sync_to_async(_catch_up)(stream, after.get(stream)):
                await self.send_json(message)
        self.rechecking = asyncio.create_task(self.recheck_periodically())

    async def disconnect(self, code: int) -> None:
        if self.counted:
            CONNECTIONS.dec()
            self.counted = False
        await self.groups_leave()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Clients only listen: whatever they send (JSON or not) is ignored."""

    async def live_messages(self, event: dict[str, Any]) -> None:
        # A stream the socket stopped following (recheck) may still have messages queued for it,
        # sent to its group before the socket left the group.
        if self.closed or event["stream"] not in self.streams:
            return
        for message in event["messages"]:
            await self.send_json(_outgoing(event["stream"], message))

    async def live_close(self, event: dict[str, Any]) -> None:
        """Access ended (apps.live.access)."""
        await self.end(event["code"], event["reason"])

    async def live_recheck(self, event: dict[str, Any]) -> None:
        """Access may have narrowed (apps.live.access)."""
        await self.recheck()

    async def refuse(self, code: int, reason: str) -> None:
        """Accepted first, so that the client sees the code: a refused handshake has none."""
        await self.accept()
        await self.end(code, reason)

    async def end(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        await self.groups_leave()
        await self.close(code=code, reason=reason)

    async def groups_leave(self) -> None:
        if self.rechecking is not None and self.rechecking is not asyncio.current_task():
            self.rechecking.cancel()
        groups = [*map(group_name, self.streams), *self.access_groups]
        self.streams, self.access_groups = [], []
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def recheck(self) -> None:
        """Close the socket if its user may no longer follow any of its streams; stop following
        those of its streams the user may no longer see. When the database cannot say, the socket
        stays as it is and the next periodic re-check decides."""
        if self.closed:
            return
        token_id: int | None = self.scope.get("token_id")  # type: ignore[assignment]
        try:
            user = await database_sync_to_async(socket_user)(
                token_id=token_id, session_key=_session_key(self.scope)
            )
            allowed = await database_sync_to_async(self.streams_allowed)(user)
        except DatabaseError as error:
            # Said once per outage by this process, not once per socket; the socket stays open.
            database_outage().failed(error)
            return
        database_outage().succeeded()
        if not user.is_authenticated:
            await self.end(NOT_AUTHENTICATED, "no longer signed in")
            return
        kept = [stream for stream in self.streams if stream in allowed]
        if not kept:
            await self.end(NOT_AUTHORISED, "no longer allowed")
            return
        for stream in self.streams:
            if stream not in kept:
                await self.channel_layer.group_discard(group_name(stream), self.channel_name)
        self.streams = kept

    async def recheck_periodically(self) -> None:
        # Spread over the period, so that sockets opened together do not re-check together.
        await asyncio.sleep(random.uniform(0.5, 1) * RECHECK_SECONDS)  # noqa: S311  # no secret
        while not self.closed:
            await self.recheck()
            await asyncio.sleep(RECHECK_SECONDS)

    def access_groups_of(self, user: User) -> list[str]:
        """The groups through which apps.live.access reaches this socket."""
        groups = [user_group(user.id)]
        token_id: int | None = self.scope.get("token_id")  # type: ignore[assignment]
        session_key = _session_key(self.scope)
        if token_id is not None:
            groups.append(token_group(token_id))
        elif session_key is not None:
            groups.append(session_group(session_key))
        return groups

    def streams_allowed(self, user: User | AnonymousUser) -> list[str]:
        """The streams of this address that `user` may follow: none when it may not."""
        route = self.scope["url_route"]["kwargs"]
        if "job_id" in route:
            found = jobs_visible(user=user).filter(id=route["job_id"]).exists()
            return [f"job.{route['job_id']}"] if found else []
        if "run_id" in route:
            found = runs_visible(user=user).filter(id=route["run_id"]).exists()
            return [f"run.{route['run_id']}"] if found else []
        if "workflow_run_id" in route:
            visible = workflow_runs_visible(user=user).filter(id=route["workflow_run_id"])
            return [f"workflow_run.{route['workflow_run_id']}"] if visible.exists() else []
        return [f"team.{team_id}" for team_id in user_teams(user=user).values_list("id", flat=True)]


class NoRouteConsumer(AsyncJsonWebsocketConsumer):
    """Any other address under the WebSocket router: refused as not found, quietly."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=NOT_FOUND, reason="no such address")

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Closed already: nothing to read."""


def _session_key(scope: Any) -> str | None:
    session = scope.get("session")
    return session.session_key if session is not None else None


def _catch_up(stream: str, position: Position | None) -> list[dict[str, Any]]:
    """What a client at `position` (None: a new client) is sent on connecting to `stream`."""
    messages = backlog().after(stream, position) if position is not None else None
    if messages is None:
        return [{"type": "sync", "stream": stream, **asdict(backlog().position(stream))}]
    return [_outgoing(stream, message) for message in messages]


def _outgoing(stream: str, message: dict[str, Any]) -> dict[str, Any]:
    """A numbered message of `stream` as sent to clients."""
    event = {key: value for key, value in message.items() if key not in ("epoch", "seq")}
    return {
        "type": "message",
        "stream": stream,
        "epoch": message["epoch"],
        "seq": message["seq"],
        "event": event,
    }


def _positions(query_string: bytes) -> dict[str, Position] | None:
    """The client's positions from `?after=`; None when malformed."""
    values = parse_qs(query_string.decode("latin-1")).get("after", [])
    positions = {}
    for value in ",".join(values).split(",") if values else []:
        matched = _AFTER.match(value)
        if matched is None:
            return None
        positions[matched["stream"]] = Position(matched["epoch"], int(matched["seq"]))
    return positions
