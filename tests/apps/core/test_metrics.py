"""apps.core.metrics: a process serves its metrics on its port; a port already taken is logged once
and the process goes on; port 0 serves none. In multiprocess mode it serves its processes' files
summed, the live gauges of dead processes left out."""

import logging
import os
import socket
import subprocess
import sys
from unittest import mock

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from apps.core.metrics import dead_processes_mark, metrics_registry, metrics_serve
from tests.processes import free_port


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
        mock.patch("apps.core.metrics.MetricsServer") as server,
        caplog.at_level(logging.INFO, logger="apps.core.metrics"),
    ):
        assert metrics_serve(port=0, address="127.0.0.1", setting="X") is False
    server.assert_not_called()
    assert caplog.records == []


def test_a_free_port_serves_the_default_registry_and_the_texts_in_text_format():
    port = free_port()
    assert metrics_serve(
        port=port,
        address="127.0.0.1",
        setting="X",
        texts=[lambda: b"# TYPE dts_measured_apart gauge\ndts_measured_apart 1.0\n"],
    )
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "python_info" in response.text  # the default registry
    assert response.text.endswith("dts_measured_apart 1.0\n")
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404


def test_a_multiprocess_registry_sums_the_files_and_leaves_dead_processes_live_gauges_out(
    tmp_path, monkeypatch
):
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    alive = os.getpid()
    for pid, active in ((dead.pid, 1), (alive, 2)):
        counters = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        counters.write_value(
            mmap_key("dts_runs_started", "dts_runs_started_total", [], [], ""), 5, 0
        )
        counters.close()
        gauges = MmapedDict(str(tmp_path / f"gauge_livesum_{pid}.db"))
        gauges.write_value(mmap_key("dts_runs_active", "dts_runs_active", [], [], ""), active, 0)
        gauges.close()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    registry = metrics_registry()

    assert registry is not REGISTRY
    assert registry.get_sample_value("dts_runs_started_total") == 10  # the dead one's kept
    assert registry.get_sample_value("dts_runs_active") == 2  # the dead one's left out
    assert not (tmp_path / f"gauge_livesum_{dead.pid}.db").exists()
    assert dead_processes_mark(str(tmp_path)) == []
