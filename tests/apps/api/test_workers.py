import pytest
import redis
from django.conf import settings
from django.utils import timezone

from apps.runs.heartbeats import worker_heartbeat
from apps.runs.models import Run
from apps.runs.services import runs_publish

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


def test_workers_are_listed_showing_only_the_runs_the_user_may_see(world, client_as):
    worker_heartbeat(
        hostname="w1@host",
        pid=10,
        queues=["default"],
        concurrency=2,
        started_at=timezone.now(),
        active_run_ids=[str(world.queued_run.id), str(world.blue_run.id)],
        reserved_run_ids=[],
    )

    seen = {
        actor: client_as(actor).get("/api/v1/workers/").json()[0]
        for actor in ("viewer", "superuser")
    }

    assert seen["viewer"]["alive"] is True
    assert seen["viewer"]["active_run_ids"] == [str(world.queued_run.id)]
    assert len(seen["superuser"]["active_run_ids"]) == 2


def test_queue_depths_count_every_priority(world, client_as, broker):
    runs = list(Run.objects.select_related("job").filter(state="queued"))
    Run.objects.filter(id=runs[0].id).update(priority=9)
    runs[0].priority = 9
    runs_publish(runs=runs)

    depths = {
        row["name"]: row["depth"] for row in client_as("viewer").get("/api/v1/queues/").json()
    }

    assert depths == {"default": len(runs), "faults": 0}
