"""How a pool process writes attempt endings from its background thread (workers.background)."""

import logging
import threading
import uuid
from types import SimpleNamespace

import pytest
from celery.signals import worker_process_init, worker_process_shutdown

from apps.runs.states import RunState
from dispatch.messages import EXECUTE_RUN_TASK
from workers import background, signals
from workers.background import background_wait, in_background


@pytest.fixture
def pool_process(monkeypatch):
    """This process as a prefork pool process is after Celery's worker_process_init."""
    monkeypatch.setattr(background, "_writer", None)
    worker_process_init.send(sender="test-worker")
    assert background._writer is not None
    yield
    background_wait()


def test_outside_a_pool_process_the_write_is_made_in_line(monkeypatch):
    monkeypatch.setattr(background, "_writer", None)
    threads = []

    in_background(lambda: threads.append(threading.get_ident()))

    assert threads == [threading.get_ident()]


def test_a_pool_process_returns_at_once_and_waits_for_the_write_before_going_on(pool_process):
    release, written, threads = threading.Event(), [], []

    def write(*, number):
        threads.append(threading.get_ident())
        release.wait(10)
        written.append(number)

    in_background(write, number=1)
    assert written == []  # the caller went on while the write waits

    threading.Timer(0.2, release.set).start()
    background_wait()
    assert written == [1]
    assert threads != [threading.get_ident()]


def test_a_second_write_waits_for_the_first_so_they_happen_in_order(pool_process):
    written = []

    def write(*, number):
        written.append(number)

    for number in range(1, 6):
        in_background(write, number=number)
    background_wait()

    assert written == [1, 2, 3, 4, 5]


def test_a_failed_write_is_logged_and_the_process_goes_on(pool_process, caplog):
    def write():
        raise RuntimeError("database gone")

    in_background(write)
    with caplog.at_level(logging.ERROR, logger="workers.background"):
        background_wait()

    assert "Could not record how an attempt ended" in caplog.text
    assert "database gone" in caplog.text


def test_a_pool_process_that_exits_writes_what_is_pending_first(pool_process):
    release, written = threading.Event(), []

    def write():
        release.wait(10)
        written.append("ended")

    in_background(write)
    threading.Timer(0.2, release.set).start()
    worker_process_shutdown.send(sender="test-worker", pid=0, exitcode=0)

    assert written == ["ended"]


def test_a_pool_process_records_a_success_from_its_background_thread(pool_process, monkeypatch):
    ended = []

    def run_attempt_end(**ending):
        ended.append((threading.get_ident(), ending))

    monkeypatch.setattr(signals, "run_attempt_end", run_attempt_end)
    run_id = uuid.uuid4()
    task = SimpleNamespace(name=EXECUTE_RUN_TASK, request=SimpleNamespace(args=[str(run_id), 2]))

    signals.record_success(sender=task, result={"ok": True})
    background_wait()

    [(thread, ending)] = ended
    assert thread != threading.get_ident()
    assert ending == {
        "run_id": str(run_id),
        "attempt": 2,
        "outcome": RunState.SUCCEEDED,
        "result": {"ok": True},
    }
