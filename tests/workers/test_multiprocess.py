"""workers.multiprocess: `celery worker` gets a multiprocess folder of its own before
prometheus_client is imported; no other process does."""

import os
import subprocess
import sys

import pytest

from tests.processes import REPO
from workers.multiprocess import FOLDER_VARIABLE, celery_worker_command, multiprocess_folder_ensure


@pytest.mark.parametrize(
    ("argv", "worker"),
    [
        (["/venv/bin/celery", "-A", "workers", "worker", "--queues", "default"], True),
        (
            ["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "workers", "worker"],
            True,
        ),
        (["/venv/bin/celery", "-A", "workers", "beat"], False),
        (["/venv/bin/celery", "-A", "workers", "inspect", "active"], False),
        (["manage.py", "run_standalone"], False),
        (["/venv/bin/pytest", "tests/workers"], False),
        ([], False),
    ],
)
def test_only_celery_worker_is_a_worker_command(argv, worker):
    assert celery_worker_command(argv) is worker


def test_a_worker_without_a_folder_gets_a_new_one():
    environ: dict[str, str] = {}

    folder = multiprocess_folder_ensure(
        argv=["celery", "-A", "workers", "worker"], environ=environ, imported=False
    )

    assert folder is not None
    assert environ[FOLDER_VARIABLE] == folder
    assert os.path.isdir(folder)
    os.rmdir(folder)


def test_a_given_folder_is_emptied_of_a_previous_runs_files(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old counts")
    (tmp_path / "notes.txt").write_text("not ours")

    folder = multiprocess_folder_ensure(
        argv=["celery", "worker"], environ={FOLDER_VARIABLE: str(tmp_path)}, imported=False
    )

    assert folder == str(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_nothing_changes_once_prometheus_client_is_imported_or_in_other_processes():
    environ: dict[str, str] = {}
    worker = ["celery", "worker"]

    assert multiprocess_folder_ensure(argv=worker, environ=environ, imported=True) is None
    assert (
        multiprocess_folder_ensure(argv=["celery", "beat"], environ=environ, imported=False) is None
    )
    assert environ == {}


def test_importing_workers_in_a_worker_sets_the_folder_before_prometheus_client_is_imported():
    code = (
        "import sys; sys.argv = ['celery', '-A', 'workers', 'worker'];"
        "import workers, os, prometheus_client.values as values;"
        "print(os.environ['PROMETHEUS_MULTIPROC_DIR'], values.ValueClass.__name__)"
    )
    env = {key: value for key, value in os.environ.items() if key != FOLDER_VARIABLE}
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )

    assert ran.returncode == 0, ran.stderr
    folder, value_class = ran.stdout.split()
    assert value_class == "MmapedValue"
    assert not os.path.exists(folder)  # removed when the process ended
