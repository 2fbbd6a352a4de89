"""The notifier: what webhooks are to be told, found in what is recorded and written as deliveries
(apps.notifications.services sends them).

Every scheduler replica's Notifier thread (workers.scheduler) calls `notices_collect` every
second; one at a time does the work, holding the cursor's row (`FOR UPDATE SKIP LOCKED`: the
others pass). It reads the runs and workflow runs that ended since the cursor, less OVERLAP (a
run's end is stamped before its transaction commits: one that committed late is still seen), up
to SETTLE ago, of the jobs and workflows a webhook rule names, and writes one delivery per rule's
webhook and end, unique on the webhook and what it tells of: a second look writes nothing. Every
HEALTH_EVERY it also judges the health of the jobs whose rules ask for late or missed
(apps.jobs.selectors.jobs_health) and tells each rule's webhook when it turns so: each rule keeps
the health it noticed last. Reading what is recorded rather than the events keeps it independent
of Kafka and of DTS_EVENTS_ENABLED (make dev notifies too).
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Q, QuerySet

from apps.core.db import models_insert
from apps.jobs.health import FAILED_STATES, JobHealth
from apps.jobs.models import Job
from apps.jobs.selectors import jobs_health
from apps.notifications.models import Delivery, NoticeCursor, NotifyOn, WebhookRule
from apps.runs.models import Run
from apps.runs.states import RunState
from apps.workflows.models import WorkflowRun, WorkflowRunState

OVERLAP = timedelta(seconds=60)
SETTLE = timedelta(seconds=1)
HEALTH_EVERY = timedelta(seconds=30)
# Ends are read in pages of BATCH, at most MAX_PAGES a look: a notifier that was away catches up
# over several looks, as long as fewer than that many watched ends come in OVERLAP.
BATCH = 1000
MAX_PAGES = 20
ENDED = "ended"
HEALTH = "health"
NOTICED_HEALTHS = {JobHealth.LATE: NotifyOn.LATE, JobHealth.MISSED: NotifyOn.MISSED}


def notices_collect(*, now: datetime) -> int:
    """Write the deliveries of what ended, or turned late or missed, since the last look (unless
    another replica is looking); return how many were written."""
    with transaction.atomic():
        cursors = _cursors_hold(now)
        if cursors is None:
            return 0
        rules = list(
            WebhookRule.objects.filter(webhook__enabled=True).select_related(
                "webhook__team", "job", "workflow"
            )
        )
        ended, health = cursors
        deliveries = _ends_noticed(rules, ended, now=now)
        if health.position <= now - HEALTH_EVERY:
            deliveries += _health_noticed(rules, now=now)
            health.position = now
            health.save(update_fields=["position"])
        ended.save(update_fields=["position"])
        written = models_insert(deliveries, ignore_conflicts=True)
    return len(written)


def _cursors_hold(now: datetime) -> tuple[NoticeCursor, NoticeCursor] | None:
    """The two cursors, held until the transaction ends; None when another notifier holds them."""
    NoticeCursor.objects.get_or_create(name=ENDED, defaults={"position": now})
    NoticeCursor.objects.get_or_create(name=HEALTH, defaults={"position": now - HEALTH_EVERY})
    held = {
        cursor.name: cursor
        for cursor in NoticeCursor.objects.select_for_update(skip_locked=True).filter(
            name__in=(ENDED, HEALTH)
        )
    }
    if len(held) < 2:
        return None
    return held[ENDED], held[HEALTH]


def _ends_noticed(
    rules: list[WebhookRule], cursor: NoticeCursor, *, now: datetime
) -> list[Delivery]:
    """The deliveries of the runs and workflow runs that ended in the cursor's window, and the
    cursor moved on past them."""
    job_rules: dict[int, list[WebhookRule]] = defaultdict(list)
    workflow_rules: dict[int, list[WebhookRule]] = defaultdict(list)
    for rule in rules:
        if rule.job_id is not None:
            job_rules[rule.job_id].append(rule)
        elif rule.workflow_id is not None:
            workflow_rules[rule.workflow_id].append(rule)
    since, until = cursor.position - OVERLAP, now - SETTLE
    runs, reached = _ended(
        Run.objects.filter(
            job_id__in=job_rules, state__in=[RunState.SUCCEEDED, *FAILED_STATES]
        ).select_related("job"),
        since=since,
        until=until,
    )
    workflow_runs, reached = _ended(
        WorkflowRun.objects.filter(
            workflow_id__in=workflow_rules,
            state__in=[WorkflowRunState.SUCCEEDED, WorkflowRunState.FAILED],
        )
        .select_related("workflow")
        .prefetch_related("steps"),
        since=since,
        until=reached,
    )
    cursor.position = max(cursor.position, reached)
    deliveries = []
    for run in runs:
        if run.finished_at is None or run.finished_at > reached:
            continue  # past where the workflow runs were read to: the next look's
        succeeded = run.state == RunState.SUCCEEDED
        deliveries += _told(
            job_rules[run.job_id],
            outcome=NotifyOn.SUCCESS if succeeded else NotifyOn.FAILURE,
            at=run.finished_at,
            event="run.succeeded" if succeeded else "run.failed",
            key=f"run:{run.id}:{run.finished_at.isoformat()}",
            payload={"job": _job(run.job), "run": _run(run)},
        )
    for workflow_run in workflow_runs:
        succeeded = workflow_run.state == WorkflowRunState.SUCCEEDED
        ended_at = workflow_run.finished_at
        assert ended_at is not None  # noqa: S101 (read so)
        deliveries += _told(
            workflow_rules[workflow_run.workflow_id],
            outcome=NotifyOn.SUCCESS if succeeded else NotifyOn.FAILURE,
            at=ended_at,
            event=f"workflow_run.{workflow_run.state}",
            key=f"workflow_run:{workflow_run.id}:{ended_at.isoformat()}",
            payload={
                "workflow": {"id": workflow_run.workflow_id, "name": workflow_run.workflow.name},
                "workflow_run": _workflow_run(workflow_run),
            },
        )
    return deliveries


Ended = TypeVar("Ended", Run, WorkflowRun)


def _ended(
    rows: QuerySet[Ended], *, since: datetime, until: datetime
) -> tuple[list[Ended], datetime]:
    """The rows that ended in (since, until], in pages of BATCH in the order they ended, and how
    far that reached: `until`, or, past MAX_PAGES pages, the end of the last row read (the next
    look goes on from there)."""
    found: list[Ended] = []
    after = Q(finished_at__gt=since)
    for _ in range(MAX_PAGES):
        page = list(
            rows.filter(after, finished_at__lte=until).order_by("finished_at", "id")[:BATCH]
        )
        found += page
        if len(page) < BATCH:
            return found, until
        last = page[-1]
        after = Q(finished_at__gt=last.finished_at) | Q(
            finished_at=last.finished_at, id__gt=last.id
        )
    return found, found[-1].finished_at or until


def _told(
    rules: Iterable[WebhookRule],
    *,
    outcome: str,
    at: datetime | None,
    event: str,
    key: str,
    payload: dict[str, Any],
) -> list[Delivery]:
    """A delivery to each webhook a rule of which asks for `outcome` and existed at `at`."""
    webhooks = {
        rule.webhook_id: rule.webhook
        for rule in rules
        if outcome in rule.on and (at is None or rule.created_at <= at)
    }
    return [
        Delivery(
            webhook=webhook,
            event=event,
            key=key,
            payload={"team": webhook.team.name, **payload},
            next_attempt_at=at,
        )
        for webhook in webhooks.values()
    ]


def _health_noticed(rules: list[WebhookRule], *, now: datetime) -> list[Delivery]:
    """The deliveries of the jobs whose health turned late or missed since their rules last
    looked; each rule notes the health it saw."""
    watching = [
        rule
        for rule in rules
        if rule.job_id is not None and {NotifyOn.LATE, NotifyOn.MISSED} & set(rule.on)
    ]
    if not watching:
        return []
    statuses = jobs_health(
        jobs=Job.objects.filter(id__in={rule.job_id for rule in watching}), now=now
    )
    deliveries, changed = [], []
    for rule in watching:
        status = statuses.get(rule.job_id or 0)
        if status is None or status.health == rule.health:
            continue
        noticed = NOTICED_HEALTHS.get(status.health)
        if noticed in rule.on and rule.job is not None:
            deliveries.append(
                Delivery(
                    webhook=rule.webhook,
                    event=f"job.{status.health}",
                    key=f"health:{rule.id}:{now.isoformat()}",
                    payload={
                        "team": rule.webhook.team.name,
                        "job": _job(rule.job),
                        "health": status.health,
                        "last_success_at": status.last_success_at,
                        "next_fire_at": status.next_fire_at,
                    },
                    next_attempt_at=now,
                )
            )
        rule.health = status.health
        changed.append(rule)
    WebhookRule.objects.bulk_update(changed, ["health"])
    return deliveries


def _job(job: Job) -> dict[str, Any]:
    return {"id": job.id, "name": job.name}


def _run(run: Run) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "state": run.state,
        "trigger": run.trigger,
        "attempt": run.attempt,
        "scheduled_for": run.scheduled_for,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
    }


def _workflow_run(workflow_run: WorkflowRun) -> dict[str, Any]:
    return {
        "id": str(workflow_run.id),
        "state": workflow_run.state,
        "trigger": workflow_run.trigger,
        "created_at": workflow_run.created_at,
        "finished_at": workflow_run.finished_at,
        "steps": {step.name: step.state for step in workflow_run.steps.all()},
    }
