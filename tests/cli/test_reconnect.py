"""How the CLI follows a WebSocket (cli.client.Client.follow): a refusal ends it at once with its
exit code; a server that is down, failing or restarting is retried with backoff.

Against the real web server (uvicorn on the test database) where the server decides, and a
small WebSocket server of the test's own where the test must choose what the server answers."""

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from typer.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from apps.accounts.models import Membership, Role
from apps.accounts.services import token_create, token_revoke
from cli import client as cli_client
from cli.client import ApiError, Client, ExitCode
from cli.main import app
from tests.conftest import API_SERVER_BROKER_URL, stop_process, web_start
from tests.factories import JobFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SYNC = {"type": "sync", "stream": "team.1", "epoch": "ab", "seq": 0}


@pytest.fixture
def member():
    """A viewer of team "ops" with a job, and their token."""
    team = TeamFactory(name="ops")
    user = MembershipFactory(team=team, user=UserFactory(username="ana"), role=Role.VIEWER).user
    token, secret = token_create(user=user, name="cli")
    return JobFactory(team=team, name="nightly", task_type="dts.noop", args={}), token, secret


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The delays Client.follow waits between attempts (waited, and noted)."""
    waited: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        if len(waited) > 5:  # a refusal retried: fail rather than wait for ever
            raise RuntimeError(f"still retrying after {waited}")
        real_sleep(seconds)

    monkeypatch.setattr(cli_client, "time", SimpleNamespace(sleep=sleep))
    return waited


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def following_group(group: str, timeout: float = 20) -> None:
    """Wait until a socket of the web server has joined the Channels group `group`."""
    live = redis.Redis.from_url(settings.DTS_LIVE_REDIS_URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live.pubsub_channels(f"*__group__{group}"):
            return
        time.sleep(0.1)
    pytest.fail(f"no socket joined {group} within {timeout} s")


def dts_in_background(api_server: str, secret: str, monkeypatch, tmp_path, *args: str):
    """Run `dts *args` in a thread, logged in with `secret`; the thread and where its result
    will be."""
    monkeypatch.setenv("DTS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DTS_URL", api_server)
    monkeypatch.setenv("DTS_TOKEN", secret)
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(done=CliRunner().invoke(app, list(args))), daemon=True
    )
    thread.start()
    return thread, result


# Refusals by the real server -------------------------------------------------------------------


def test_another_teams_job_is_refused_at_once_as_not_found(api_server, member, sleeps):
    other_job = JobFactory(team=TeamFactory(name="elsewhere"), task_type="dts.noop", args={})

    with pytest.raises(ApiError) as refused:
        next(Client(api_server, member[2]).follow(f"/ws/jobs/{other_job.id}/"))

    assert refused.value.exit_code == ExitCode.NOT_FOUND
    assert "(4404)" in str(refused.value)
    assert sleeps == []


def test_a_bad_token_is_refused_at_once_as_not_signed_in(api_server, sleeps):
    with pytest.raises(ApiError) as refused:
        next(Client(api_server, "dts_not-a-token").follow("/ws/runs/"))

    assert refused.value.exit_code == ExitCode.AUTH
    assert "(4401)" in str(refused.value)
    assert sleeps == []


def test_runs_watch_exits_4_when_its_token_is_revoked(api_server, member, monkeypatch, tmp_path):
    job, token, secret = member
    thread, result = dts_in_background(
        api_server, secret, monkeypatch, tmp_path, "runs", "watch", "--job", job.name
    )
    following_group(f"dts.token.{token.id}")

    token_revoke(token=token)
    thread.join(20)

    assert not thread.is_alive(), "dts runs watch went on after its token was revoked"
    assert result["done"].exit_code == ExitCode.AUTH, result["done"].output
    assert "(4401)" in result["done"].output
    assert "token revoked" in result["done"].output


def test_runs_watch_exits_4_when_its_user_leaves_the_team(
    api_server, member, monkeypatch, tmp_path
):
    job, token, secret = member
    thread, result = dts_in_background(
        api_server, secret, monkeypatch, tmp_path, "runs", "watch", "--job", job.name
    )
    following_group(f"dts.user.{token.user_id}")

    Membership.objects.get(user_id=token.user_id).delete()
    thread.join(20)

    assert not thread.is_alive(), "dts runs watch went on after its user left the team"
    assert result["done"].exit_code == ExitCode.AUTH, result["done"].output
    assert "(4403)" in result["done"].output


# A server that is down ------------------------------------------------------------------------


def test_follow_retries_with_backoff_while_the_server_is_down_then_streams(
    django_db_setup, member, monkeypatch, tmp_path
):
    port = free_port()
    servers = []
    waited: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        if len(waited) == 3:  # down for three attempts: now it starts
            servers.append(
                web_start(broker_url=API_SERVER_BROKER_URL, log=tmp_path / "web.log", port=port)
            )
        else:
            real_sleep(seconds)

    monkeypatch.setattr(cli_client, "time", SimpleNamespace(sleep=sleep))
    try:
        first = next(Client(f"http://127.0.0.1:{port}", member[2]).follow("/ws/runs/"))
    finally:
        for server in servers:
            stop_process(server)

    assert first is None  # the sync: the client reloads, then streams
    assert waited == [0.5, 1.0, 2.0]


# What the server answers, chosen by the test ---------------------------------------------------


@pytest.fixture
def fake_server() -> Iterator[Callable[..., str]]:
    """Start a WebSocket server whose handshakes answer `statuses` in turn (None: accepted) and
    whose accepted sockets run `handler`; its URL."""
    started = []

    def start(handler: Callable[[ServerConnection], None], statuses: list[int | None]) -> str:
        answers = iter(statuses)

        def process_request(connection: ServerConnection, request):
            status = next(answers, None)
            return connection.respond(status, "no\n") if status is not None else None

        server = serve(handler, "127.0.0.1", 0, process_request=process_request)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return f"http://127.0.0.1:{server.socket.getsockname()[1]}"

    yield start
    for server in started:
        server.shutdown()


def sends_sync(connection: ServerConnection) -> None:
    connection.send(json.dumps(SYNC))
    with contextlib.suppress(ConnectionClosed):
        connection.recv()  # until the client goes


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_failing_or_busy_handshake_is_retried(fake_server, sleeps, status):
    url = fake_server(sends_sync, [status, status])

    assert next(Client(url, "dts_x").follow("/ws/runs/")) is None
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (404, ExitCode.NOT_FOUND),
        (400, ExitCode.INVALID),
    ],
)
def test_a_refused_handshake_is_not_retried(fake_server, sleeps, status, exit_code):
    url = fake_server(sends_sync, [status])

    with pytest.raises(ApiError) as refused:
        next(Client(url, "dts_x").follow("/ws/runs/"))

    assert refused.value.exit_code == exit_code
    assert f"({status})" in str(refused.value)
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (4400, ExitCode.INVALID),
        (4401, ExitCode.AUTH),
        (4403, ExitCode.AUTH),
        (4404, ExitCode.NOT_FOUND),
    ],
)
def test_a_refusing_close_code_is_not_retried(fake_server, sleeps, code, exit_code):
    url = fake_server(lambda connection: connection.close(code, "because"), [None])

    with pytest.raises(ApiError) as refused:
        next(Client(url, "dts_x").follow("/ws/runs/"))

    assert refused.value.exit_code == exit_code
    assert f"({code})" in str(refused.value)
    assert "(because)" in str(refused.value)
    assert sleeps == []


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012])
def test_a_server_that_closes_for_its_own_reasons_is_reconnected_with_backoff(
    fake_server, sleeps, code
):
    connections = []

    def closes_twice_then_syncs(connection: ServerConnection) -> None:
        connections.append(connection)
        if len(connections) <= 2:
            connection.close(code)
        else:
            sends_sync(connection)

    url = fake_server(closes_twice_then_syncs, [None, None, None])

    assert next(Client(url, "dts_x").follow("/ws/runs/")) is None
    assert sleeps == [0.5, 1.0]
