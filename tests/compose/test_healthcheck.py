"""compose/healthcheck.py, the image's HEALTHCHECK and the chart's probe, chooses its check by the
dts process it finds among the container's processes. (tests/deploy/test_image.py and
test_compose.py run it in containers, with and without an init.)"""

import os
import runpy
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.processes import REPO

healthcheck = SimpleNamespace(**runpy.run_path(str(REPO / "compose" / "healthcheck.py")))

WEB = ["/opt/venv/bin/python", "/opt/venv/bin/uvicorn", "config.asgi:application", "--port"]
WORKER = ["/opt/venv/bin/python", "/opt/venv/bin/celery", "-A", "workers", "worker"]
RELAY = ["python", "manage.py", "relay_events"]
INDEXER = ["python", "manage.py", "index_logs"]
MIGRATE = ["python", "manage.py", "migrate", "--noinput"]


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        (WEB, "uvicorn"),
        (WORKER, "celery"),
        (RELAY, "manage.py relay_events"),
        (INDEXER, "manage.py index_logs"),
        (MIGRATE, "manage.py migrate"),
        (["sh"], ""),
    ],
)
def test_command_name_looks_past_the_interpreter(arguments: list[str], name: str):
    assert healthcheck.command_name(arguments) == name


def test_the_dts_process_is_found_behind_an_init():
    # compose's `init: true`: PID 1 is docker-init, its child the process the start script exec'd.
    init = ["/sbin/docker-init", "--", "/app/compose/start/worker"]
    check = ["python", "/app/compose/healthcheck.py"]
    assert healthcheck.dts_process([init, WORKER, [*WORKER, "(pool)"], check]) == WORKER
    assert healthcheck.dts_process([init, check]) == []


@pytest.mark.parametrize(
    ("arguments", "port"),
    [([*WEB, "9000"], 9000), ([*WEB[:-1], "--port=9001"], 9001), (WEB[:-1], 8000)],
)
def test_web_port_comes_from_uvicorn_arguments(arguments: list[str], port: int):
    assert healthcheck.web_port(arguments) == port


@pytest.mark.parametrize("arguments", [WORKER, RELAY, INDEXER])
def test_a_looping_process_is_healthy_while_its_heartbeat_file_is_fresh(
    arguments: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    heartbeat = tmp_path / "heartbeat"
    monkeypatch.setenv("DTS_HEARTBEAT_FILE", str(heartbeat))
    monkeypatch.setenv("DTS_HEARTBEAT_MAX_AGE", "30")
    init = ["/sbin/docker-init", "--", "/app/compose/start/process"]
    assert healthcheck.main([init, arguments]) == 1  # never touched: the loop never started
    heartbeat.touch()
    assert healthcheck.main([init, arguments]) == 0
    stale = time.time() - 31
    os.utime(heartbeat, (stale, stale))
    assert healthcheck.main([arguments]) == 1


def test_a_one_shot_process_is_healthy_without_a_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DTS_HEARTBEAT_FILE", str(tmp_path / "never-touched"))
    assert healthcheck.main([MIGRATE]) == 0


def test_without_a_heartbeat_file_setting_a_looping_process_is_not_judged(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("DTS_HEARTBEAT_FILE", raising=False)
    assert healthcheck.main([WORKER]) == 0
