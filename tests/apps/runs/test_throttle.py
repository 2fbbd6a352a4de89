import pytest
import redis
from django.conf import settings
from django.utils import timezone

from apps.runs.services.moves import run_start
from apps.runs.states import RunState
from apps.runs.throttle import rate_limit_wait
from tests.factories import JobFactory, RunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_buckets():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in client.scan_iter(match="dts:rate:*"):
        client.delete(key)


def test_a_bucket_allows_its_rate_then_says_how_long_to_wait():
    waits = [rate_limit_wait([("test:bucket", 2)]) for _ in range(3)]

    assert waits[:2] == [0, 0]
    assert 25 < waits[2] <= 30  # the next token comes in 60 / 2 s, less the time passed


def test_starts_are_taken_from_all_buckets_or_from_none():
    rate_limit_wait([("test:narrow", 1)])

    assert rate_limit_wait([("test:wide", 100), ("test:narrow", 1)]) > 0
    # The refused start took nothing from the wide bucket: it still has all 100.
    assert [rate_limit_wait([("test:wide", 100)]) for _ in range(100)] == [0] * 100


def test_the_in_process_buckets_of_make_dev_behave_the_same(settings):
    settings.CELERY_BROKER_URL = "memory://"

    waits = [rate_limit_wait([("test:local", 2)]) for _ in range(3)]

    assert waits[:2] == [0, 0]
    assert waits[2] > 25


def test_a_run_over_its_jobs_rate_limit_is_deferred_not_started():
    job = JobFactory(rate_limit_per_minute=1)
    first = RunFactory(job=job, state=RunState.QUEUED)
    second = RunFactory(job=job, state=RunState.QUEUED)

    assert run_start(run_id=first.id, attempt=1, worker="w") is not None
    assert run_start(run_id=second.id, attempt=1, worker="w") is None

    second.refresh_from_db()
    assert second.state == RunState.QUEUED
    assert 50 < (second.next_attempt_at - timezone.now()).total_seconds() <= 60


def test_a_run_over_its_jobs_concurrency_cap_waits_for_a_slot():
    job = JobFactory(max_concurrent_runs=1)
    RunFactory(job=job, state=RunState.RUNNING)
    waiting = RunFactory(job=job, state=RunState.QUEUED)

    assert run_start(run_id=waiting.id, attempt=1, worker="w") is None

    waiting.refresh_from_db()
    assert waiting.state == RunState.QUEUED
    assert waiting.next_attempt_at is not None


def test_a_task_types_rate_limit_holds_over_all_its_jobs():
    runs = [
        RunFactory(
            job=JobFactory(task_type="tests.operator.limited", args={}), state=RunState.QUEUED
        )
        for _ in range(3)
    ]

    started = [run_start(run_id=run.id, attempt=1, worker="w") is not None for run in runs]

    assert started == [True, True, False]
