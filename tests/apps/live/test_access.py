"""Open WebSockets close when their access ends (apps.live.access), against the real Channels
layer (channels-redis on the test Redis), each change made the way an operator makes it."""

import asyncio

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, Membership, Role
from apps.accounts.services import token_create
from apps.core.outages import Outage
from apps.live import consumers
from apps.live.access import user_group
from apps.live.broadcast import live_sender
from apps.runs.services.moves import run_cancel
from config.asgi import application
from tests.factories import JobFactory, MembershipFactory, RunFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
NOT_AUTHENTICATED, NOT_AUTHORISED = 4401, 4403


@pytest.fixture
def world():
    class World:
        pass

    world = World()
    world.team, world.other_team = TeamFactory(name="red"), TeamFactory(name="green")
    world.user = MembershipFactory(
        team=world.team, user=UserFactory(username="viewer"), role=Role.VIEWER
    ).user
    world.job = JobFactory(team=world.team, task_type="dts.noop", args={})
    world.other_job = JobFactory(team=world.other_team, task_type="dts.noop", args={})
    world.token, world.secret = token_create(user=world.user, name="ws")
    world.admin = User.objects.create_superuser("root", "root@example.com", "password")
    return world


@pytest_asyncio.fixture(autouse=True)
async def _connections_closed():
    yield
    await sync_to_async(connections.close_all)()


def bearer(secret: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {secret}".encode())


async def signed_in(user) -> tuple[Client, tuple[bytes, bytes]]:
    """A browser's client signed in as `user`, and the cookie its sockets send."""
    client = Client()
    await sync_to_async(client.force_login)(user)
    return client, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def connected(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])
    accepted, code = await communicator.connect(timeout=5)
    assert accepted, code
    assert (await communicator.receive_json_from(timeout=5))["type"] == "sync"
    return communicator


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 5) -> int:
    """The code the socket is closed with, within `timeout`; messages before it are skipped
    (other tests on the same Redis may send some)."""
    async with asyncio.timeout(timeout):
        while (message := await communicator.receive_output(timeout=timeout))["type"] != (
            "websocket.close"
        ):
            assert message["type"] == "websocket.send", message
    return message["code"]


async def still_open(communicator: WebsocketCommunicator, seconds: float = 0.5) -> bool:
    """Whether the socket is not closed within `seconds` (then it is closed by the client)."""
    try:
        await closed_with(communicator, timeout=seconds)
    except TimeoutError:
        await communicator.disconnect()
        return True
    return False


async def as_admin(world) -> Client:
    client = Client()
    await sync_to_async(client.force_login)(world.admin)
    return client


async def test_signing_out_closes_that_sessions_sockets_only(world):
    browser, cookie = await signed_in(world.user)
    _, other_cookie = await signed_in(world.user)  # the same user on another browser
    socket = await connected("/ws/runs/", cookie)
    other = await connected("/ws/runs/", other_cookie)

    response = await sync_to_async(browser.post)("/live/logout/")

    assert response.status_code == 302
    assert await closed_with(socket) == NOT_AUTHENTICATED
    assert await still_open(other)


async def test_revoking_a_token_closes_its_sockets_only(world):
    _, other_secret = await sync_to_async(token_create)(user=world.user, name="other")
    socket = await connected(f"/ws/jobs/{world.job.id}/", bearer(world.secret))
    other = await connected(f"/ws/jobs/{world.job.id}/", bearer(other_secret))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {other_secret}")

    response = await sync_to_async(api.delete)(f"/api/v1/tokens/{world.token.id}/")

    assert response.status_code == 200
    assert await closed_with(socket) == NOT_AUTHENTICATED
    assert await still_open(other)


async def test_revoking_tokens_in_the_admin_closes_their_sockets(world):
    socket = await connected("/ws/runs/", bearer(world.secret))
    admin = await as_admin(world)

    response = await sync_to_async(admin.post)(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [world.token.id]},
    )

    assert response.status_code == 302
    assert await closed_with(socket) == NOT_AUTHENTICATED


