"""The scheduler's firing on a controlled clock: once per due time, DST, misfires, overlap."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.audit.models import AuditAction, AuditEntry
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState
from apps.schedules.firing import schedules_fire_due
from apps.schedules.models import SkippedFire, SkipReason
from apps.schedules.services import schedule_create, schedule_pause
from dispatch.celery import app
from tests.factories import JobFactory, RunFactory, ScheduleFactory
from workers.scheduler import DatabaseScheduler

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def create(at, **fields):
    with time_machine.travel(at, tick=False):
        return schedule_create(
            job=fields.pop("job", None) or JobFactory(task_type="dts.noop", args={}), **fields
        )


def fired_times(schedule):
    return list(
        Run.objects.filter(schedule=schedule)
        .order_by("scheduled_for")
        .values_list("scheduled_for", flat=True)
    )


def test_a_due_time_fires_once_however_often_the_scheduler_looks():
    schedule = create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *")

    for _ in range(3):
        schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=100)

    run = Run.objects.get(schedule=schedule)
    assert (run.scheduled_for, run.trigger, run.state) == (
        T0,
        RunTrigger.SCHEDULE,
        RunState.QUEUED,
    )
    schedule.refresh_from_db()
    assert schedule.next_scheduled_for == T0 + timedelta(minutes=1)
    assert schedule.last_fired_for == T0


def test_a_schedule_not_yet_due_is_not_fired():
    create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *")

    report = schedules_fire_due(now=T0 - timedelta(seconds=1), batch_size=100)

    assert (report.claimed, Run.objects.count()) == (0, 0)


def test_paused_disabled_and_job_disabled_schedules_do_not_fire(admin_user):
    paused = create(T0 - timedelta(minutes=1), kind="interval", interval_seconds=10)
    schedule_pause(schedule=paused, note="", actor=admin_user)
    create(T0 - timedelta(minutes=1), kind="interval", interval_seconds=10, enabled=False)
    create(
        T0 - timedelta(minutes=1),
        kind="interval",
        interval_seconds=10,
        job=JobFactory(enabled=False),
    )

    assert schedules_fire_due(now=T0, batch_size=100).claimed == 0


def test_a_due_stored_cron_the_rules_refuse_is_paused_saying_why_and_the_rest_fire(caplog):
    # Stored before the rules (croniter took it) and not yet paused. cronsim cannot read it; the
    # tick must go on with the others.
    refused = ScheduleFactory(
        job=JobFactory(task_type="dts.noop", args={}),
        kind="cron",
        interval_seconds=None,
        cron_expression="R R * * *",
        next_scheduled_for=T0 - timedelta(minutes=5),
        next_fire_at=T0 - timedelta(minutes=5),
    )
    other = create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *")

    report = schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=100)

    assert [run.schedule_id for run in report.fired] == [other.id]
    refused.refresh_from_db()
    assert refused.paused
    assert "minute field 'R': R (a random time) is not supported" in refused.pause_note
    assert "Edit it, then resume." in refused.pause_note
    assert AuditEntry.objects.filter(action=AuditAction.PAUSE, object_id=str(refused.id)).exists()
    assert f"Schedule {refused.id} paused" in caplog.text
    assert schedules_fire_due(now=T0 + timedelta(seconds=2), batch_size=100).claimed == 0


@pytest.mark.parametrize(
    ("zone", "day", "expected_local"),
    [
        ("America/New_York", date(2026, 3, 8), ["03-07 02:30", "03-08 03:00", "03-09 02:30"]),
        ("America/New_York", date(2026, 11, 1), ["10-31 02:30", "11-01 02:30", "11-02 02:30"]),
        ("Europe/Paris", date(2026, 3, 29), ["03-28 02:30", "03-29 03:00", "03-30 02:30"]),
        ("Europe/Paris", date(2026, 10, 25), ["10-24 02:30", "10-25 02:30", "10-26 02:30"]),
    ],
)
def test_daily_0230_fires_once_a_day_through_a_dst_transition(zone, day, expected_local):
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(), tzinfo=tz) - timedelta(days=1)
    schedule = create(start, kind="cron", cron_expression="30 2 * * *", timezone_name=zone)

    now = start
    while now < start + timedelta(days=3):
        now += timedelta(minutes=5)
        schedules_fire_due(now=now, batch_size=100)

    assert [
        t.astimezone(tz).strftime("%m-%d %H:%M") for t in fired_times(schedule)
    ] == expected_local


@pytest.mark.parametrize(
    ("zone", "night", "local_hours"),
    [
        ("America/New_York", date(2026, 3, 8), ["00", "01", "03", "04", "05"]),
        ("America/New_York", date(2026, 11, 1), ["00", "01", "02", "03", "04", "05"]),
        ("Europe/Paris", date(2026, 3, 29), ["00", "01", "03", "04", "05"]),
        ("Europe/Paris", date(2026, 10, 25), ["00", "01", "02", "03", "04", "05"]),
    ],
)
def test_hourly_fires_each_wall_clock_hour_once_through_a_dst_night(zone, night, local_hours):
    tz = ZoneInfo(zone)
    start = datetime.combine(night, time(), tzinfo=tz) - timedelta(minutes=30)
    schedule = create(start, kind="cron", cron_expression="@hourly", timezone_name=zone)

    now = start
    while now.astimezone(tz).hour < 5 or now.astimezone(tz).day != night.day:
        now += timedelta(minutes=1)
        schedules_fire_due(now=now, batch_size=100)

    fires = fired_times(schedule)
    assert [t.astimezone(tz).strftime("%H") for t in fires] == local_hours
    assert len(set(fires)) == len(fires)


def misfire_schedule(policy, **fields):
    return create(
        T0 - timedelta(seconds=30),
        kind="cron",
        cron_expression="* * * * *",
        misfire_policy=policy,
        **fields,
    )


def test_scheduler_down_three_hours_honours_each_misfire_policy_without_a_burst():
    skip = misfire_schedule("skip")
    run_once = misfire_schedule("run_once")
    catch_up = misfire_schedule("catch_up", catch_up_window_seconds=3600, catch_up_max_fires=10)
    schedules_fire_due(now=T0, batch_size=100)
    back = T0 + timedelta(hours=3, seconds=30)

    schedules_fire_due(now=back, batch_size=100)

    minute = timedelta(minutes=1)
    assert fired_times(skip) == [T0, T0 + 180 * minute]
    assert fired_times(run_once) == [T0, T0 + 179 * minute, T0 + 180 * minute]
    assert fired_times(catch_up) == [T0] + [T0 + n * minute for n in range(170, 181)]
    skipped = {
        s.schedule_id: (s.reason, s.count, s.first_scheduled_for) for s in SkippedFire.objects.all()
    }
    assert skipped == {
        skip.id: (SkipReason.MISFIRE, 179, T0 + minute),
        run_once.id: (SkipReason.MISFIRE, 178, T0 + minute),
        catch_up.id: (SkipReason.MISFIRE, 169, T0 + minute),
    }


def test_a_fire_late_by_less_than_the_grace_is_not_a_misfire():
    schedule = misfire_schedule("skip")

    schedules_fire_due(now=T0 + timedelta(seconds=59), batch_size=100)

    assert fired_times(schedule) == [T0]


def test_a_weekly_job_fires_on_time_with_the_scheduler_restarted_every_ten_minutes():
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 6, 1, 0, 0, tzinfo=paris)  # a Monday
    schedule = create(
        start, kind="cron", cron_expression="0 9 * * MON", timezone_name="Europe/Paris"
    )

    now = start
    scheduler = None
    while now < start + timedelta(days=7, hours=10):  # past its second Monday 09:00
        if now.minute % 10 == 0:
            scheduler = DatabaseScheduler(
                app=app, lazy=True
            )  # a fresh process: nothing carried over
        with time_machine.travel(now, tick=False):
            scheduler.fire_due()
        now += timedelta(minutes=5)

    runs = Run.objects.filter(schedule=schedule).order_by("scheduled_for")
    assert [
        (r.scheduled_for.astimezone(paris).strftime("%a %d %H:%M"), r.created_at - r.scheduled_for)
        for r in runs
    ] == [
        ("Mon 01 09:00", timedelta(0)),
        ("Mon 08 09:00", timedelta(0)),
    ]


def test_overlap_skip_records_the_skipped_fire_while_the_previous_run_is_active():
    job = JobFactory(task_type="dts.noop", args={}, overlap_policy="skip")
    schedule = create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *", job=job)
    RunFactory(job=job, state=RunState.RUNNING)

    schedules_fire_due(now=T0, batch_size=100)

    assert fired_times(schedule) == []
    skipped = schedule.skipped_fires.get()
    assert (skipped.reason, skipped.first_scheduled_for, skipped.count) == (
        SkipReason.OVERLAP,
        T0,
        1,
    )


def test_overlap_cancel_previous_cancels_the_waiting_run_and_fires(
    django_capture_on_commit_callbacks,
):
    job = JobFactory(task_type="dts.noop", args={}, overlap_policy="cancel_previous")
    schedule = create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *", job=job)
    previous = RunFactory(job=job, state=RunState.QUEUED)

    schedules_fire_due(now=T0, batch_size=100)

    previous.refresh_from_db()
    assert previous.state == RunState.CANCELLED
    assert fired_times(schedule) == [T0]


def test_overlap_allow_fires_alongside_the_active_run():
    job = JobFactory(task_type="dts.noop", args={}, overlap_policy="allow")
    schedule = create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *", job=job)
    RunFactory(job=job, state=RunState.RUNNING)

    schedules_fire_due(now=T0, batch_size=100)

    assert fired_times(schedule) == [T0]


def test_a_fire_whose_job_args_no_longer_validate_is_recorded_as_a_failed_run():
    job = JobFactory(task_type="dts.noop", args={})
    schedule = create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *", job=job)
    job.args = {"unexpected": True}
    job.save()

    schedules_fire_due(now=T0, batch_size=100)

    run = Run.objects.get(schedule=schedule)
    assert run.state == RunState.FAILED
    assert run.error.startswith("Not run: args:")


def test_runs_are_published_after_commit(django_capture_on_commit_callbacks, sent_tasks):
    create(T0 - timedelta(seconds=30), kind="cron", cron_expression="* * * * *")

    with django_capture_on_commit_callbacks() as callbacks:
        report = schedules_fire_due(now=T0, batch_size=100)
    assert sent_tasks == []
    for callback in callbacks:
        callback()

    assert len(report.fired) == 1
    assert [sent["task_id"] for sent in sent_tasks] == [str(Run.objects.get().id)]
    assert Run.objects.get().queued_at == T0


def test_a_next_fire_that_is_only_a_lower_bound_fires_what_the_rules_have_due_from_it():
    # `next_scheduled_for` need not be a fire time: the tick fires the expression's fire times
    # from it on, none here, and sets the next fire by the rules.
    stored = {"kind": "cron", "interval_seconds": None, "next_fire_at": T0}
    one_minute = ScheduleFactory(cron_expression="5-5 0 * * *", next_scheduled_for=T0, **stored)
    one_day = ScheduleFactory(cron_expression="0 9 * * 1-1", next_scheduled_for=T0, **stored)
    # Mondays that fall on an odd day of the month.
    both_day_fields = ScheduleFactory(
        cron_expression="0 0 */2 * 1", next_scheduled_for=T0 - timedelta(hours=2), **stored
    )

    report = schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=100)

    assert report.claimed == 3
    assert not Run.objects.exists()
    for schedule, next_fire in [
        (one_minute, datetime(2026, 5, 5, 0, 5, tzinfo=UTC)),
        (one_day, datetime(2026, 5, 11, 9, tzinfo=UTC)),
        (both_day_fields, datetime(2026, 5, 11, tzinfo=UTC)),
    ]:
        schedule.refresh_from_db()
        assert schedule.next_scheduled_for == next_fire
