from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Team
from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record, field_changes
from apps.core.exceptions import ValidationFailed
from apps.core.notify import scheduler_wake
from apps.core.validation import editable_fields_check, model_validate
from apps.events.models import EventType
from apps.events.outbox import event_new, events_record
from apps.jobs.models import Job
from apps.schedules.models import (
    RECURRENCE_FIELDS,
    MisfirePolicy,
    Schedule,
    ScheduleKind,
    ScheduleTiming,
    SkippedFire,
    SkipReason,
)
from apps.schedules.planner import (
    SkippedRange,
    next_fire,
    skipped_fires_count,
    skipped_while_inactive,
)
from apps.schedules.validation import cron_syntax_refusal, schedule_validate

S = TypeVar("S", bound=ScheduleTiming)

EDITABLE_FIELDS = frozenset(
    {
        *RECURRENCE_FIELDS,
        "jitter_seconds",
        "misfire_policy",
        "catch_up_window_seconds",
        "catch_up_max_fires",
        "enabled",
    }
)


def schedule_next_fire_set(schedule: ScheduleTiming, *, after: datetime) -> None:
    """Set the next nominal fire time strictly after `after`, and when to fire it (with jitter),
    as the planner answers; the caller saves."""
    following = next_fire(schedule, after=after)
    schedule.next_scheduled_for = following.scheduled_for
    schedule.next_fire_at = following.fire_at


@transaction.atomic
def schedule_create(
    *,
    job: Job,
    kind: str,
    cron_expression: str = "",
    timezone_name: str = "UTC",
    interval_seconds: int | None = None,
    once_at: datetime | None = None,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    jitter_seconds: int = 0,
    misfire_policy: str = MisfirePolicy.RUN_ONCE,
    catch_up_window_seconds: int = 3600,
    catch_up_max_fires: int = 10,
    enabled: bool = True,
    actor: Actor = None,
) -> Schedule:
    now = timezone.now()
    schedule = Schedule(
        job=job,
        kind=kind,
        cron_expression=cron_expression,
        timezone=timezone_name,
        interval_seconds=interval_seconds,
        once_at=once_at,
        start_at=start_at,
        end_at=end_at,
        jitter_seconds=jitter_seconds,
        misfire_policy=misfire_policy,
        catch_up_window_seconds=catch_up_window_seconds,
        catch_up_max_fires=catch_up_max_fires,
        enabled=enabled,
    )
    _schedule_check(schedule, now=now)
    if enabled:
        _team_cap_check(job.team_id, adding=1)
    schedule_next_fire_set(schedule, after=now)
    schedule.save()
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        target=schedule,
        team_id=job.team_id,
        changes={
            field: {"old": None, "new": value}
            for field, value in schedule_definition(schedule).items()
        },
    )
    scheduler_wake()
    return schedule


@transaction.atomic
def schedule_update(*, schedule: Schedule, data: dict[str, Any], actor: Actor = None) -> Schedule:
    """Change a schedule; its next fire is computed anew from now (never re-firing a past time)."""
    editable_fields_check(data, EDITABLE_FIELDS)
    now = timezone.now()
    stored = Schedule.objects.select_for_update().get(id=schedule.id)
    for field, value in data.items():
        setattr(schedule, field, value)
    _schedule_check(schedule, now=now)
    if schedule.enabled and not stored.enabled:
        if not schedule.paused:
            _team_cap_check(schedule.job.team_id, adding=1)
        _skipped_while_inactive_record(schedule, reason=SkipReason.DISABLED, now=now)
    after = max(now, schedule.last_fired_for) if schedule.last_fired_for else now
    schedule_next_fire_set(schedule, after=after)
    schedule.save(update_fields=[*data, "next_scheduled_for", "next_fire_at", "updated_at"])
    changes = field_changes(schedule_definition(stored), schedule_definition(schedule), fields=data)
    if changes:
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=schedule,
            team_id=schedule.job.team_id,
            changes=changes,
        )
    scheduler_wake()
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: Schedule, actor: Actor = None) -> None:
    audit_record(
        actor=actor, action=AuditAction.DELETE, target=schedule, team_id=schedule.job.team_id
    )
    schedule.delete()
    scheduler_wake()


