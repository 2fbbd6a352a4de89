"""The demo admin, demo jobs and a demo workflow that `make dev` loads, so a first visit has
something to run."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.accounts.models import Role, Team
from apps.accounts.services import membership_set
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.schedules.services import schedule_create
from apps.workflows.models import Workflow
from apps.workflows.services import workflow_create

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
DEMO_WORKFLOW = "demo: load, check, report"
# Fans out to two branches and in again; when the check fails, the alert runs instead of the report.
DEMO_STEPS = [
    ("load", "demo: take five seconds", [], "on_success"),
    ("check", "demo: do nothing", ["load"], "on_success"),
    ("index", "demo: say hello", ["load"], "on_success"),
    ("report", "demo: say hello", ["check", "index"], "on_success"),
    ("alert", "demo: fail on purpose", ["check"], "on_failure"),
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
    if not Workflow.objects.filter(team=team, name=DEMO_WORKFLOW).exists():
        jobs = {job.name: job for job in Job.objects.filter(team=team)}
        workflow_create(
            team=team,
            name=DEMO_WORKFLOW,
            description="Loaded by make dev: runs every hour, or now from the API or the CLI.",
            steps=[
                {"name": name, "job": jobs[job], "depends_on": depends_on, "condition": condition}
                for name, job, depends_on, condition in DEMO_STEPS
            ],
            schedules=[{"kind": "cron", "cron_expression": "0 * * * *"}],
        )
