"""The rules a schedule must meet, each refusal naming the field and the reason."""

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from apps.core.exceptions import ValidationFailed
from apps.schedules.models import Schedule, ScheduleKind
from apps.schedules.timing import cron_expand

MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MAX_JITTER_SECONDS = 3600
MAX_CATCH_UP_WINDOW_SECONDS = 7 * 24 * 3600
MAX_CATCH_UP_FIRES = 1000
# Every valid cron expression fires within this span (29 February can be 8 years away).
CRON_HORIZON_YEARS = 9

FIELDS_OF_KIND = {
    ScheduleKind.CRON: "cron_expression",
    ScheduleKind.INTERVAL: "interval_seconds",
    ScheduleKind.ONCE: "once_at",
}


def schedule_validate(schedule: Schedule, *, now: datetime) -> None:
    """Refuse a schedule that is malformed, or that could never fire after `now`."""
    if schedule.kind not in ScheduleKind.values:
        raise ValidationFailed(f"must be one of {', '.join(ScheduleKind.values)}.", field="kind")
    for kind, field in FIELDS_OF_KIND.items():
        value = getattr(schedule, field)
        if kind == schedule.kind and value in (None, ""):
            raise ValidationFailed(f"is required for a {kind} schedule.", field=field)
        if kind != schedule.kind and value not in (None, ""):
            raise ValidationFailed(f"is only for {kind} schedules.", field=field)
    _timezone_validate(schedule.timezone)
    if schedule.kind == ScheduleKind.CRON:
        _cron_validate(schedule.cron_expression, now=now)
    if schedule.kind == ScheduleKind.INTERVAL:
        _range_validate("interval_seconds", schedule.interval_seconds, 1, MAX_INTERVAL_SECONDS)
    if (
        schedule.kind == ScheduleKind.ONCE
        and schedule.once_at is not None
        and schedule.once_at <= now
    ):
        raise ValidationFailed("is in the past.", field="once_at")
    if schedule.start_at and schedule.end_at and schedule.start_at >= schedule.end_at:
        raise ValidationFailed("must be after start_at.", field="end_at")
    if schedule.end_at is not None and schedule.end_at <= now:
        raise ValidationFailed("is in the past: the schedule would never fire.", field="end_at")
    _range_validate("jitter_seconds", schedule.jitter_seconds, 0, MAX_JITTER_SECONDS)
    if schedule.interval_seconds and schedule.jitter_seconds >= schedule.interval_seconds:
        raise ValidationFailed("must be shorter than the interval.", field="jitter_seconds")
    _range_validate(
        "catch_up_window_seconds", schedule.catch_up_window_seconds, 1, MAX_CATCH_UP_WINDOW_SECONDS
    )
    _range_validate("catch_up_max_fires", schedule.catch_up_max_fires, 1, MAX_CATCH_UP_FIRES)
    if schedule.recurrence().next_after(now) is None:
        raise ValidationFailed("would never fire between start_at and end_at.", field="end_at")


def _range_validate(field: str, value: int | None, low: int, high: int) -> None:
    if value is None or not low <= value <= high:
        raise ValidationFailed(f"must be between {low} and {high}, not {value}.", field=field)


def _timezone_validate(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"{name!r} is not an IANA time zone name.", field="timezone"
        ) from None


def _cron_validate(expression: str, *, now: datetime) -> None:
    if expression.strip().startswith("@") and cron_expand(expression) == " ".join(
        expression.split()
    ):
        raise ValidationFailed(f"{expression!r} is not a supported alias.", field="cron_expression")
    expanded = cron_expand(expression)
    if len(expanded.split()) != 5:
        raise ValidationFailed(
            "must have 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(expanded.split())}.",
            field="cron_expression",
        )
    try:
        matches = croniter(
            expanded, now.replace(tzinfo=None), max_years_between_matches=CRON_HORIZON_YEARS
        )
        matches.get_next(datetime)
    except CroniterBadDateError:  # a subclass of the next one: first
        raise ValidationFailed(
            f"{expression!r} never fires (no matching date in {CRON_HORIZON_YEARS} years).",
            field="cron_expression",
        ) from None
    except (CroniterBadCronError, CroniterNotAlphaError, ValueError, KeyError) as error:
        raise ValidationFailed(f"{error}", field="cron_expression") from None
