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
Close codes: 4400 bad `after`, 4401 not authenticated, 4404 not found or not the user's."""

import re
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser, User

from apps.accounts.selectors import user_teams
from apps.jobs.selectors import jobs_visible
from apps.live.broadcast import group_name, live_relay_ensure
from apps.live.streams import Position, backlog
from apps.runs.selectors import runs_visible

BAD_REQUEST, UNAUTHENTICATED, NOT_FOUND = 4400, 4401, 4404
_AFTER = re.compile(
    r"^(?P<stream>[a-z]+\.[0-9a-f-]+):(?P<epoch>[0-9a-f]{1,32}):(?P<seq>[0-9]{1,18})$"
)


class StreamsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        live_relay_ensure()
        user: Any = self.scope.get("user") or AnonymousUser()
        if not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        after = _positions(self.scope.get("query_string", b""))
        if after is None:
            await self.close(code=BAD_REQUEST)
            return
        self.streams = await database_sync_to_async(self.streams_allowed)(user)
        if not self.streams:
            await self.close(code=NOT_FOUND)
            return
        for stream in self.streams:
            await self.channel_layer.group_add(group_name(stream), self.channel_name)
        await self.accept()
        for stream in self.streams:
            for message in await sync_to_async(_catch_up)(stream, after.get(stream)):
                await self.send_json(message)

    async def disconnect(self, code: int) -> None:
        for stream in getattr(self, "streams", []):
            await self.channel_layer.group_discard(group_name(stream), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients only listen."""

    async def live_messages(self, event: dict[str, Any]) -> None:
        for message in event["messages"]:
            await self.send_json(_outgoing(event["stream"], message))

    def streams_allowed(self, user: User) -> list[str]:
        """The streams of this address that `user` may follow: none when it may not."""
        route = self.scope["url_route"]["kwargs"]
        if "job_id" in route:
            found = jobs_visible(user=user).filter(id=route["job_id"]).exists()
            return [f"job.{route['job_id']}"] if found else []
        if "run_id" in route:
            found = runs_visible(user=user).filter(id=route["run_id"]).exists()
            return [f"run.{route['run_id']}"] if found else []
        return [f"team.{team_id}" for team_id in user_teams(user=user).values_list("id", flat=True)]


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
