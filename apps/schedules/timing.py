"""When schedules fire: pure functions over aware datetimes, no database.

Cron expressions are matched on the schedule's local wall clock, then each local time is placed on
the UTC timeline by one rule (docs/scheduling.md):
- a local time that does not exist (skipped by a DST jump forward) fires once, at the first instant
  after the gap;
- a local time that happens twice (DST fall back) fires once, at its first occurrence.
Interval and once-at schedules live on the UTC timeline and never meet DST.
"""

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cron_descriptor import ExpressionDescriptor, Options  # type: ignore[import-untyped]
from cronsim import CronSim

# A cron expression must fire within this many local-time steps of any instant; an expression that
# does not (such as 30 February) is refused when it is saved, so this is never reached in practice.
MAX_CRON_STEPS_PER_FIRE = 10_000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fire times are computed in [EPOCH, HORIZON) only, and a schedule's dates must fall inside it:
# far enough for any real plan, and far from datetime's year 9999, where adding a jitter, a
# time-zone offset or an interval would overflow.
HORIZON = datetime(2200, 1, 1, tzinfo=UTC)

CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def cron_expand(expression: str) -> str:
    """The five-field form of an expression, with @aliases replaced."""
    stripped = " ".join(expression.split())
    return CRON_ALIASES.get(stripped.lower(), stripped)


def cron_describe(expression: str) -> str:
    """The expression in words, in 24-hour time ("At 09:00, Monday through Friday"); the
    expression itself if cron-descriptor cannot read it (the rules, not it, decide what is
    valid: apps.schedules.validation)."""
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return str(ExpressionDescriptor(cron_expand(expression), options).get_description())
    except Exception:  # its own FormatError and others; words are a courtesy, never an error
        return expression


INTERVAL_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def interval_describe(seconds: int) -> str:
    """ "Every 10 minutes", "Every day", "Every 90 seconds": in the largest unit that divides it."""
    for unit, length in INTERVAL_UNITS:
        if seconds % length == 0:
            count = seconds // length
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return f"Every {seconds} seconds"


