"""Cron schedules stored under croniter, brought under the rules of docs/scheduling.md.

1. Expressions the rules refuse that croniter took (R, H, ?, W other than LW, reversed ranges,
   empty list items, ...) are paused, the reason in the pause note: their fire times cannot be
   computed, and firing them by another reading would be worse. One already paused keeps its pause;
   the reason is appended to its note. Edit, then resume.
2. Expressions croniter read differently (a one-value range such as 5-5 or 1-1 read as the whole
   field; the day-of-month and day-of-week rule) have a next fire computed by the old reading. They
   are made due now instead of being recomputed here, which would need the DST rule of
   apps/schedules/timing.py: `next_scheduled_for` is moved back to now when it is later (or set to
   now when there was none), and `next_fire_at` set to it. The scheduler's next tick claims them,
   fires only what the new reading has due from `next_scheduled_for` on (that value is a lower bound
   there, not a fire time: apps/schedules/firing.py, `_due_fire_times`) and sets both by the new
   reading. A paused or disabled one gets the same lower bound for the skipped fires recorded when
   it resumes. Marking a schedule whose reading did not change costs it one early tick, nothing
   more, so the check below errs that way: every expression whose two day fields are both
   restricted.

The rules are written out here as they were on the day of this migration, and no app code is
imported: a migration must keep working, and keep doing the same thing, whatever the code becomes.
"""

import re

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest value, highest value, the names of the values from the lowest on
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 0, 7, DAYS),
)
DAY_OF_MONTH, DAY_OF_WEEK = 2, 4
RANGE_ITEM = re.compile(r"(?P<start>\*|[0-9A-Z]+)(?:-(?P<end>[0-9A-Z]+))?(?:/(?P<step>[0-9A-Z]*))?")
NTH_WEEKDAY_ITEM = re.compile(r"(?P<day>[0-9A-Z]+)#(?P<nth>[0-9]*)")
LAST_WEEKDAY_ITEM = re.compile(r"(?P<day>[0-9])L")


def expression_fields(expression: str) -> list[str]:
    stripped = " ".join(expression.split())
    return ALIASES.get(stripped.lower(), stripped).split()


def value_of(index: int, text: str) -> int | None:
    """The value of a number or a name, or None when it is neither."""
    _, low, _, names = FIELDS[index]
    if text.isdigit():
        return int(text)
    return low + names.index(text) if text in names else None


def value_refusal(index: int, text: str) -> str | None:
    _, low, high, names = FIELDS[index]
    value = value_of(index, text)
    if value is None:
        return f"{text!r} is not a number" + (" or a name" if names else "")
    if not low <= value <= high:
        return f"{text} is out of range {low}-{high}"
    return None


def item_refusal(index: int, item: str) -> str | None:
    """Why one item of a field is refused, or None."""
    high = FIELDS[index][2]
    if item == "":
        return "an empty item in the list"
    if "?" in item:
        return "'?' is not supported; write * for any day"
    if item[0] == "H":
        return "H (a hashed, per-job time) is not supported; write the time"
    if item[0] == "R":
        return "R (a random time) is not supported; write the time"
    if index == DAY_OF_MONTH and item in ("L", "LW"):
        return None
    if index == DAY_OF_MONTH and item.endswith("W"):
        return "the nearest weekday (W) is not supported, only LW (the month's last weekday)"
    if index == DAY_OF_WEEK and (nth := NTH_WEEKDAY_ITEM.fullmatch(item)):
        if not nth["nth"].isdigit() or not 1 <= int(nth["nth"]) <= 5:
            return "the week after # must be 1 to 5"
        return value_refusal(index, nth["day"])
    if index == DAY_OF_WEEK and LAST_WEEKDAY_ITEM.fullmatch(item):
        return value_refusal(index, item[0])
    if index in (DAY_OF_MONTH, DAY_OF_WEEK) and "L" in item:
        return "L is not supported there"
    matched = RANGE_ITEM.fullmatch(item)
    if not matched:
        return "not a value, a range, a step or *"
    start, end, step = matched["start"], matched["end"], matched["step"]
    if start == "*" and end is not None:
        return "* cannot start a range"
    if step is not None and (not step.isdigit() or not 1 <= int(step) <= high):
        return f"step {step!r} must be a number from 1 to {high}"
    for text in (start, end):
        if text is not None and text != "*" and (refusal := value_refusal(index, text)):
            return refusal
    first, last = value_of(index, start), value_of(index, end or "")
    if first is not None and last is not None and last < first:
        return (
            "a reversed range; ranges go from low to high and do not wrap around "
            "(write two ranges as a list instead)"
        )
    return None


def cron_refusal(expression: str) -> str | None:
    """Why the rules of the day refuse the expression's syntax, naming the field, or None."""
    if expression.strip().startswith("@") and expression.strip().lower() not in ALIASES:
        return "not a supported alias."
    fields = expression_fields(expression)
    if len(fields) != len(FIELDS):
        return f"must have 5 fields, not {len(fields)}."
    for index, text in enumerate(fields):
        for item in text.split(","):
            reason = item_refusal(index, item.upper())
            if reason:
                return f"{FIELDS[index][0]} field {text!r}: {reason}."
    return None


def reading_changed(expression: str) -> bool:
    """Whether croniter may have read the (accepted) expression otherwise than the rules do."""
    fields = expression_fields(expression)
    for index, text in enumerate(fields):
        for item in text.split(","):
            matched = RANGE_ITEM.fullmatch(item.upper())
            if (
                matched
                and matched["end"] is not None
                and value_of(index, matched["start"]) == value_of(index, matched["end"])
            ):
                return True  # a one-value range, which croniter read as the whole field
    return fields[DAY_OF_MONTH] != "*" and fields[DAY_OF_WEEK] != "*"


def crons_upgrade(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Schedule = apps.get_model("schedules", "Schedule")
    database = schema_editor.connection.alias
    schedules = Schedule.objects.using(database)
    now = timezone.now()
    for schedule in schedules.filter(kind="cron").iterator():
        refusal = cron_refusal(schedule.cron_expression)
        if refusal is not None:
            note = (
                f"Paused on upgrade: the cron expression {schedule.cron_expression!r} is no "
                f"longer accepted ({refusal}) Edit it, then resume."
            )
            if schedule.paused:
                note = f"{schedule.pause_note}\n\n{note}" if schedule.pause_note else note
            else:
                schedule.paused, schedule.paused_at = True, now
            schedule.pause_note = note
            schedule.save(using=database, update_fields=["paused", "paused_at", "pause_note"])
        elif reading_changed(schedule.cron_expression):
            stored = schedule.next_scheduled_for
            schedule.next_scheduled_for = now if stored is None else min(stored, now)
            schedule.next_fire_at = schedule.next_scheduled_for
            schedule.save(using=database, update_fields=["next_scheduled_for", "next_fire_at"])


class Migration(migrations.Migration):
    dependencies = [("schedules", "0001_initial")]

    operations = [migrations.RunPython(crons_upgrade, migrations.RunPython.noop)]
