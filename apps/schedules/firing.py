"""The scheduler's work: claim due schedules, fire each due time once, and publish after commit.

Any number of schedulers may run this at once. Each claims a batch of due schedules with
`FOR UPDATE SKIP LOCKED`, so no two hold the same schedule; inserts the runs (unique on schedule and
nominal time, so even a stray second insert is a no-op), records skipped fires and advances
`next_fire_at`, all in one transaction; and only after the commit publishes the runs. A crash
between commit and publish leaves runs queued that the broker never received: the reaper
(`runs_republish_missing`) publishes them.
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Min

from apps.core.db import models_insert
from apps.core.exceptions import ApplicationError
from apps.events.models import EventType
from apps.events.outbox import event_new, events_record
from apps.jobs.models import Job, OverlapPolicy
from apps.runs.models import Run, RunId, RunTrigger
from apps.runs.services.build import run_build
from apps.runs.services.moves import runs_cancel
from apps.runs.services.publish import run_queued_event, runs_publish_on_commit
from apps.runs.states import TERMINAL_STATES, RunState
from apps.schedules.metrics import fires_published_record, fires_record
from apps.schedules.models import Schedule, SkipReason
from apps.schedules.planner import SkippedRange, fire_plan
from apps.schedules.services import schedule_pause, skipped_fires_record, stored_cron_refusal
from apps.tasktypes.registry import task_args_validate

logger = logging.getLogger(__name__)


@dataclass
class FireReport:
    claimed: int = 0
    fired: list[Run] = field(default_factory=list)
    # Due times skipped, by reason (SkipReason's values).
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def schedules_due_claim(*, now: datetime, limit: int) -> list[Schedule]:
    """Lock up to `limit` due schedules that no other scheduler holds."""
    due = (
        Schedule.objects.select_related("job")
        .select_for_update(skip_locked=True, of=("self",))
        .filter(enabled=True, paused=False, job__enabled=True, next_fire_at__lte=now)
        .order_by("next_fire_at")[:limit]
    )
    return list(due)


def schedules_due_count(*, now: datetime) -> int:
    """How many schedules are due and not fired yet (the backlog; those being fired included)."""
    return Schedule.objects.filter(
        enabled=True, paused=False, job__enabled=True, next_fire_at__lte=now
    ).count()


def schedules_next_due_at() -> datetime | None:
    return Schedule.objects.filter(enabled=True, paused=False, job__enabled=True).aggregate(
        next_due=Min("next_fire_at")
    )["next_due"]


def schedules_fire_due(*, now: datetime, batch_size: int) -> FireReport:
    """Fire every due time of up to `batch_size` due schedules; publish the runs after commit."""
    report = FireReport()
    with transaction.atomic():
        claimed = schedules_due_claim(now=now, limit=batch_size)
        report.claimed = len(claimed)
        schedules = _refused_crons_pause(claimed)
        if not schedules:
            return report
        grace_seconds = settings.DTS_SCHEDULER_MISFIRE_GRACE_SECONDS
        plans = {s.id: fire_plan(s, now=now, grace_seconds=grace_seconds) for s in schedules}
        for schedule in schedules:
            for skipped in plans[schedule.id].skipped:  # missed fires, before any overlap
                _skipped_record(report, schedule, skipped)
        active = _active_runs_by_job(
            {s.job for s in schedules if s.job.overlap_policy != OverlapPolicy.ALLOW}
        )
        to_insert: list[Run] = []
        due_at: dict[RunId, datetime] = {}
        refusals: dict[int, str | None] = {}
        verdicts: dict[tuple[str, str], str | None] = {}
        for schedule in schedules:
            plan = plans[schedule.id]
            times = list(plan.fire_times)
            job = schedule.job
            if times and active.get(job.id):
                if job.overlap_policy == OverlapPolicy.SKIP:
                    _skipped_record(
                        report,
                        schedule,
                        SkippedRange(reason=SkipReason.OVERLAP, first=times[0], last=times[-1]),
                    )
                    times = []
                elif job.overlap_policy == OverlapPolicy.CANCEL_PREVIOUS:
                    runs_cancel(runs=active.pop(job.id))
            if times and job.id not in refusals:
                refusals[job.id] = _refusal(job, verdicts)
            # A refused fire is recorded as a failed run rather than dropped: the operator sees why.
            for time in times:
                run = run_build(
                    job=job,
                    trigger=RunTrigger.SCHEDULE,
                    now=now,
                    schedule=schedule,
                    scheduled_for=time,
                    refusal=refusals.get(job.id),
                )
                to_insert.append(run)
                # The next fire was due at its jittered time; earlier ones caught up at theirs.
                due_at[run.id] = (
                    (schedule.next_fire_at or time) if time == schedule.next_scheduled_for else time
                )
            if times:
                schedule.last_fired_for = times[-1]
            schedule.next_scheduled_for = plan.next_fire.scheduled_for
            schedule.next_fire_at = plan.next_fire.fire_at
        # A due time already fired (a unique schedule and time) is not inserted again.
        inserted_ids = set(models_insert(to_insert, ignore_conflicts=True))
        _next_fires_save(schedules)
        report.fired = [run for run in to_insert if run.id in inserted_ids]
        events_record(
            event_new(
                type=EventType.SCHEDULE_FIRED,
                subject=f"schedules/{run.schedule_id}",
                job_id=run.job_id,
                time=now,
                data={
                    "schedule_id": run.schedule_id,
                    "run_id": str(run.id),
                    "scheduled_for": run.scheduled_for,
                    # A fire whose job's arguments no longer validate makes a failed run.
                    "refused": run.error or None,
                },
            )
            for run in report.fired
        )
        to_publish = [run for run in report.fired if run.state == RunState.QUEUED]
        events_record(run_queued_event(run, time=now) for run in to_publish)
        runs_publish_on_commit(
            to_publish,
            published=partial(
                fires_published_record, due_times=[due_at[run.id] for run in to_publish]
            ),
        )
    fires_record(queues=[run.queue for run in report.fired], skipped=report.skipped)
    return report


def _skipped_record(report: FireReport, schedule: Schedule, skipped: SkippedRange) -> None:
    recorded = skipped_fires_record(schedule, skipped)
    if recorded is not None:
        report.skipped[skipped.reason] += recorded.count


def _refused_crons_pause(schedules: list[Schedule]) -> list[Schedule]:
    """Pause, saying why, the schedules whose stored cron expression the rules refuse, and return
    the others. Such a schedule was saved before the rules, or written around them; reading it
    would raise and end the whole tick, and leaving it due would have every tick claim it
    again."""
    readable = []
    for schedule in schedules:
        refusal = stored_cron_refusal(schedule)
        if refusal is None:
            readable.append(schedule)
            continue
        logger.warning(
            "Schedule %s paused: its cron expression %r is refused: %s",
            schedule.id,
            schedule.cron_expression,
            refusal,
        )
        schedule_pause(
            schedule=schedule,
            note=f"Paused by the scheduler: the cron expression {schedule.cron_expression!r} is "
            f"not accepted ({refusal}) Edit it, then resume.",
            actor=None,
        )
    return readable


def _next_fires_save(schedules: list[Schedule]) -> None:
    """Store the advanced times: one UPDATE per distinct set of values, as schedules that share a
    recurrence (and no jitter) also share their next fire; far cheaper than a per-row CASE."""
    groups: dict[tuple[datetime | None, ...], list[int]] = defaultdict(list)
    for schedule in schedules:
        key = (schedule.next_scheduled_for, schedule.next_fire_at, schedule.last_fired_for)
        groups[key].append(schedule.id)
    for (next_scheduled_for, next_fire_at, last_fired_for), ids in groups.items():
        Schedule.objects.filter(id__in=ids).update(
            next_scheduled_for=next_scheduled_for,
            next_fire_at=next_fire_at,
            last_fired_for=last_fired_for,
        )


def _active_runs_by_job(jobs: set[Job]) -> dict[int, list[Run]]:
    if not jobs:
        return {}
    active: dict[int, list[Run]] = defaultdict(list)
    runs = Run.objects.filter(job__in=jobs).exclude(state__in=TERMINAL_STATES)
    for run in runs:
        active[run.job_id].append(run)
    return active


def _refusal(job: Job, verdicts: dict[tuple[str, str], str | None]) -> str | None:
    """Why the job cannot run now (its arguments no longer validate), or None. `verdicts` keeps
    the problem found for each task type and arguments: many jobs share them (`{}`, say), and a
    tick validates each once."""
    key = (job.task_type, json.dumps(job.args, sort_keys=True))
    if key not in verdicts:
        try:
            task_args_validate(task_type_name=job.task_type, args=job.args)
            verdicts[key] = None
        except ApplicationError as error:
            verdicts[key] = str(error)
    problem = verdicts[key]
    if problem is None:
        return None
    logger.warning("Job %s cannot fire: %s", job.id, problem)
    return f"Not run: {problem}"
