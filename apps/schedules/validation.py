"""The rules a schedule must meet, each refusal naming the field and the reason."""

import functools
import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSimError

from apps.core.exceptions import ValidationFailed
from apps.schedules.models import ScheduleKind, ScheduleTiming
from apps.schedules.timing import (
    CRON_FIELDS,
    EPOCH,
    HORIZON,
    CronField,
    Recurrence,
    cron_expand,
)

MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MAX_JITTER_SECONDS = 3600
MAX_CATCH_UP_WINDOW_SECONDS = 7 * 24 * 3600
MAX_CATCH_UP_FIRES = 1000
# cronsim gives up when nothing matches within this many years; every satisfiable expression
# matches sooner (the longest wait is 40 years: 29 February on a given weekday, across 2100).
CRON_SEARCH_YEARS = 50
DATE_FIELDS = ("once_at", "start_at", "end_at")

FIELDS_OF_KIND = {
    ScheduleKind.CRON: "cron_expression",
    ScheduleKind.INTERVAL: "interval_seconds",
    ScheduleKind.ONCE: "once_at",
}


def schedule_validate(schedule: ScheduleTiming, *, now: datetime) -> None:
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
    for field in DATE_FIELDS:
        _date_validate(field, getattr(schedule, field))
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
        if schedule.end_at is None:
            raise ValidationFailed(
                f"leaves no fire time before {HORIZON:%Y-%m-%d}.", field="start_at"
            )
        raise ValidationFailed("would never fire between start_at and end_at.", field="end_at")


def _range_validate(field: str, value: int | None, low: int, high: int) -> None:
    if value is None or not low <= value <= high:
        raise ValidationFailed(f"must be between {low} and {high}, not {value}.", field=field)


def _date_validate(field: str, value: datetime | None) -> None:
    if value is not None and not EPOCH <= value < HORIZON:
        raise ValidationFailed(
            f"must be from {EPOCH:%Y-%m-%dT%H:%M:%SZ} and before {HORIZON:%Y-%m-%dT%H:%M:%SZ}, "
            f"not {value.isoformat()}.",
            field=field,
        )


def _timezone_validate(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"{name!r} is not an IANA time zone name.", field="timezone"
        ) from None


def _cron_validate(expression: str, *, now: datetime) -> None:
    cron_syntax_validate(expression)
    try:
        fires = Recurrence(cron=expression).next_after(now)
    except CronSimError:
        # cronsim refuses outright a day of month that no month allowed has (31 February).
        fires = None
    if fires is None:
        raise ValidationFailed(
            f"{expression!r} never fires (no matching time in {CRON_SEARCH_YEARS} years).",
            field="cron_expression",
        )


def cron_syntax_validate(expression: str) -> None:
    """Refuse an expression outside the syntax docs/scheduling.md describes, naming the cron field
    and the reason."""
    refusal = cron_syntax_refusal(expression)
    if refusal is not None:
        raise ValidationFailed(refusal, field="cron_expression")


# The scheduler asks this of every cron schedule it claims, and many share an expression.
@functools.lru_cache(maxsize=4096)
def cron_syntax_refusal(expression: str) -> str | None:
    """Why the expression is outside the syntax docs/scheduling.md describes (the cron field and
    the reason), or None when it is inside."""
    if expression.strip().startswith("@") and cron_expand(expression) == " ".join(
        expression.split()
    ):
        return f"{expression!r} is not a supported alias."
    fields = cron_expand(expression).split()
    if len(fields) != 5:
        return (
            f"must have 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}."
        )
    for cron_field, text in zip(CRON_FIELDS, fields, strict=True):
        for item in text.split(","):
            reason = _cron_item_refusal(cron_field, item.upper())
            if reason:
                where = f"{cron_field.name} field {text!r}"
                if item != text:
                    where += f", item {item!r}"
                return f"{where}: {reason}."
    return None


DAY_OF_MONTH, DAY_OF_WEEK = CRON_FIELDS[2], CRON_FIELDS[4]

# start[-end][/step], or */step; a start alone with a step runs to the field's highest value.
RANGE_ITEM = re.compile(r"(?P<start>\*|[0-9A-Z]+)(?:-(?P<end>[0-9A-Z]+))?(?:/(?P<step>[0-9A-Z]*))?")
NTH_WEEKDAY_ITEM = re.compile(r"(?P<day>[0-9A-Z]+)#(?P<nth>[0-9]*)")
LAST_WEEKDAY_ITEM = re.compile(r"(?P<day>[0-9])L")


def _cron_item_refusal(cron_field: CronField, item: str) -> str | None:
    """Why one comma-separated item of a field is refused, or None when it is accepted."""
    if item == "":
        return "an empty item in the list"
    if "?" in item:
        return "'?' is not supported; write * for any day"
    if item[0] == "H":
        return "H (a hashed, per-job time) is not supported; write the time"
    if item[0] == "R":
        return "R (a random time) is not supported; write the time"
    if cron_field is DAY_OF_MONTH and item in ("L", "LW"):
        return None
    if cron_field is DAY_OF_MONTH and item.endswith("W"):
        return "the nearest weekday (W) is not supported, only LW (the month's last weekday)"
    if cron_field is DAY_OF_WEEK and (nth := NTH_WEEKDAY_ITEM.fullmatch(item)):
        if not nth["nth"].isdigit() or not 1 <= int(nth["nth"]) <= 5:
            return "the week after # must be 1 to 5"
        return _value_refusal(cron_field, nth["day"])
    if cron_field is DAY_OF_WEEK and (last := LAST_WEEKDAY_ITEM.fullmatch(item)):
        return _value_refusal(cron_field, last["day"])
    if "L" in item and cron_field in (DAY_OF_MONTH, DAY_OF_WEEK) and item not in cron_field.names:
        if cron_field is DAY_OF_MONTH:
            return "L is written alone (the last day) or as LW (the last weekday)"
        return "L follows a day number, with no range or step: 5L is the last Friday"
    matched = RANGE_ITEM.fullmatch(item)
    if not matched:
        return "not a value, a range, a step or *"
    start, end, step = matched["start"], matched["end"], matched["step"]
    if start == "*" and end is not None:
        return "* cannot start a range"
    if step is not None and (not step.isdigit() or not 1 <= int(step) <= cron_field.high):
        return f"step {step!r} must be a number from 1 to {cron_field.high}"
    for value in (start, end):
        if value is not None and value != "*" and (refusal := _value_refusal(cron_field, value)):
            return refusal
    low, high = cron_field.value(start), cron_field.value(end or "")
    if low is not None and high is not None and high < low:
        return (
            "a reversed range; ranges go from low to high and do not wrap around "
            "(write two ranges as a list instead)"
        )
    return None


def _value_refusal(cron_field: CronField, value: str) -> str | None:
    if value.isdigit():
        if cron_field.low <= int(value) <= cron_field.high:
            return None
        return f"{value} is out of range {cron_field.low}-{cron_field.high}"
    if value in cron_field.names:
        return None
    if cron_field.names:
        names = " ".join(cron_field.names)
        return f"{value!r} is not a {cron_field.name_kind} name ({names}) or a number"
    return f"{value!r} is not a number"
