"""The rules a schedule must meet, each refusal naming the field and the reason."""

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from apps.core.exceptions import ValidationFailed
from apps.schedules.models import Schedule, ScheduleKind
from apps.schedules.timing import (
    DAY_NAMES,
    EPOCH,
    HORIZON,
    MONTH_NAMES,
    cron_expand,
    cronsim_expression,
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
        next(CronSim(cronsim_expression(expression), now.replace(tzinfo=None)))
    except (CronSimError, StopIteration):
        # cronsim refuses outright a day of month that no month allowed has (31 February).
        raise ValidationFailed(
            f"{expression!r} never fires (no matching time in {CRON_SEARCH_YEARS} years).",
            field="cron_expression",
        ) from None


def cron_syntax_validate(expression: str) -> None:
    """Refuse an expression outside the syntax docs/scheduling.md describes, naming the cron field
    and the reason."""
    if expression.strip().startswith("@") and cron_expand(expression) == " ".join(
        expression.split()
    ):
        raise ValidationFailed(f"{expression!r} is not a supported alias.", field="cron_expression")
    expanded = cron_expand(expression)
    fields = expanded.split()
    if len(fields) != 5:
        raise ValidationFailed(
            f"must have 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}.",
            field="cron_expression",
        )
    for spec, text in zip(CRON_FIELDS, fields, strict=True):
        for item in text.split(","):
            reason = _cron_item_refusal(spec, item.upper())
            if reason:
                where = f"{spec.name} field {text!r}"
                if item != text:
                    where += f", item {item!r}"
                raise ValidationFailed(f"{where}: {reason}.", field="cron_expression")


@dataclass(frozen=True)
class CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is value low + i
    name_kind: str = ""


CRON_FIELDS = (
    CronField("minute", 0, 59),
    CronField("hour", 0, 23),
    CronField("day-of-month", 1, 31),
    CronField("month", 1, 12, MONTH_NAMES, "month"),
    CronField("day-of-week", 0, 7, DAY_NAMES, "day"),
)
DAY_OF_MONTH, DAY_OF_WEEK = CRON_FIELDS[2], CRON_FIELDS[4]

# start[-end][/step], or */step; a start alone with a step runs to the field's highest value.
RANGE_ITEM = re.compile(r"(?P<start>\*|[0-9A-Z]+)(?:-(?P<end>[0-9A-Z]+))?(?:/(?P<step>[0-9A-Z]*))?")
NTH_WEEKDAY_ITEM = re.compile(r"(?P<day>[0-9A-Z]+)#(?P<nth>[0-9]*)")
LAST_WEEKDAY_ITEM = re.compile(r"(?P<day>[0-9])L")


def _cron_item_refusal(spec: CronField, item: str) -> str | None:
    """Why one comma-separated item of a field is refused, or None when it is accepted."""
    if item == "":
        return "an empty item in the list"
    if "?" in item:
        return "'?' is not supported; write * for any day"
    if item[0] == "H":
        return "H (a hashed, per-job time) is not supported; write the time"
    if item[0] == "R":
        return "R (a random time) is not supported; write the time"
    if spec is DAY_OF_MONTH and item in ("L", "LW"):
        return None
    if spec is DAY_OF_MONTH and item.endswith("W"):
        return "the nearest weekday (W) is not supported, only LW (the month's last weekday)"
    if spec is DAY_OF_WEEK and (nth := NTH_WEEKDAY_ITEM.fullmatch(item)):
        if not nth["nth"].isdigit() or not 1 <= int(nth["nth"]) <= 5:
            return "the week after # must be 1 to 5"
        return _value_refusal(spec, nth["day"])
    if spec is DAY_OF_WEEK and (last := LAST_WEEKDAY_ITEM.fullmatch(item)):
        return _value_refusal(spec, last["day"])
    if "L" in item and spec in (DAY_OF_MONTH, DAY_OF_WEEK) and item not in spec.names:
        if spec is DAY_OF_MONTH:
            return "L is written alone (the last day) or as LW (the last weekday)"
        return "L follows a day number, with no range or step: 5L is the last Friday"
    matched = RANGE_ITEM.fullmatch(item)
    if not matched:
        return "not a value, a range, a step or *"
    start, end, step = matched["start"], matched["end"], matched["step"]
    if start == "*" and end is not None:
        return "* cannot start a range"
    if step is not None and (not step.isdigit() or not 1 <= int(step) <= spec.high):
        return f"step {step!r} must be a number from 1 to {spec.high}"
    for value in (start, end):
        if value is not None and value != "*" and (refusal := _value_refusal(spec, value)):
            return refusal
    if end is not None and _value(spec, end) < _value(spec, start):
        return (
            "a reversed range; ranges go from low to high and do not wrap around "
            "(write two ranges as a list instead)"
        )
    return None


def _value_refusal(spec: CronField, value: str) -> str | None:
    if value.isdigit():
        if spec.low <= int(value) <= spec.high:
            return None
        return f"{value} is out of range {spec.low}-{spec.high}"
    if value in spec.names:
        return None
    if spec.names:
        return f"{value!r} is not a {spec.name_kind} name ({' '.join(spec.names)}) or a number"
    return f"{value!r} is not a number"


def _value(spec: CronField, value: str) -> int:
    return int(value) if value.isdigit() else spec.low + spec.names.index(value)
