"""Every Celery message is JSON, never pickle: a pickled message would let whoever can write to
the broker run code in the workers. The configuration says so in every settings module, and a
real worker refuses a pickled `execute_run` message (while it runs the same message in JSON)."""

import json
import os
import subprocess
import sys

import pytest
from django.utils.crypto import get_random_string

from apps.runs.states import RunState
from dispatch.celery import app
from dispatch.messages import EXECUTE_RUN_TASK
from tests.conftest import REPO, start_celery, stop_process, wait_for_log_line, wait_for_run
from tests.factories import JobFactory, RunFactory

# The worker of this module consumes a queue of its own (the fault tests' queue, which no other
# worker of this session reads while this module runs).
QUEUE = "faults"
REFUSAL = "Refusing to deserialize untrusted content of type pickle"
CONTENT_SETTINGS = [
    "accept_content",
    "task_serializer",
    "result_serializer",
    "event_serializer",
    "result_accept_content",
]
PRINT_CONTENT_SETTINGS = (
    "import json; from dispatch.celery import app; "
    f"print(json.dumps({{name: app.conf[name] for name in {CONTENT_SETTINGS!r}}}))"
)


def assert_json_only(conf) -> None:
    assert conf["accept_content"] == ["json"]
    assert (conf["task_serializer"], conf["result_serializer"]) == ("json", "json")
    assert conf["event_serializer"] == "json"
    # Unset, results accept what accept_content does.
    assert conf["result_accept_content"] in (None, ["json"])


def test_the_celery_app_sends_and_accepts_json_only():
    assert_json_only(app.conf)


@pytest.mark.parametrize("settings_module", ["config.settings.production", "config.settings.local"])
def test_every_settings_module_configures_json_only(settings_module):
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_SECRET_KEY": get_random_string(60),
        "DJANGO_ALLOWED_HOSTS": "dts.example",
        "DATABASE_URL": "postgres://dts:dts@127.0.0.1:5432/dts",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "DTS_CACHE_URL": "redis://127.0.0.1:6379/1",
        "DTS_LIVE_REDIS_URL": "redis://127.0.0.1:6379/2",
    }
    printed = subprocess.run(
        [sys.executable, "-c", PRINT_CONTENT_SETTINGS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert_json_only(json.loads(printed.stdout))


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    log = tmp_path_factory.mktemp("serialization") / "worker.log"
    with django_db_blocker.unblock():
        process = start_celery(
            "worker",
            *("--queues", QUEUE, "--concurrency", "1", "--pool", "prefork"),
            *("--without-mingle", "--without-gossip", "--hostname", "serialization@%h"),
            log=log,
        )
    yield process, log
    stop_process(process)


def send_execute_run(run, serializer: str) -> None:
    app.send_task(
        EXECUTE_RUN_TASK,
        args=[str(run.id), run.attempt],
        kwargs={"limited": False},
        task_id=str(run.id),
        queue=QUEUE,
        serializer=serializer,
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_refuses_a_pickled_execute_run_message(worker):
    process, log = worker
    run = RunFactory(job=JobFactory(task_type="dts.noop", args={}), queue=QUEUE)
    since = log.stat().st_size

    send_execute_run(run, serializer="pickle")

    wait_for_log_line(log, REFUSAL, process, timeout=30, since=since)
    run.refresh_from_db()
    assert (run.state, run.started_at) == (RunState.QUEUED, None)
    # The worker was there to run it: the same message in JSON runs.
    send_execute_run(run, serializer="json")
    assert wait_for_run(run.id).state == RunState.SUCCEEDED
