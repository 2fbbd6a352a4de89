"""The WebSockets against the real Channels layer (channels-redis on the test Redis)."""

import asyncio
import logging

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from prometheus_client import REGISTRY

from apps.accounts.models import Role
from apps.accounts.services import token_create
from apps.live.broadcast import live_sender
from apps.live.streams import backlog
from apps.runs.logs import run_log_capture
from apps.runs.services.moves import run_cancel
from apps.workflows.services import workflow_create, workflow_run_cancel, workflow_trigger
from config.asgi import application
from tests.factories import JobFactory, MembershipFactory, RunFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture
def world():
    team, other = TeamFactory(name="red"), TeamFactory(name="blue")
    viewer = MembershipFactory(team=team, user=UserFactory(username="viewer"), role=Role.VIEWER)
    job = JobFactory(team=team, task_type="dts.noop", args={})
    other_job = JobFactory(team=other, task_type="dts.noop", args={})

    class World:
        pass

    world = World()
    world.team, world.job, world.other_job = team, job, other_job
    world.user = viewer.user
    world.token = token_create(user=viewer.user, name="ws")[1]
    world.run = RunFactory(job=job, task_type="dts.noop", args={})
    world.other_run = RunFactory(job=other_job, task_type="dts.noop", args={})
    return world


@pytest_asyncio.fixture(autouse=True)
async def _connections_closed():
    """The services called here run on asgiref's thread: close its connection, or the test
    database cannot be dropped."""
    yield
    await sync_to_async(connections.close_all)()


def socket(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])