async def test_deleting_a_token_in_the_admin_closes_its_sockets(world):
    socket = await connected("/ws/runs/", bearer(world.secret))
    admin = await as_admin(world)

    response = await sync_to_async(admin.post)(
        f"/admin/accounts/apitoken/{world.token.id}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not await ApiToken.objects.filter(id=world.token.id).aexists()
    assert await closed_with(socket) == NOT_AUTHENTICATED


def user_form(user: User, **changes) -> dict:
    """The admin's change form of `user` as its page fills it, with `changes`."""
    return {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        **changes,
    }


async def test_deactivating_a_user_in_the_admin_closes_their_sockets(world):
    _, cookie = await signed_in(world.user)
    by_session = await connected("/ws/runs/", cookie)
    by_token = await connected(f"/ws/jobs/{world.job.id}/", bearer(world.secret))
    admin = await as_admin(world)
    form = user_form(world.user)
    del form["is_active"]  # the box unticked

    response = await sync_to_async(admin.post)(f"/admin/auth/user/{world.user.id}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    assert not (await User.objects.aget(id=world.user.id)).is_active
    assert await closed_with(by_session) == NOT_AUTHENTICATED
    assert await closed_with(by_token) == NOT_AUTHENTICATED


async def test_deleting_a_user_in_the_admin_closes_their_sockets(world):
    _, cookie = await signed_in(world.user)
    by_session = await connected("/ws/runs/", cookie)
    by_token = await connected("/ws/runs/", bearer(world.secret))
    admin = await as_admin(world)

    response = await sync_to_async(admin.post)(
        f"/admin/auth/user/{world.user.id}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert await closed_with(by_session) == NOT_AUTHENTICATED
    assert await closed_with(by_token) == NOT_AUTHENTICATED


async def test_saving_an_active_user_in_the_admin_keeps_their_sockets(world):
    socket = await connected("/ws/runs/", bearer(world.secret))
    admin = await as_admin(world)

    response = await sync_to_async(admin.post)(
        f"/admin/auth/user/{world.user.id}/change/", user_form(world.user, first_name="Vi")
    )

    assert response.status_code == 302
    assert await still_open(socket)


def team_form(team, memberships, *, removed) -> dict:
    """The admin's change form of `team` with its member rows, `removed`'s row marked deleted."""
    form = {
        "name": team.name,
        "max_active_schedules": "",
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for number, membership in enumerate(memberships):
        form |= {
            f"memberships-{number}-id": str(membership.id),
            f"memberships-{number}-team": str(team.id),
            f"memberships-{number}-user": str(membership.user_id),
            f"memberships-{number}-role": membership.role,
        }
        if membership.user_id == removed.id:
            form[f"memberships-{number}-DELETE"] = "on"
    return form


async def remove_from_team(world, team) -> None:
    """Remove world.user from `team` in the admin, as an operator does."""
    admin = await as_admin(world)
    memberships = [membership async for membership in Membership.objects.filter(team=team)]
    response = await sync_to_async(admin.post)(
        f"/admin/accounts/team/{team.id}/change/",
        team_form(team, memberships, removed=world.user),
    )
    assert response.status_code == 302, response.content[:2000]
    assert not await Membership.objects.filter(team=team, user=world.user).aexists()


async def test_removing_a_member_from_the_team_closes_their_sockets_of_its_job(world):
    await sync_to_async(
        lambda: MembershipFactory(team=world.team, user=UserFactory(username="stays"))
    )()
    socket = await connected(f"/ws/jobs/{world.job.id}/", bearer(world.secret))

    await remove_from_team(world, world.team)

    assert await closed_with(socket) == NOT_AUTHORISED


async def test_a_dashboard_stops_following_a_team_its_user_left_and_keeps_the_others(world):
    await sync_to_async(MembershipFactory)(team=world.other_team, user=world.user)
    dashboard = WebsocketCommunicator(
        application, "/ws/runs/", headers=[ORIGIN, bearer(world.secret)]
    )
    assert (await dashboard.connect(timeout=5))[0]
    syncs = {(await dashboard.receive_json_from(timeout=5))["stream"] for _ in range(2)}
    assert syncs == {f"team.{world.team.id}", f"team.{world.other_team.id}"}

    await remove_from_team(world, world.team)
    await rechecked(dashboard, world, f"team.{world.other_team.id}")
    runs = [
        await sync_to_async(RunFactory)(job=job, task_type="dts.noop", args={})
        for job in (world.job, world.other_job)
    ]
    for run in runs:
        await sync_to_async(run_cancel)(run=run, actor=None)
    assert await sync_to_async(live_sender().wait_idle)(10)

    received = []
    async with asyncio.timeout(5):
        while str(runs[1].id) not in received:
            message = await dashboard.receive_json_from(timeout=5)
            received.append(message["event"]["data"].get("run_id"))
            assert message["stream"] == f"team.{world.other_team.id}"
    assert str(runs[0].id) not in received
    assert await still_open(dashboard)


async def rechecked(socket: WebsocketCommunicator, world, kept_stream: str) -> None:
    """Wait until `socket` has handled the re-check sent when world.user left a team: a marker
    sent after it to the same socket (through the user's group), on a stream it keeps, comes out
    after the re-check has been handled, as a socket handles its messages in order."""
    await get_channel_layer().group_send(
        user_group(world.user.id), live_messages(kept_stream, marker="rechecked")
    )
    async with asyncio.timeout(5):
        while (await socket.receive_json_from(timeout=5))["event"].get("marker") != "rechecked":
            pass


def live_messages(stream: str, **event) -> dict:
    """A batch of one message of `stream`, as apps.live.broadcast sends it to a group."""
    return {
        "type": "live.messages",
        "stream": stream,
        "messages": [{"epoch": "0", "seq": 1, **event}],
    }


async def test_messages_queued_for_a_team_its_user_left_are_not_sent_after_the_recheck(world):
    """A message sent to the team's group before the socket left it may still be waiting for
    the socket behind the re-check; the user is not shown it."""
    await sync_to_async(MembershipFactory)(team=world.other_team, user=world.user)
    dashboard = WebsocketCommunicator(
        application, "/ws/runs/", headers=[ORIGIN, bearer(world.secret)]
    )
    assert (await dashboard.connect(timeout=5))[0]
    for _ in range(2):
        assert (await dashboard.receive_json_from(timeout=5))["type"] == "sync"
    await remove_from_team(world, world.team)

    # Queued behind the re-check (the user's group reaches the same socket as the team's).
    layer = get_channel_layer()
    await layer.group_send(
        user_group(world.user.id), live_messages(f"team.{world.team.id}", marker="left")
    )
    await layer.group_send(
        user_group(world.user.id), live_messages(f"team.{world.other_team.id}", marker="kept")
    )

    received = await dashboard.receive_json_from(timeout=5)
    assert (received["stream"], received["event"]["marker"]) == (
        f"team.{world.other_team.id}",
        "kept",
    )
    assert await still_open(dashboard)


def database_down_for(monkeypatch, calls: int) -> list[int]:
    """The database unreachable for the sockets' next `calls` re-checks; the count of them."""
    failed = []
    reachable = consumers.socket_user

    def socket_user(**kwargs):
        if len(failed) < calls:
            failed.append(1)
            raise OperationalError("connection refused")
        return reachable(**kwargs)

    monkeypatch.setattr(consumers, "socket_user", socket_user)
    outage = Outage(dependency="test", logger=consumers.logger)
    monkeypatch.setattr(consumers, "database_outage", lambda: outage)
    return failed


async def test_a_recheck_the_database_cannot_answer_keeps_the_socket_and_says_so_once(
    world, monkeypatch, caplog
):
    socket = await connected("/ws/runs/", bearer(world.secret))
    failed = database_down_for(monkeypatch, calls=3)

    for _ in range(3):  # told, as when a user leaves a team
        await get_channel_layer().group_send(user_group(world.user.id), {"type": "live.recheck"})
    await rechecked(socket, world, f"team.{world.team.id}")

    assert len(failed) == 3
    assert await still_open(socket)
    assert caplog.text.count("unreachable") == 1


async def test_after_a_database_outage_the_next_periodic_recheck_decides(world, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.2)
    socket = await connected("/ws/runs/", bearer(world.secret))
    failed = database_down_for(monkeypatch, calls=2)
    await ApiToken.objects.filter(id=world.token.id).aupdate(revoked_at=timezone.now())

    assert await closed_with(socket, timeout=5) == NOT_AUTHENTICATED
    assert len(failed) == 2


@pytest.mark.parametrize("change", ["user deactivated", "token expired"])
async def test_a_change_made_without_a_signal_closes_the_socket_within_the_recheck_period(
    world, monkeypatch, change
):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.5)
    socket = await connected("/ws/runs/", bearer(world.secret))

    # update(), not save(): no signal
    if change == "user deactivated":
        await User.objects.filter(id=world.user.id).aupdate(is_active=False)
    else:
        await ApiToken.objects.filter(id=world.token.id).aupdate(expires_at=timezone.now())

    assert await closed_with(socket, timeout=5) == NOT_AUTHENTICATED


async def test_an_expired_session_closes_its_sockets_within_the_recheck_period(world, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.5)
    browser, cookie = await signed_in(world.user)
    socket = await connected(f"/ws/jobs/{world.job.id}/", cookie)

    await sync_to_async(browser.session.delete)()

    assert await closed_with(socket, timeout=5) == NOT_AUTHENTICATED


async def test_a_password_change_closes_the_other_sessions_sockets_within_the_recheck_period(
    world, monkeypatch
):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.5)
    _, cookie = await signed_in(world.user)
    socket = await connected("/ws/runs/", cookie)

    def password_change() -> None:
        world.user.set_password("another password")
        world.user.save()

    await sync_to_async(password_change)()

    assert await closed_with(socket, timeout=5) == NOT_AUTHENTICATED


async def test_a_socket_that_keeps_its_access_stays_open_across_rechecks(world, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.2)
    _, cookie = await signed_in(world.user)
    socket = await connected(f"/ws/jobs/{world.job.id}/", cookie)

    await asyncio.sleep(1)

    assert await still_open(socket)


async def test_revoking_a_token_works_while_the_channel_layer_is_down(world, monkeypatch, caplog):
    class DownLayer:
        async def group_send(self, group, message):
            raise ConnectionError("Redis is down")

    monkeypatch.setattr("apps.live.access.get_channel_layer", DownLayer)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world.secret}")

    response = await sync_to_async(api.delete)(f"/api/v1/tokens/{world.token.id}/")

    assert response.status_code == 200
    assert (await ApiToken.objects.aget(id=world.token.id)).revoked_at is not None
    assert "Could not tell the sockets" in caplog.text
