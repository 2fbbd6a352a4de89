"""apps.core.metrics: a process serves its metrics on its port; a port already taken is logged once
and the process goes on; port 0 serves none."""

import logging
import socket
from unittest import mock

from prometheus_client import REGISTRY

from apps.core.metrics import metrics_serve


def test_a_port_already_taken_is_logged_once_naming_the_setting_and_the_process_goes_on(caplog):
    with socket.socket() as holder:  # another worker on the host
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with caplog.at_level(logging.INFO, logger="apps.core.metrics"):
            served = metrics_serve(
                port=port, address="127.0.0.1", setting="DTS_WORKER_METRICS_PORT"
            )

    assert served is False
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None  # one line, no traceback
    assert f"cannot listen on 127.0.0.1:{port}" in record.getMessage()
    assert "DTS_WORKER_METRICS_PORT" in record.getMessage()


def test_port_0_serves_nothing(caplog):
    with (
        mock.patch("apps.core.metrics.start_http_server") as start,
        caplog.at_level(logging.INFO, logger="apps.core.metrics"),
    ):
        assert metrics_serve(port=0, address="127.0.0.1", setting="X") is False
    start.assert_not_called()
    assert caplog.records == []


def test_a_free_port_serves_the_default_registry_on_the_address():
    with mock.patch("apps.core.metrics.start_http_server") as start:
        assert metrics_serve(port=9109, address="10.0.0.1", setting="X") is True
    start.assert_called_once_with(9109, addr="10.0.0.1", registry=REGISTRY)
