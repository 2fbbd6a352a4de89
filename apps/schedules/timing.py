"""When schedules fire: pure functions over aware datetimes, no database.

Cron expressions are matched on the schedule's local wall clock, then each local time is placed on
the UTC timeline by one rule (docs/scheduling.md):
- a local time that does not exist (skipped by a DST jump forward) fires once, at the first instant
  after the gap;
- a local time that happens twice (DST fall back) fires once, at its first occurrence.
Interval and once-at schedules live on the UTC timeline and never meet DST.
"""

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

# A cron expression must fire within this many local-time steps of any instant; an expression that
# does not (such as 30 February) is refused when it is saved, so this is never reached in practice.
MAX_CRON_STEPS_PER_FIRE = 10_000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

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
        """Fire times strictly after `instant`, in order, within start/end."""
        floor = instant
        if self.start_at is not None and self.start_at > floor:
            floor = self.start_at - timedelta(microseconds=1)
        for fire in self._unbounded_after(floor):
            if self.end_at is not None and fire > self.end_at:
                return
            yield fire

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.fires_after(instant), None)

    def fires_between(self, first: datetime, last: datetime) -> Iterator[datetime]:
        """Fire times in [first, last], in order."""
        for fire in self.fires_after(first - timedelta(microseconds=1)):
            if fire > last:
                return
            yield fire

    def latest_at_or_before(self, instant: datetime) -> datetime | None:
        """The last fire time at or before `instant`, within start/end."""
        if self.end_at is not None and instant > self.end_at:
            instant = self.end_at
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
        local = instant.astimezone(zone).replace(tzinfo=None) + timedelta(seconds=1)
        local_times = croniter(cron_expand(self.cron), local)
        for _ in range(MAX_CRON_STEPS_PER_FIRE):
            try:
                fire = local_to_utc(local_times.get_prev(datetime), zone)
            except CroniterBadDateError:
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
        while True:
            yield fire
            fire += interval

    def _cron_after(self, instant: datetime) -> Iterator[datetime]:
        zone = ZoneInfo(self.timezone)
        local_times = croniter(
            cron_expand(self.cron), instant.astimezone(zone).replace(tzinfo=None)
        )
        last = instant
        steps = 0
        while steps < MAX_CRON_STEPS_PER_FIRE:
            steps += 1
            try:
                local = local_times.get_next(datetime)
            except CroniterBadDateError:  # no further match at all
                return
            # Local times can map to or before the last fire: the repeated hour after a fall-back
            # (read at its first occurrence), or the times inside a gap (all read as its end).
            fire = local_to_utc(local, zone)
            if fire > last:
                yield fire
                last = fire
                steps = 0


# Many schedules share a recurrence (10,000 jobs "every minute"): the scheduler asks the same
# question for each of them in a tick, and the answer is a pure function of its arguments.
@functools.lru_cache(maxsize=4096)
def _fires_between_cached(
    recurrence: Recurrence, first: datetime, last: datetime
) -> tuple[datetime, ...]:
    return tuple(recurrence.fires_between(first, last))


@functools.lru_cache(maxsize=4096)
def next_after(recurrence: Recurrence, instant: datetime) -> datetime | None:
    return recurrence.next_after(instant)


def fires_between(recurrence: Recurrence, first: datetime, last: datetime) -> list[datetime]:
    return list(_fires_between_cached(recurrence, first, last))
