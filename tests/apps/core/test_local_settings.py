"""`make dev`'s settings (config.settings.local): its SQLite database takes concurrent writers."""

import json
import os
import subprocess
import sys

import pytest

from tests.processes import REPO


def contention(tmp_path, *options: str) -> dict:
    """Run tests/apps/core/sqlite_contention.py under the local settings on a new SQLite file."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "DATABASE_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dts.sqlite3'}",
    }
    finished = subprocess.run(
        [sys.executable, "-m", "tests.apps.core.sqlite_contention", *options],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(finished.stdout)


@pytest.fixture(scope="module")
def immediate(tmp_path_factory) -> dict:
    """The settings' own transaction mode: the first writer waits its whole pause (the second
    waits for its lock), so the tests share one run."""
    return contention(tmp_path_factory.mktemp("immediate"))


def test_a_writer_that_read_first_waits_for_another_writer_instead_of_failing(immediate):
    assert immediate["outcomes"] == {"first": "ok", "second": "ok"}
    assert immediate["count"] == 2


def test_without_immediate_transactions_the_same_writers_fail_with_database_is_locked(tmp_path):
    # What the settings prevent: SQLite refuses the first writer's write at once, whatever the
    # busy timeout, because the second wrote after the first had read.
    result = contention(tmp_path, "--transaction-mode", "DEFERRED")

    assert result["outcomes"]["first"] == "OperationalError: database is locked"
    assert result["count"] == 1


def test_readers_do_not_wait_for_writers(immediate):
    assert immediate["journal_mode"] == "wal"