def bearer(token: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {token}".encode())


async def connected(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    communicator = socket(path, *headers)
    accepted, code = await communicator.connect(timeout=5)
    assert accepted, code
    return communicator


async def refused(path: str, *headers: tuple[bytes, bytes]) -> int:
    """The code a socket at `path` is closed with once accepted (a refused handshake would have
    none: browsers and clients see an HTTP 403)."""
    communicator = socket(path, *headers)
    accepted, _ = await communicator.connect(timeout=5)
    assert accepted
    closing = await communicator.receive_output(timeout=5)
    assert closing["type"] == "websocket.close"
    return closing["code"]


async def numbered(stream: str, seq: int) -> None:
    """Wait until the relay has numbered `stream` up to `seq`: a client cannot have seen a
    message before it is numbered."""
    for _ in range(100):
        if (await sync_to_async(backlog().position)(stream)).seq >= seq:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{stream} was not numbered up to {seq}")


async def cancel(run) -> None:
    await sync_to_async(run_cancel)(run=run, actor=None)
    assert await sync_to_async(live_sender().wait_idle)(10)


async def test_an_anonymous_socket_is_refused(world):
    assert await refused("/ws/runs/") == 4401


async def test_a_bad_token_is_refused_even_with_no_session(world):
    assert await refused("/ws/runs/", bearer("dts_not-a-token")) == 4401


async def test_a_foreign_origin_is_refused(world):
    communicator = WebsocketCommunicator(
        application,
        "/ws/runs/",
        headers=[(b"origin", b"https://evil.example"), bearer(world.token)],
    )

    accepted, _ = await communicator.connect(timeout=5)

    assert not accepted


@pytest.mark.parametrize("path", ["/ws/jobs/{other_job}/", "/ws/runs/{other_run}/"])
async def test_another_teams_job_or_run_is_refused(world, path):
    address = path.format(other_job=world.other_job.id, other_run=world.other_run.id)

    assert await refused(address, bearer(world.token)) == 4404


@pytest.mark.parametrize("after", ["nonsense", "team.1:zz:1", "team.1:ab:-1"])
async def test_a_malformed_position_is_refused(world, after):
    assert await refused(f"/ws/runs/?after={after}", bearer(world.token)) == 4400


async def test_the_dashboard_syncs_then_streams_its_teams_runs_numbered(world):
    communicator = await connected("/ws/runs/", bearer(world.token))
    sync = await communicator.receive_json_from(timeout=5)

    await cancel(world.run)
    await cancel(world.other_run)  # another team's: not on this dashboard
    message = await communicator.receive_json_from(timeout=5)

    stream = f"team.{world.team.id}"
    assert sync["type"] == "sync"
    assert sync["stream"] == stream
    assert message["type"] == "message"
    assert message["stream"] == stream
    assert (message["epoch"], message["seq"]) == (sync["epoch"], sync["seq"] + 1)
    assert message["event"]["type"] == "dts.run.cancelled"
    assert message["event"]["data"]["run_id"] == str(world.run.id)
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_session_user_is_let_in(world):
    client = Client()
    await sync_to_async(client.force_login)(world.user)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())

    communicator = await connected(f"/ws/jobs/{world.job.id}/", cookie)

    assert (await communicator.receive_json_from(timeout=5))["stream"] == f"job.{world.job.id}"
    await communicator.disconnect()


async def test_a_client_that_reconnects_gets_what_it_missed_once_and_in_order(world):
    first = await connected(f"/ws/jobs/{world.job.id}/", bearer(world.token))
    sync = await first.receive_json_from(timeout=5)
    await first.disconnect()
    runs = [await sync_to_async(RunFactory)(job=world.job) for _ in range(3)]
    for run in runs:
        await cancel(run)
    await numbered(f"job.{world.job.id}", sync["seq"] + 3)

    after = f"job.{world.job.id}:{sync['epoch']}:{sync['seq'] + 1}"  # it saw the first one
    again = await connected(f"/ws/jobs/{world.job.id}/?after={after}", bearer(world.token))
    missed = [await again.receive_json_from(timeout=5) for _ in range(2)]

    assert [message["seq"] for message in missed] == [sync["seq"] + 2, sync["seq"] + 3]
    assert [message["event"]["data"]["run_id"] for message in missed] == [
        str(run.id) for run in runs[1:]
    ]
    assert await again.receive_nothing(timeout=0.5)
    await again.disconnect()


async def test_a_client_from_another_epoch_is_told_to_resync(world):
    after = f"job.{world.job.id}:abcdef:7"

    communicator = await connected(f"/ws/jobs/{world.job.id}/?after={after}", bearer(world.token))
    sync = await communicator.receive_json_from(timeout=5)

    assert sync["type"] == "sync"
    assert sync["epoch"] != "abcdef"
    await communicator.disconnect()


async def test_a_run_page_streams_the_runs_log_lines(world):
    communicator = await connected(f"/ws/runs/{world.run.id}/", bearer(world.token))
    await communicator.receive_json_from(timeout=5)

    def log() -> None:
        with run_log_capture(run_id=world.run.id, job_id=world.run.job_id, attempt=1):
            logging.getLogger("task").warning("half way")

    await sync_to_async(log)()
    assert await sync_to_async(live_sender().wait_idle)(10)
    message = await communicator.receive_json_from(timeout=5)

    assert message["event"]["type"] == "dts.run.log"
    [line] = message["event"]["data"]["lines"]
    assert (line["sequence"], line["level"], line["message"]) == (1, "WARNING", "half way")
    await communicator.disconnect()


async def test_open_sockets_are_counted_and_refused_ones_are_not(world):
    def open_sockets() -> float:
        return REGISTRY.get_sample_value("dts_live_connections") or 0.0

    before = open_sockets()
    assert await refused("/ws/runs/") == 4401
    assert open_sockets() == before

    first = await connected("/ws/runs/", bearer(world.token))
    second = await connected(f"/ws/jobs/{world.job.id}/", bearer(world.token))
    assert open_sockets() == before + 2

    await first.disconnect()
    await second.disconnect()
    assert open_sockets() == before


async def test_a_workflow_run_page_streams_its_changes_and_another_teams_is_refused(world):
    def workflow_run(job):
        # On a queue the tests' worker does not read: its step stays queued until cancelled.
        job.queue = "faults"
        job.save(update_fields=["queue"])
        steps = [{"name": "a", "job": job}]
        return workflow_trigger(workflow=workflow_create(team=job.team, name="etl", steps=steps))

    ours = await sync_to_async(workflow_run)(world.job)
    theirs = await sync_to_async(workflow_run)(world.other_job)
    communicator = await connected(f"/ws/workflow-runs/{ours.id}/", bearer(world.token))
    await communicator.receive_json_from(timeout=5)

    await sync_to_async(workflow_run_cancel)(workflow_run=ours)
    assert await sync_to_async(live_sender().wait_idle)(10)
    # Its start, pending when the socket opened, comes first.
    events = [(await communicator.receive_json_from(timeout=5))["event"] for _ in range(2)]

    assert [event["type"].rsplit(".", 1)[1] for event in events] == ["started", "cancelled"]
    assert {event["data"]["workflow_run_id"] for event in events} == {str(ours.id)}
    assert events[0]["data"]["steps"] == {"a": "running"}
    assert events[1]["data"]["steps"] == {"a": "cancelled"}
    await communicator.disconnect()
    assert await refused(f"/ws/workflow-runs/{theirs.id}/", bearer(world.token)) == 4404
