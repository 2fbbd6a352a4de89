import logging
import threading

import pytest

from apps.runs.logs import run_log_capture, run_log_lines
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db

logger = logging.getLogger("tests.logs")


def messages(run):
    return [(line.level, line.logger, line.message) for line in run_log_lines(run_id=run.id)]


def test_logged_and_printed_lines_are_kept_in_order():
    run = RunFactory()

    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=1):
        logger.info("starting %s", "work")
        print("half way")
        logger.warning("two\nlines")

    assert messages(run) == [
        ("INFO", "tests.logs", "starting work"),
        ("INFO", "stdout", "half way"),
        ("WARNING", "tests.logs", "two"),
        ("WARNING", "tests.logs", "lines"),
    ]


def test_an_exception_logged_keeps_its_traceback():
    run = RunFactory()

    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=1):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")

    lines = [message for _, _, message in messages(run)]
    assert lines[0] == "it failed"
    assert "ValueError: boom" in lines


def test_a_second_attempt_continues_the_sequence():
    run = RunFactory()
    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=1):
        logger.info("first")
    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=2):
        logger.info("second")

    lines = list(run_log_lines(run_id=run.id))
    assert [(line.attempt, line.sequence, line.message) for line in lines] == [
        (1, 1, "first"),
        (2, 2, "second"),
    ]


def test_the_log_is_bounded_and_says_what_it_dropped(settings):
    settings.DTS_RUN_LOG_MAX_LINES = 5
    settings.DTS_RUN_LOG_MAX_LINE_CHARS = 10
    run = RunFactory()

    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=1):
        for number in range(8):
            logger.info("line %d of a long story", number)

    lines = [message for _, _, message in messages(run)]
    assert lines[:4] == [
        "line 0 of  …(truncated)",
        "line 1 of  …(truncated)",
        "line 2 of  …(truncated)",
        "line 3 of  …(truncated)",
    ]
    assert lines[4] == "4 more log lines dropped: the run log keeps 5 lines."  # 4 + this one
    assert len(lines) == 5


def test_records_of_other_threads_are_not_captured():
    run = RunFactory()

    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=1):
        other = threading.Thread(target=lambda: logger.info("another run's line"))
        other.start()
        other.join()
        logger.info("ours")

    assert [message for _, _, message in messages(run)] == ["ours"]


def test_lines_are_paged_after_a_sequence_number():
    run = RunFactory()
    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=1):
        for number in range(5):
            logger.info("line %d", number)

    page = run_log_lines(run_id=run.id, after_sequence=2, limit=2)

    assert [line.message for line in page] == ["line 2", "line 3"]
