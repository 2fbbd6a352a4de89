"""The demo admin and demo jobs that `make dev` loads, so a first visit has something to run."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.accounts.models import Role, Team
from apps.accounts.services import membership_set
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.schedules.services import schedule_create

DEMO_TEAM = "demo"
EVERY_MINUTE_JOB = "demo: say hello"
DEMO_JOBS: list[dict[str, Any]] = [
    {"name": "demo: say hello", "task_type": "dts.echo", "args": {"greeting": "hello from dts"}},
    {"name": "demo: do nothing", "task_type": "dts.noop", "args": {}},
    {"name": "demo: take five seconds", "task_type": "dts.sleep", "args": {"seconds": 5}},
    {
        "name": "demo: fail on purpose",
        "task_type": "dts.fail",
        "args": {"message": "this one fails"},
    },
]


@transaction.atomic
def demo_load(*, username: str, password: str) -> None:
    """Create the demo superuser and demo jobs; existing ones are left as they are."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_superuser(username=username, email="", password=password)
    team, _ = Team.objects.get_or_create(name=DEMO_TEAM)
    membership_set(team=team, user=user, role=Role.ADMIN)
    existing = set(Job.objects.filter(team=team).values_list("name", flat=True))
    for definition in DEMO_JOBS:
        if definition["name"] not in existing:
            job = job_create(team=team, description="Loaded by make dev.", **definition)
            if definition["name"] == EVERY_MINUTE_JOB:
                schedule_create(job=job, kind="cron", cron_expression="* * * * *")
