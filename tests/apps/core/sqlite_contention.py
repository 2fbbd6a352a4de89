"""Two threads writing one SQLite database at once through Django, as `make dev`'s web and worker
threads do; run by tests/apps/core/test_local_settings.py under config.settings.local.

`python -m tests.apps.core.sqlite_contention [--transaction-mode MODE]` prints, as JSON, how each
writer ended, the count they wrote and the database's journal mode. The first writer reads, then
writes (as a job create does); the second writes between that read and that write (as the worker
recording a run's end does)."""

import argparse
import json
import threading
from collections.abc import Callable

import django

# How long the first writer waits, between its read and its write, for the second to write: long
# enough for the second to get in under any load. When the second can write (DEFERRED), its write
# ends the wait at once; when it waits for the first's lock (IMMEDIATE), the first waits it all.
FIRST_WRITER_PAUSE_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transaction-mode", help="instead of the settings' transaction mode")
    options = parser.parse_args()

    from django.conf import settings

    if options.transaction_mode:
        settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] = options.transaction_mode
    django.setup()
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE counter (n integer)")
        cursor.execute("INSERT INTO counter VALUES (0)")
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
    connection.close()

    first_has_read = threading.Event()
    second_has_written = threading.Event()
    outcomes: dict[str, str] = {}

    def first_writer() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT n FROM counter")
            first_has_read.set()
            second_has_written.wait(FIRST_WRITER_PAUSE_SECONDS)
            cursor.execute("UPDATE counter SET n = n + 1")

    def second_writer() -> None:
        first_has_read.wait()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE counter SET n = n + 1")
            second_has_written.set()

    def record(name: str, writer: Callable[[], None]) -> None:
        try:
            writer()
            outcomes[name] = "ok"
        except Exception as error:
            outcomes[name] = f"{type(error).__name__}: {error}"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=record, args=(name, writer))
        for name, writer in (("first", first_writer), ("second", second_writer))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM counter")
        count = cursor.fetchone()[0]
    print(json.dumps({"outcomes": outcomes, "count": count, "journal_mode": journal_mode}))


if __name__ == "__main__":
    main()
