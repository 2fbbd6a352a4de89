"""Refusals as a client sees them from the real web server (uvicorn): a close code it can read
(a refused handshake reaches the client as an HTTP 403, whatever the consumer meant), and no
traceback in the server's log for addresses with no route."""

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.conftest import API_SERVER_BROKER_URL, stop_process, web_start, web_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log = tmp_path_factory.mktemp("web") / "uvicorn.log"
    process = web_start(broker_url=API_SERVER_BROKER_URL, log=log)
    yield web_url(process), log
    stop_process(process)


def close_code(url: str, path: str) -> int:
    """The code the server closes the socket at `path` with, once open."""
    address = "ws" + url.removeprefix("http") + path
    with (
        connect(address, origin=Origin(url), open_timeout=10) as socket,
        pytest.raises(ConnectionClosedError) as closed,
    ):
        socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_an_anonymous_socket_is_closed_4401_not_refused_at_the_handshake(server):
    url, _ = server

    assert close_code(url, "/ws/runs/") == 4401


@pytest.mark.parametrize("path", ["/ws/", "/ws/nothing/", "/ws/runs/not-a-uuid/", "/ws/jobs/abc/"])
def test_an_address_with_no_route_is_closed_4404_and_logs_no_error(server, path):
    url, log = server
    before = log.stat().st_size

    assert close_code(url, path) == 4404

    written = log.read_text(errors="replace")[before:]
    assert "Traceback" not in written
    assert "ERROR" not in written
    assert len(written.splitlines()) <= 3, written  # uvicorn's own lines: accepted, open, closed


def test_a_page_of_another_site_is_refused_at_the_handshake(server):
    url, _ = server
    address = "ws" + url.removeprefix("http") + "/ws/runs/"

    with pytest.raises(InvalidStatus) as refused:
        connect(address, origin=Origin("https://evil.example"), open_timeout=10)

    assert refused.value.response.status_code == 403
