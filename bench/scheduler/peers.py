"""One small adapter per scheduler under test, with the same interface: set up a trial's schedules,
edit one, and say whose a queued message is (and, if the peer records it, for which due time).

Import this only after Django is set up (bench.scheduler does it).
"""

import base64
import json
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.db import connections
from django.db.models import Model, Sum
from django_celery_beat.models import (
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)

from apps.accounts.models import Team
from apps.jobs.models import Job
from apps.runs.models import Run
from apps.schedules.models import Schedule, ScheduleKind, SkippedFire
from apps.schedules.services import schedule_next_fire_set, schedule_update
from bench import databases
from bench.scheduler import infra
from bench.scheduler.routers import CELERY_BEAT_ALIAS
from bench.scheduler.stats import Observation, Shape, summary_ms

BULK_BATCH = 5000
LOOKUP_CHUNK = 5000
Arrival = tuple[float, bytes]


class Peer(ABC):
    """A scheduler under test: its database, its Redis database and how to start its beat."""

    slug: ClassVar[str]
    title: ClassVar[str]
    scheduler_class: ClassVar[str]
    settings_module: ClassVar[str]
    database: ClassVar[str]
    redis_db: ClassVar[int]
    alias: ClassVar[str]  # the harness's Django alias for its database
    models: ClassVar[tuple[type[Model], ...]]  # its tables that a trial fills

    @property
    def template(self) -> str:
        return f"{self.database}_template"

    @property
    def broker_url(self) -> str:
        return infra.redis_url(self.redis_db)

    def process_env(self) -> dict[str, str]:
        return {
            "DJANGO_SETTINGS_MODULE": self.settings_module,
            "DATABASE_URL": databases.database_url(self.database),
            "CELERY_BROKER_URL": self.broker_url,
            # The same for both: a log line per fire would measure the logging, not the scheduler.
            "DTS_LOG_LEVEL": "WARNING",
        }

    def prepare_template(self) -> bool:
        return databases.template_ensure(self.template, self.settings_module)

    def reset(self) -> None:
        """A fresh copy of the migrated database and an empty Redis database."""
        connections[self.alias].close()
        databases.database_copy(self.template, self.database)
        infra.redis_flush(self.redis_db)

    def analyze(self) -> None:
        """Fresh planner statistics, as a database that has held its rows for a while has."""
        tables = ", ".join(
            connections[self.alias].ops.quote_name(m._meta.db_table) for m in self.models
        )
        with connections[self.alias].cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")

    def drop(self) -> None:
        connections[self.alias].close()
        databases.database_drop(self.database)
        infra.redis_flush(self.redis_db)

    @abstractmethod
    def create(self, shape: Shape) -> None:
        """Bulk-create the trial's schedules, keys 0..shape.total-1."""

    @abstractmethod
    def edit(self, key: int) -> None:
        """Switch the schedule `key` to fire every second, through the peer's own edit path."""

    @abstractmethod
    def resolve(self, arrivals: list[Arrival]) -> tuple[list[Observation], list[Arrival]]:
        """Observations for the messages it can place now, and the messages to retry later."""

    def own_report(self, due_times: list[datetime], excluded_keys: list[int]) -> dict[str, Any]:
        """What the peer itself recorded about the measured fires, if anything."""
        return {}


