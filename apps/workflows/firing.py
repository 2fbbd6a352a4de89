"""The scheduler's work for workflows: start a run of a workflow at each due time of its
schedules, once, as apps.schedules.firing does for jobs.

Each tick claims a batch of due workflow schedules with `FOR UPDATE SKIP LOCKED`, so no two
scheduler replicas hold the same one; starts a workflow run for each due time the planner gives
(the misfire policy decides the missed ones) unless the workflow's overlap policy skips it; and
advances the schedule's next fire, all in one transaction. A workflow run is unique on its
schedule and nominal time, so even a stray second start of one fire writes nothing. Its first
steps' runs are published after the commit, and the reaper publishes those a crash kept from the
broker, as for any run.
"""

import logging
from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min

from apps.jobs.models import OverlapPolicy
from apps.runs.models import RunTrigger
from apps.schedules.metrics import fires_record
from apps.schedules.models import SkipReason
from apps.schedules.planner import fire_plan, skipped_fires_count
from apps.workflows.models import WorkflowRunState, WorkflowSchedule
from apps.workflows.services import workflow_run_cancel, workflow_trigger

logger = logging.getLogger(__name__)


def workflow_schedules_fire_due(*, now: datetime, batch_size: int) -> int:
    """Start the workflow runs of every due time of up to `batch_size` due workflow schedules;
    return how many schedules were claimed."""
    skipped: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        claimed = list(
            WorkflowSchedule.objects.select_related("workflow")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(enabled=True, next_fire_at__lte=now)
            .order_by("next_fire_at")[:batch_size]
        )
        grace_seconds = settings.DTS_SCHEDULER_MISFIRE_GRACE_SECONDS
        for schedule in claimed:
            plan = fire_plan(schedule, now=now, grace_seconds=grace_seconds)
            recurrence = schedule.recurrence()
            for missed in plan.skipped:
                counted = skipped_fires_count(recurrence, first=missed.first, last=missed.last)
                skipped[missed.reason] += counted.count if counted else 0
            times = list(plan.fire_times)
            workflow = schedule.workflow
            if times and workflow.overlap_policy != OverlapPolicy.ALLOW:
                active = list(workflow.runs.filter(state=WorkflowRunState.RUNNING))
                if active and workflow.overlap_policy == OverlapPolicy.SKIP:
                    logger.info(
                        "Workflow %s: %d fire(s) skipped, its previous run is still running",
                        workflow.id,
                        len(times),
                    )
                    skipped[SkipReason.OVERLAP] += len(times)
                    times = []
                elif workflow.overlap_policy == OverlapPolicy.CANCEL_PREVIOUS:
                    for workflow_run in active:
                        workflow_run_cancel(workflow_run=workflow_run)
            for time in times:
                try:
                    workflow_trigger(
                        workflow=workflow,
                        trigger=RunTrigger.SCHEDULE,
                        schedule=schedule,
                        scheduled_for=time,
                    )
                except IntegrityError:
                    logger.warning("Workflow schedule %s fired %s already", schedule.id, time)
            if times:
                schedule.last_fired_for = times[-1]
            schedule.next_scheduled_for = plan.next_fire.scheduled_for
            schedule.next_fire_at = plan.next_fire.fire_at
            schedule.save(update_fields=["next_scheduled_for", "next_fire_at", "last_fired_for"])
    fires_record(queues=[], skipped=skipped)
    return len(claimed)


def workflow_schedules_next_due_at() -> datetime | None:
    return WorkflowSchedule.objects.filter(enabled=True).aggregate(due=Min("next_fire_at"))["due"]


def workflow_schedules_due_count(*, now: datetime) -> int:
    return WorkflowSchedule.objects.filter(enabled=True, next_fire_at__lte=now).count()
