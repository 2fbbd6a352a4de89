import pytest
from django.utils import timezone

from apps.runs.models import Run
from apps.runs.services.maintenance import worker_heartbeat
from apps.runs.services.publish import runs_publish
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


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
        row["name"]: row["depth"] for row in client_as("superuser").get("/api/v1/queues/").json()
    }

    assert depths == {"default": len(runs), "faults": 0}


def beating(hostname: str, queues: list[str]) -> None:
    worker_heartbeat(
        hostname=hostname,
        pid=10,
        queues=queues,
        concurrency=2,
        started_at=timezone.now(),
        active_run_ids=[],
        reserved_run_ids=[],
    )


@pytest.mark.parametrize(
    ("actor", "workers", "queues"),
    [
        # The red team's jobs use "default": its workers and its queue, not the "faults" ones.
        ("viewer", ["both@host", "default@host"], ["default"]),
        ("no_team", [], []),
        ("staff", ["both@host", "default@host", "faults@host"], ["default", "faults"]),
        ("superuser", ["both@host", "default@host", "faults@host"], ["default", "faults"]),
    ],
)
def test_workers_and_queues_are_those_of_the_users_teams_jobs(
    world, client_as, broker, actor, workers, queues
):
    world.users["no_team"] = UserFactory(username="loner")
    world.users["staff"] = UserFactory(username="staff", is_staff=True)
    beating("default@host", ["default"])
    beating("faults@host", ["faults"])
    beating("both@host", ["faults", "default"])
    api = client_as(actor)

    seen_workers = [row["hostname"] for row in api.get("/api/v1/workers/").json()]
    seen_queues = [row["name"] for row in api.get("/api/v1/queues/").json()]

    assert (seen_workers, seen_queues) == (workers, queues)
