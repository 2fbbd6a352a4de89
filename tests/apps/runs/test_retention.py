from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runs.models import Run, RunLogLine
from apps.runs.retention import runs_purge_expired
from apps.runs.states import RunState
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def test_finished_runs_past_retention_go_with_their_logs_and_others_stay():
    now = timezone.now()
    old = RunFactory(state=RunState.SUCCEEDED, finished_at=now - timedelta(days=31))
    RunLogLine.objects.create(
        run=old, attempt=1, sequence=1, logged_at=now, level="INFO", logger="x", message="m"
    )
    recent = RunFactory(state=RunState.FAILED, finished_at=now - timedelta(days=1))
    old_but_running = RunFactory(state=RunState.RUNNING, started_at=now - timedelta(days=40))

    assert runs_purge_expired(now=now, keep=timedelta(days=30)) == 1

    assert set(Run.objects.values_list("id", flat=True)) == {recent.id, old_but_running.id}
    assert not RunLogLine.objects.exists()