@transaction.atomic
def schedule_pause(*, schedule: Schedule, note: str, actor: Actor = None) -> Schedule:
    """Pause, with a note saying why; `actor` is recorded as who paused it."""
    if schedule.paused:
        raise ValidationFailed("is already paused.", field="paused")
    schedule.paused = True
    schedule.pause_note = note
    schedule.paused_by = actor if isinstance(actor, User) and actor.is_authenticated else None
    schedule.paused_at = timezone.now()
    schedule.save(update_fields=["paused", "pause_note", "paused_by", "paused_at", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.PAUSE,
        target=schedule,
        team_id=schedule.job.team_id,
        changes={"paused": {"old": False, "new": True}, "pause_note": {"old": "", "new": note}},
    )
    scheduler_wake()
    return schedule


@transaction.atomic
def schedule_resume(*, schedule: Schedule, actor: Actor = None) -> Schedule:
    """Resume; the fire times that passed while paused are recorded as skipped, not fired."""
    if not schedule.paused:
        raise ValidationFailed("is not paused.", field="paused")
    _stored_cron_check(schedule)
    if schedule.enabled:
        _team_cap_check(schedule.job.team_id, adding=1)
    now = timezone.now()
    _skipped_while_inactive_record(schedule, reason=SkipReason.PAUSED, now=now)
    schedule.paused = False
    schedule.paused_at = None
    schedule.paused_by = None
    schedule_next_fire_set(schedule, after=now)
    schedule.save(
        update_fields=[
            "paused",
            "paused_at",
            "paused_by",
            "next_scheduled_for",
            "next_fire_at",
            "updated_at",
        ]
    )
    audit_record(
        actor=actor,
        action=AuditAction.RESUME,
        target=schedule,
        team_id=schedule.job.team_id,
        changes={"paused": {"old": True, "new": False}},
    )
    scheduler_wake()
    return schedule


def _team_cap_check(team_id: int, *, adding: int) -> None:
    """Refuse one more active (enabled, unpaused) schedule past the team's cap. The team's row is
    locked, so two concurrent creations cannot both take the last place."""
    team = Team.objects.select_for_update().get(id=team_id)
    cap = team.max_active_schedules
    if cap is None:
        cap = settings.DTS_TEAM_MAX_ACTIVE_SCHEDULES
    active = Schedule.objects.filter(job__team_id=team_id, enabled=True, paused=False).count()
    if active + adding > cap:
        raise ValidationFailed(
            f"Team {team.name} already has {active} active schedules, its cap is {cap}.",
            field="enabled",
        )


def schedule_definition(schedule: ScheduleTiming) -> dict[str, Any]:
    """What the schedule is defined by: its editable fields, by name."""
    return {field: getattr(schedule, field) for field in sorted(EDITABLE_FIELDS)}


def schedules_reactivate(*, job: Job) -> None:
    """The job was enabled again: its schedules skip what passed while it was disabled."""
    now = timezone.now()
    for schedule in job.schedules.select_for_update().filter(enabled=True, paused=False):
        if stored_cron_refusal(schedule) is not None:
            continue  # the scheduler pauses it, saying why, when it is due (firing.py)
        _skipped_while_inactive_record(schedule, reason=SkipReason.DISABLED, now=now)
        schedule_next_fire_set(schedule, after=now)
        schedule.save(update_fields=["next_scheduled_for", "next_fire_at", "updated_at"])
    scheduler_wake()


def skipped_fires_record(schedule: Schedule, skipped_range: SkippedRange) -> SkippedFire | None:
    """Record the fire times of a skipped range (the planner's, or the overlap policy's) as one row
    (none when the range holds no fire time)."""
    reason, first, last = skipped_range.reason, skipped_range.first, skipped_range.last
    counted = skipped_fires_count(schedule.recurrence(), first=first, last=last)
    if counted is None:
        return None
    skipped = SkippedFire.objects.create(
        schedule=schedule,
        reason=reason,
        first_scheduled_for=first,
        last_scheduled_for=counted.last,
        count=counted.count,
        count_is_lower_bound=counted.is_lower_bound,
    )
    events_record(
        [
            event_new(
                type=EventType.SCHEDULE_SKIPPED,
                subject=f"schedules/{schedule.id}",
                job_id=schedule.job_id,
                time=skipped.created_at,
                data={
                    "schedule_id": schedule.id,
                    "reason": reason,
                    "first_scheduled_for": first,
                    "last_scheduled_for": counted.last,
                    "count": counted.count,
                    "count_is_lower_bound": skipped.count_is_lower_bound,
                },
            )
        ]
    )
    return skipped


def schedules_matched(
    existing: Sequence[S], wanted: list[dict[str, Any]]
) -> tuple[list[tuple[int, S | None]], list[S]]:
    """Each wanted schedule (by index) with the existing one it becomes, or None (a new one);
    and the existing ones none becomes. Matched by whole definition, then by timing, then in
    order: changing one schedule's cron expression changes that schedule, keeping its history."""
    definitions = {schedule.pk: schedule_definition(schedule) for schedule in existing}
    free = list(existing)
    matched: dict[int, S | None] = {}
    for same in (
        lambda a, b: a == b,
        lambda a, b: all(a[name] == b[name] for name in RECURRENCE_FIELDS),
        lambda a, b: True,
    ):
        for index, fields in enumerate(wanted):
            if index in matched:
                continue
            schedule = next((s for s in free if same(definitions[s.pk], fields)), None)
            if schedule is not None:
                free.remove(schedule)
                matched[index] = schedule
    return [(index, matched.get(index)) for index in range(len(wanted))], free


def schedule_preview(
    schedule: Schedule, *, count: int = 10, after: datetime | None = None
) -> list[datetime]:
    """The next `count` fire times (nominal, before jitter) after `after` (default: now)."""
    if not 1 <= count <= 1000:
        raise ValidationFailed("must be between 1 and 1000.", field="count")
    _stored_cron_check(schedule)
    fires = schedule.recurrence().fires_after(after or timezone.now())
    return [fire for _, fire in zip(range(count), fires, strict=False)]


def schedule_timing_preview(
    *, timing: dict[str, Any], count: int = 10, now: datetime | None = None
) -> tuple[str, list[datetime]]:
    """What a schedule of this timing (RECURRENCE_FIELDS; the others take their defaults) would
    be, before it is saved: its description and next `count` fire times. Refused as saving it
    would be."""
    now = now or timezone.now()
    schedule = Schedule(**timing)
    schedule_validate(schedule, now=now)
    return schedule.describe(), schedule_preview(schedule, count=count, after=now)


def stored_cron_refusal(schedule: ScheduleTiming) -> str | None:
    """Why a stored schedule's cron expression cannot be read, or None. One saved before the
    current rules may have an expression they refuse (croniter took R, H, ?, 15W, 23-1): its fire
    times cannot be computed, and reading it another way would fire at times nobody asked for."""
    if schedule.kind != ScheduleKind.CRON:
        return None
    return cron_syntax_refusal(schedule.cron_expression)


def _stored_cron_check(schedule: Schedule) -> None:
    refusal = stored_cron_refusal(schedule)
    if refusal is not None:
        raise ValidationFailed(refusal, field="cron_expression")


def _schedule_check(schedule: Schedule, *, now: datetime) -> None:
    model_validate(schedule)
    schedule_validate(schedule, now=now)


def _skipped_while_inactive_record(
    schedule: Schedule, *, reason: SkipReason, now: datetime
) -> None:
    skipped = skipped_while_inactive(schedule, reason=reason, now=now)
    if skipped is not None:
        skipped_fires_record(schedule, skipped)


def skipped_fires_purge(*, now: datetime, keep: timedelta) -> int:
    """Delete the skipped-fire records written before `now - keep`; return how many. The
    scheduler runs it every hour, with the runs' retention (DTS_RUN_RETENTION_DAYS)."""
    deleted, _ = SkippedFire.objects.filter(created_at__lt=now - keep).delete()
    return deleted