@dataclass(frozen=True)
class CronField:
    """One of the five fields of a cron expression: its name, its values and their names."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is value low + i
    name_kind: str = ""

    def value(self, text: str) -> int | None:
        """The value a number or a name (upper case) stands for, or None when it is neither."""
        if text.isdigit():
            return int(text)
        return self.low + self.names.index(text) if text in self.names else None


MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
CRON_FIELDS = (
    CronField("minute", 0, 59),
    CronField("hour", 0, 23),
    CronField("day-of-month", 1, 31),
    CronField("month", 1, 12, MONTH_NAMES, "month"),
    CronField("day-of-week", 0, 7, DAY_NAMES, "day"),
)
ONE_VALUE_STEPPED_RANGE = re.compile(r"([0-9A-Z]+)-([0-9A-Z]+)/[0-9]+")


def cronsim_expression(expression: str) -> str:
    """The expression as cronsim is given it: aliases expanded, and a stepped range of one value
    (5-5/10) written as that value, which cronsim 2.8 would read as 5/10 (5 to the field's end)."""
    fields = cron_expand(expression).upper().split()
    for index, (cron_field, text) in enumerate(zip(CRON_FIELDS, fields, strict=False)):
        items = text.split(",")
        for position, item in enumerate(items):
            stepped = ONE_VALUE_STEPPED_RANGE.fullmatch(item)
            if stepped:
                start, end = (cron_field.value(value) for value in stepped.groups())
                if start is not None and start == end:
                    items[position] = stepped[1]
        fields[index] = ",".join(items)
    return " ".join(fields)


def cron_local_times(
    expression: str, start: datetime, *, reverse: bool = False
) -> Iterator[datetime]:
    """The naive wall-clock times the expression matches, after `start` (before it, with
    `reverse`), in order. Raises cronsim's CronSimError for an expression it cannot read or that
    names a day no month it allows has (31 February)."""
    return CronSim(cronsim_expression(expression), start, reverse=reverse)


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Place a naive local wall-clock time on the UTC timeline, by the DST rule above."""
    first = local.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local:
        return first.astimezone(UTC)  # exists; fold=0 is its first occurrence when it is ambiguous
    # In a gap: fold=0 reads the time with the offset before the jump, fold=1 with the one after,
    # so the jump happened between these two instants. Find it to the second.
    low = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first.astimezone(UTC)
    offset_after = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset_after:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def wall_time_bound(instant: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time after which no wall time is placed (by local_to_utc) at or before
    `instant`.

    local_to_utc never decreases as the wall clock advances, so a backward search from here finds
    the latest fire at or before the instant once it skips the few times placed after it. It is
    the instant's own wall time, except in the second pass of a repeated hour: there the rest of
    that hour's first pass (02:20 to 03:00 when clocks fall back from 03:00 to 02:00, asked at the
    second 02:20) is earlier on the UTC timeline too, so the bound moves on by the offset change.
    """
    wall = instant.astimezone(zone)
    naive = wall.replace(tzinfo=None, fold=0)
    if wall.fold == 0:
        return naive
    first_pass = naive.replace(tzinfo=zone, fold=0)
    return naive + (instant - first_pass)  # the offset change


@dataclass(frozen=True)
class Recurrence:
    """The timing part of a schedule. Exactly one of cron, interval or once_at is set."""

    cron: str = ""
    timezone: str = "UTC"
    interval: timedelta | None = None
    once_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def fires_after(self, instant: datetime) -> Iterator[datetime]:
        """Fire times strictly after `instant`, in order, within start/end and before HORIZON."""
        floor = max(instant, EPOCH - timedelta(microseconds=1))
        if self.start_at is not None and self.start_at > floor:
            floor = self.start_at - timedelta(microseconds=1)
        if floor >= HORIZON:
            return
        for fire in self._unbounded_after(floor):
            if fire >= HORIZON or (self.end_at is not None and fire > self.end_at):
                return
            yield fire

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.fires_after(instant), None)

    def fires_between(self, first: datetime, last: datetime) -> Iterator[datetime]:
        """Fire times in [first, last], in order."""
        for fire in self.fires_after(max(first, EPOCH) - timedelta(microseconds=1)):
            if fire > last:
                return
            yield fire

    def latest_at_or_before(self, instant: datetime) -> datetime | None:
        """The last fire time at or before `instant`, within start/end and [EPOCH, HORIZON)."""
        if self.end_at is not None and instant > self.end_at:
            instant = self.end_at
        instant = min(instant, HORIZON - timedelta(microseconds=1))
        if instant < EPOCH:
            return None
        latest = self._unbounded_latest(instant)
        if latest is None or (self.start_at is not None and latest < self.start_at):
            return None
        return latest

    def _unbounded_latest(self, instant: datetime) -> datetime | None:
        if self.once_at is not None:
            return self.once_at if self.once_at <= instant else None
        if self.interval is not None:
            anchor = self.start_at or EPOCH
            if instant < anchor:
                return None
            return anchor + ((instant - anchor) // self.interval) * self.interval
        zone = ZoneInfo(self.timezone)
        bound = wall_time_bound(instant, zone).replace(microsecond=0)
        # Backwards from just after the bound: the first wall time is the bound itself.
        local_times = cron_local_times(self.cron, bound + timedelta(seconds=1), reverse=True)
        for _ in range(MAX_CRON_STEPS_PER_FIRE):
            local = next(local_times, None)
            if local is None:  # no match in the 50 years cronsim searches
                return None
            fire = local_to_utc(local, zone)
            if fire < EPOCH:
                return None
            if fire <= instant:
                return fire
        return None

    def _unbounded_after(self, instant: datetime) -> Iterator[datetime]:
        if self.once_at is not None:
            if self.once_at > instant:
                yield self.once_at
        elif self.interval is not None:
            yield from self._interval_after(instant, self.interval)
        else:
            yield from self._cron_after(instant)

    def _interval_after(self, instant: datetime, interval: timedelta) -> Iterator[datetime]:
        # Anchored at start_at (or the Unix epoch), so replicas and restarts agree on fire times.
        anchor = self.start_at or EPOCH
        fire = anchor + max(0, (instant - anchor) // interval + 1) * interval
        while fire < HORIZON:
            yield fire
            fire += interval

    def _cron_after(self, instant: datetime) -> Iterator[datetime]:
        zone = ZoneInfo(self.timezone)
        # cronsim is given naive wall-clock times, on which it does plain calendar arithmetic;
        # placing each on the UTC timeline is dts's own rule (local_to_utc), not cronsim's.
        local_times = cron_local_times(
            self.cron, instant.astimezone(zone).replace(tzinfo=None, fold=0)
        )
        last = instant
        steps = 0
        while steps < MAX_CRON_STEPS_PER_FIRE:
            steps += 1
            local = next(local_times, None)
            if local is None:  # no match in the 50 years cronsim searches
                return
            # Local times can map to or before the last fire: the repeated hour after a fall-back
            # (read at its first occurrence), or the times inside a gap (all read as its end).
            fire = local_to_utc(local, zone)
            if fire > last:
                yield fire
                last = fire
                steps = 0


# Many schedules share a recurrence (10,000 jobs "every minute"): the scheduler asks the same
# question for each of them in a tick, and the answer is a pure function of its arguments. These are
# the Recurrence methods of the same question, remembered; named apart so that a reader cannot take
# one for the other.
@functools.lru_cache(maxsize=4096)
def _cached_fires_between(
    recurrence: Recurrence, first: datetime, last: datetime
) -> tuple[datetime, ...]:
    return tuple(recurrence.fires_between(first, last))


@functools.lru_cache(maxsize=4096)
def cached_next_after(recurrence: Recurrence, instant: datetime) -> datetime | None:
    """`recurrence.next_after(instant)`, remembered."""
    return recurrence.next_after(instant)


def cached_fires_between(recurrence: Recurrence, first: datetime, last: datetime) -> list[datetime]:
    """`list(recurrence.fires_between(first, last))`, remembered."""
    return list(_cached_fires_between(recurrence, first, last))
