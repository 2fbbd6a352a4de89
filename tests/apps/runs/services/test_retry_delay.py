"""The wait before a retry, as the retry path uses it: jittered when the job says so (a spread that
keeps a burst of failures from retrying in lockstep), exact when it does not. Job.retry_delay's
arithmetic is tested in test_execution.py; here, that its caller passes the jitter through."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.events.models import EventType, OutboxEvent
from apps.runs.models import Run
from apps.runs.services.moves import run_attempt_end
from apps.runs.states import RunState
from tests.factories import JobFactory, RunFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
RUNS = 20


def retry_delays(*, jitter: bool, outcome: RunState) -> list[timedelta]:
    """The wait each of RUNS failed first attempts got, by the job's backoff of 10 s."""
    job = JobFactory(
        task_type="dts.noop",
        args={},
        max_attempts=3,
        retry_backoff_seconds=10,
        retry_backoff_max_seconds=100,
        retry_jitter=jitter,
    )
    runs = [
        RunFactory(job=job, state=RunState.RUNNING, worker="worker-a", started_at=NOW)
        for _ in range(RUNS)
    ]
    with time_machine.travel(NOW, tick=False):
        for run in runs:
            assert run_attempt_end(run_id=run.id, attempt=1, outcome=outcome, error="boom")
    retried = Run.objects.filter(id__in=[run.id for run in runs])
    assert {run.state for run in retried} == {RunState.RETRYING}
    # The event announces the wait the run got (to the millisecond, as JSON carries it).
    announced = {
        event.data["run_id"]: datetime.fromisoformat(event.data["next_attempt_at"])
        for event in OutboxEvent.objects.filter(type=EventType.RUN_RETRYING)
    }
    assert announced.keys() == {str(run.id) for run in retried}
    for run in retried:
        assert abs(announced[str(run.id)] - run.next_attempt_at) < timedelta(milliseconds=1)
    return [run.next_attempt_at - NOW for run in retried]


@pytest.mark.parametrize("outcome", [RunState.FAILED, RunState.TIMED_OUT, RunState.LOST])
def test_a_jittered_retry_waits_a_spread_of_the_upper_half_of_its_backoff(outcome):
    delays = retry_delays(jitter=True, outcome=outcome)

    assert all(timedelta(seconds=5) <= delay < timedelta(seconds=10) for delay in delays), delays
    # Twenty draws at microsecond resolution: equal waits mean the jitter was dropped on the way.
    assert len(set(delays)) > RUNS // 2, delays


@pytest.mark.parametrize("outcome", [RunState.FAILED, RunState.TIMED_OUT, RunState.LOST])
def test_a_retry_without_jitter_waits_exactly_its_backoff(outcome):
    assert set(retry_delays(jitter=False, outcome=outcome)) == {timedelta(seconds=10)}
