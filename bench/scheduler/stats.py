"""From timestamped queue messages to fires, lateness and rates: one way for every peer.

A *fire* is the first message of a schedule for one of the measured due times; a later message for
the same schedule and due time is a *duplicate*; a message for a due time after the measured ones
(the next minute of an every-minute schedule) is a *later fire* and is not counted.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cronsim import CronSim

# A message this long before its due time still counts for it (clock rounding between processes).
TOLERANCE_S = 1.0

Pattern = Literal["every_minute", "spread", "idle"]


@dataclass(frozen=True)
class Shape:
    """A trial's schedules: `count` of one pattern (keys 0..count-1), none due before `first_due`,
    then `idle` more (keys count..) that are not due for months: the targets of edits."""

    pattern: Pattern
    count: int
    first_due: datetime
    idle: int = 0

    @property
    def total(self) -> int:
        return self.count + self.idle

    def cron(self, key: int) -> str:
        if key >= self.count or self.pattern == "idle":
            # Hour "*": django-celery-beat 2.9 does not even load crontabs whose numeric hour is
            # more than 2 hours away, and "idle" must mean loaded but not due.
            return f"0 * 1 {(self.first_due.month + 5) % 12 + 1} *"
        if self.pattern == "spread":
            return f"{key % 60} * * * *"
        return "* * * * *"

    def is_due(self, key: int, at: datetime) -> bool:
        if key >= self.count or self.pattern == "idle" or at < self.first_due:
            return False
        return self.pattern == "every_minute" or key % 60 == at.minute

    def expected_at(self, at: datetime) -> int:
        """How many schedules are due at `at`."""
        if self.pattern == "idle" or at < self.first_due or at.second or at.microsecond:
            return 0
        if self.pattern == "every_minute":
            return self.count
        return self.count // 60 + (1 if at.minute < self.count % 60 else 0)

    def next_due_after(self, key: int, at: datetime) -> datetime:
        """The schedule's first due time strictly after `at`."""
        if key < self.count and self.pattern == "every_minute":
            return at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if key < self.count and self.pattern == "spread":
            due = at.replace(minute=key % 60, second=0, microsecond=0)
            return due if due > at else due + timedelta(hours=1)
        return next(CronSim(self.cron(key), at))


@dataclass(frozen=True)
class Observation:
    """A message the collector took: whose it is and, when the peer records it, its due time."""

    key: int  # the schedule's index in the trial; -1 when the message is not one of ours
    arrival: float  # time.time() when the collector popped it
    nominal: float | None  # the due time it was fired for, if the peer says (dts does)
    ident: str  # the message's task id


@dataclass
class Tally:
    """Fires, duplicates and the rest among the messages fed to it in arrival order."""

    shape: Shape
    due_times: list[datetime]
    arrivals: dict[tuple[int, float], float] = field(default_factory=dict)  # (key, due) -> first
    duplicates: int = 0
    later: int = 0
    unexpected: int = 0
    other: int = 0  # messages of idle or edited schedules, or not ours
    examples: list[str] = field(default_factory=list)  # the first duplicates and unexpected ones
    _dues: dict[int, tuple[list[float], float]] = field(default_factory=dict, repr=False)

    @property
    def expected(self) -> int:
        return sum(self.shape.expected_at(at) for at in self.due_times)

    @property
    def published(self) -> int:
        return len(self.arrivals)

    def add(self, observations: Iterable[Observation]) -> None:
        """Feed messages in arrival order."""
        for observation in observations:
            if 0 <= observation.key < self.shape.count:
                self._place(observation)
            else:
                self.other += 1

    def lateness_s(self) -> list[float]:
        return [arrival - due for (_, due), arrival in self.arrivals.items()]

    def published_at(self, due: float) -> int:
        return sum(1 for (_, fired_due) in self.arrivals if fired_due == due)

    def rate_per_s(self, *, from_due: bool) -> float | None:
        """Fires per second over each due time's burst: from the due time (or from its first
        message) to its last message."""
        bursts: dict[float, list[float]] = defaultdict(list)
        for (_, due), arrival in self.arrivals.items():
            bursts[due].append(arrival)
        busy = sum(max(times) - (due if from_due else min(times)) for due, times in bursts.items())
        return self.published / busy if busy > 0 else None

    def _place(self, message: Observation) -> None:
        """Match a message to one of its schedule's due times. A peer that says which due time a
        message is for is taken at its word; otherwise the message goes to the earliest due time
        of its schedule not yet fired that it is not early for."""
        key = message.key
        stamps, after_last = self._dues_of(key)
        if message.nominal is not None:
            due = message.nominal if message.nominal in stamps else None
            beyond = message.nominal > stamps[-1] if stamps else True
        else:
            reachable = [stamp for stamp in stamps if stamp <= message.arrival + TOLERANCE_S]
            open_ = [stamp for stamp in reachable if (key, stamp) not in self.arrivals]
            due = open_[0] if open_ else (reachable[-1] if reachable else None)
            beyond = not open_ and message.arrival + TOLERANCE_S >= after_last
        if beyond and (due is None or (key, due) in self.arrivals):
            self.later += 1
        elif due is None:
            self.unexpected += 1
            self._note("unexpected", key, due, message.arrival)
        elif (key, due) in self.arrivals:
            self.duplicates += 1
            self._note("duplicate", key, due, message.arrival)
        else:
            self.arrivals[(key, due)] = message.arrival

    def _dues_of(self, key: int) -> tuple[list[float], float]:
        """A schedule's measured due times, and its first due time after them (from which its
        messages may be its next fires)."""
        if key not in self._dues:
            dues = [at for at in self.due_times if self.shape.is_due(key, at)]
            last = dues[-1] if dues else self.shape.first_due - timedelta(seconds=1)
            after_last = self.shape.next_due_after(key, last).timestamp()
            self._dues[key] = ([at.timestamp() for at in dues], after_last)
        return self._dues[key]

    def _note(self, kind: str, key: int, due: float | None, arrival: float) -> None:
        if len(self.examples) < 10:
            first = self.arrivals.get((key, due)) if due is not None else None
            self.examples.append(
                f"{kind}: schedule {key}, due {due}, arrived {arrival:.3f}"
                + (f", first at {first:.3f}" if first is not None else "")
            )


def tally(observations: Iterable[Observation], shape: Shape, due_times: list[datetime]) -> Tally:
    counted = Tally(shape, due_times)
    counted.add(sorted(observations, key=lambda observation: observation.arrival))
    return counted


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    ordered = sorted(value * 1000 for value in seconds)
    return {
        "count": len(ordered),
        "min": round(ordered[0], 1),
        "p50": round(percentile(ordered, 50), 1),
        "p99": round(percentile(ordered, 99), 1),
        "max": round(ordered[-1], 1),
    }


def edit_effects(
    edits: list[tuple[int, float]], observations: list[Observation]
) -> dict[str, object]:
    """For each edit (schedule key, commit time): how long until that schedule's first message."""
    committed = dict(edits)
    first: dict[int, float] = {}
    for observation in observations:
        commit = committed.get(observation.key)
        if commit is not None and observation.arrival >= commit - TOLERANCE_S:
            first[observation.key] = min(first.get(observation.key, math.inf), observation.arrival)
    effects = [first[key] - commit for key, commit in edits if key in first]
    return {
        "edits": len(edits),
        "took_effect": len(effects),
        "effect_ms": summary_ms(effects),
    }