def _message(raw: bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    return message


class DtsPeer(Peer):
    slug = "dts"
    title = "dts"
    scheduler_class = "workers.scheduler:DatabaseScheduler"
    settings_module = "config.settings.test"
    database = infra.DTS_DATABASE
    redis_db = infra.DTS_REDIS_DB
    alias = "default"
    models = (Job, Schedule, Run)

    def __init__(self) -> None:
        self.schedule_ids: list[int] = []
        self.key_of: dict[int, int] = {}

    def process_env(self) -> dict[str, str]:
        # dts republishes runs still QUEUED a minute after publishing that the broker no longer
        # holds (Redis lost them). Here the collector pops every message and no worker ever starts
        # a run, so that check would take each popped message for a lost one and send it again.
        return super().process_env() | {"DTS_QUEUED_CHECK_AFTER_SECONDS": "86400"}

    def create(self, shape: Shape) -> None:
        # One job per schedule, as each of django-celery-beat's periodic tasks is its own task.
        team, _ = Team.objects.get_or_create(name="bench")
        jobs = Job.objects.bulk_create(
            [
                Job(team=team, name=f"bench-{key}", task_type="dts.noop", args={})
                for key in range(shape.total)
            ],
            batch_size=BULK_BATCH,
        )
        after = shape.first_due - timedelta(microseconds=1)
        schedules = []
        for key, job in enumerate(jobs):
            schedule = Schedule(job=job, kind=ScheduleKind.CRON, cron_expression=shape.cron(key))
            schedule_next_fire_set(schedule, after=after)
            schedules.append(schedule)
        Schedule.objects.bulk_create(schedules, batch_size=BULK_BATCH)
        self.schedule_ids = [schedule.id for schedule in schedules]
        self.key_of = {schedule_id: key for key, schedule_id in enumerate(self.schedule_ids)}

    def edit(self, key: int) -> None:
        schedule = Schedule.objects.get(id=self.schedule_ids[key])
        schedule_update(
            schedule=schedule,
            data={"kind": ScheduleKind.INTERVAL, "cron_expression": "", "interval_seconds": 1},
        )

    def resolve(self, arrivals: list[Arrival]) -> tuple[list[Observation], list[Arrival]]:
        """A dts message carries its run's id; the run row says which schedule and due time."""
        idents = [str(_message(raw)["headers"]["id"]) for _, raw in arrivals]
        runs: dict[str, tuple[int | None, datetime | None]] = {}
        for start in range(0, len(idents), LOOKUP_CHUNK):
            chunk = idents[start : start + LOOKUP_CHUNK]
            rows = Run.objects.filter(id__in=chunk).values_list(
                "id", "schedule_id", "scheduled_for"
            )
            runs.update({str(run_id): (schedule, due) for run_id, schedule, due in rows})
        observations, unresolved = [], []
        for (arrival, raw), ident in zip(arrivals, idents, strict=True):
            if ident not in runs:
                unresolved.append((arrival, raw))
                continue
            schedule_id, due = runs[ident]
            key = self.key_of.get(schedule_id, -1) if schedule_id is not None else -1
            nominal = due.timestamp() if due is not None else None
            observations.append(Observation(key, arrival, nominal, ident))
        return observations, unresolved

    def own_report(self, due_times: list[datetime], excluded_keys: list[int]) -> dict[str, Any]:
        """Its runs' own record: created_at (the firing transaction's time) minus scheduled_for."""
        excluded = [self.schedule_ids[key] for key in excluded_keys]
        rows = list(
            Run.objects.filter(scheduled_for__in=due_times)
            .exclude(schedule_id__in=excluded)
            .values_list("scheduled_for", "created_at")
        )
        # The filter on scheduled_for leaves out runs without one; the check tells mypy so.
        lateness = [(created - due).total_seconds() for due, created in rows if due is not None]
        skipped = SkippedFire.objects.aggregate(count=Sum("count"))["count"] or 0
        return {
            "runs": len(rows),
            "lateness_ms": summary_ms(lateness),
            "skipped_fires_recorded": skipped,
        }


class CeleryBeatPeer(Peer):
    slug = "celery-beat"
    title = "django-celery-beat"
    scheduler_class = "django_celery_beat.schedulers:DatabaseScheduler"
    settings_module = "bench.scheduler.settings_celery_beat"
    database = infra.CELERY_BEAT_DATABASE
    redis_db = infra.CELERY_BEAT_REDIS_DB
    alias = CELERY_BEAT_ALIAS
    models = (PeriodicTask, CrontabSchedule, IntervalSchedule)
    task = "bench.noop"

    def __init__(self) -> None:
        self.every_second: IntervalSchedule | None = None

    def create(self, shape: Shape) -> None:
        crontabs = {
            cron: _crontab(cron) for cron in {shape.cron(key) for key in range(shape.total)}
        }
        # A periodic task's next fire is its schedule's first time after last_run_at. The edit
        # targets have none, so after an edit they count from the edit (date_changed) instead.
        last_run_at = shape.first_due - timedelta(seconds=1)
        tasks = [
            PeriodicTask(
                name=f"bench-{key}",
                task=self.task,
                crontab=crontabs[shape.cron(key)],
                kwargs=json.dumps({"index": key}),
                queue=infra.QUEUE,
                last_run_at=last_run_at if key < shape.count else None,
            )
            for key in range(shape.total)
        ]
        PeriodicTask.objects.bulk_create(tasks, batch_size=BULK_BATCH)
        self.every_second = None
        if shape.idle:
            self.every_second, _ = IntervalSchedule.objects.get_or_create(
                every=1, period=IntervalSchedule.SECONDS
            )

    def edit(self, key: int) -> None:
        task = PeriodicTask.objects.get(name=f"bench-{key}")
        task.crontab = None
        task.interval = self.every_second
        task.save()  # its signal bumps PeriodicTasks.last_update, which the scheduler polls

    def resolve(self, arrivals: list[Arrival]) -> tuple[list[Observation], list[Arrival]]:
        """A django-celery-beat message carries the task's kwargs: {"index": key}."""
        observations = []
        for arrival, raw in arrivals:
            message = _message(raw)
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            key = kwargs.get("index", -1) if isinstance(kwargs, dict) else -1
            observations.append(Observation(key, arrival, None, str(message["headers"]["id"])))
        return observations, []


def _crontab(cron: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    return CrontabSchedule.objects.create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )


PEERS: dict[str, type[Peer]] = {peer.slug: peer for peer in (DtsPeer, CeleryBeatPeer)}
