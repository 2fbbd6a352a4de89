"""The scheduler's cron readings against a brute-force evaluator written from docs/scheduling.md.

The evaluator below knows nothing of cronsim or of apps.schedules.timing: it parses the documented
syntax itself, tests every minute of the wall clock, and places wall-clock times on the UTC timeline
by walking UTC minute by minute (a wall time skipped by a jump forward fires at the first instant
after the jump; a wall time seen twice fires the first time). Random expressions from the
documented grammar are compared over a window around every DST change of 2026 and 2027 in zones
that break naive code, and over long spans of days in UTC. Deterministic: hypothesis is
derandomized and no database is used.
"""

import bisect
import calendar
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.exceptions import ValidationFailed
from apps.schedules.models import Schedule, ScheduleKind
from apps.schedules.services import schedule_preview
from apps.schedules.timing import Recurrence, cached_fires_between, cached_next_after
from apps.schedules.validation import schedule_validate

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (low, high, names) of minute, hour, day-of-month, month, day-of-week
FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTHS), (0, 7, DAYS))
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
# As long as the validator searches before refusing an expression as never firing.
SEARCH_YEARS = 50
ZONES = (
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Santiago",
    "Europe/London",
    "America/St_Johns",
)


# The evaluator, from the documented rules.


@dataclass
class Cron:
    minutes: set[int] = field(default_factory=set)
    hours: set[int] = field(default_factory=set)
    months: set[int] = field(default_factory=set)
    days_of_month: set[int] = field(default_factory=set)
    last_day: bool = False
    last_weekday: bool = False
    days_of_week: set[int] = field(default_factory=set)  # 0 is Sunday
    last_of_week_day: set[int] = field(default_factory=set)
    nth_of_week_day: set[tuple[int, int]] = field(default_factory=set)
    both_days: bool = False

    def day_matches(self, day: date) -> bool:
        month_days = calendar.monthrange(day.year, day.month)[1]
        last_weekday = max(
            d
            for d in range(month_days - 2, month_days + 1)
            if date(day.year, day.month, d).weekday() < 5
        )
        by_month = (
            day.day in self.days_of_month
            or (self.last_day and day.day == month_days)
            or (self.last_weekday and day.day == last_weekday)
        )
        week_day = (day.weekday() + 1) % 7
        by_week = (
            week_day in self.days_of_week
            or (week_day in self.last_of_week_day and day.day + 7 > month_days)
            or (week_day, (day.day - 1) // 7 + 1) in self.nth_of_week_day
        )
        if self.both_days:
            return by_month and by_week
        return by_month or by_week

    def matches(self, wall: datetime) -> bool:
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and self.day_matches(wall.date())
        )


def number(text: str, names: tuple[str, ...], low: int) -> int:
    return int(text) if text.isdigit() else low + names.index(text.upper())


def item_values(item: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    base, slash, step = item.partition("/")
    if base == "*":
        first, last = low, high
    elif "-" in base:
        start, end = base.split("-")
        first, last = number(start, names, low), number(end, names, low)
    else:
        first = number(base, names, low)
        last = high if slash else first
    return set(range(first, last + 1, int(step) if slash else 1))


def cron_parse(expression: str) -> Cron:
    texts = expression.split()
    cron = Cron(both_days=texts[2].startswith("*") or texts[4].startswith("*"))
    targets = (cron.minutes, cron.hours, cron.days_of_month, cron.months, cron.days_of_week)
    for index, (text, (low, high, names)) in enumerate(zip(texts, FIELDS, strict=True)):
        for item in text.split(","):
            upper = item.upper()
            if index == 2 and upper in ("L", "LW"):
                cron.last_day |= upper == "L"
                cron.last_weekday |= upper == "LW"
            elif index == 4 and upper.endswith("L"):
                cron.last_of_week_day.add(int(upper[:-1]) % 7)
            elif index == 4 and "#" in upper:
                day, nth = upper.split("#")
                cron.nth_of_week_day.add((number(day, names, low) % 7, int(nth)))
            else:
                targets[index].update(item_values(item, low, high, names))
    cron.days_of_week = {day % 7 for day in cron.days_of_week}
    return cron


def brute_fires(cron: Cron, zone: ZoneInfo, first: datetime, last: datetime) -> list[datetime]:
    """Every fire in [first, last] (minute-aligned), walking the UTC timeline minute by minute."""
    fires = []
    latest_wall = first.astimezone(zone).replace(tzinfo=None) - MINUTE
    instant = first
    while instant <= last:
        wall = instant.astimezone(zone).replace(tzinfo=None)
        # The wall times reached for the first time at this instant: one, or a whole jump's worth.
        reached = []
        while latest_wall < wall:
            latest_wall += MINUTE
            reached.append(latest_wall)
        if any(cron.matches(time) for time in reached):
            fires.append(instant)
        instant += MINUTE
    return fires


def brute_utc_fires(cron: Cron, after: datetime) -> Iterator[datetime]:
    """Fires strictly after `after` in UTC, by days, for SEARCH_YEARS: the day fields' check."""
    day = after.date()
    for _ in range(SEARCH_YEARS * 365):
        if cron.day_matches(day) and day.month in cron.months:
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    fire = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if fire > after:
                        yield fire
        day += timedelta(days=1)


# Expressions from the documented grammar.


def cased(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.lower(), name.capitalize()])


def value(low: int, high: int, names: tuple[str, ...]) -> st.SearchStrategy[tuple[int, str]]:
    numbers = st.integers(low, high).map(lambda n: (n, str(n)))
    if not names:
        return numbers
    named = st.integers(0, len(names) - 1).flatmap(
        lambda i: cased(names[i]).map(lambda text, i=i: (low + i, text))
    )
    return st.one_of(numbers, named)


@st.composite
def range_item(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...]) -> str:
    start, start_text = draw(value(low, high, names))
    shape = draw(st.sampled_from(["*", "*/", "v", "v-v", "v-v/", "v/"]))
    step = str(draw(st.integers(1, high)))
    if shape == "*":
        return "*"
    if shape == "*/":
        return f"*/{step}"
    if shape == "v":
        return start_text
    if shape == "v/":
        return f"{start_text}/{step}"
    _, end_text = draw(value(start, high, names[start - low :] if names else ()))
    return f"{start_text}-{end_text}" + (f"/{step}" if shape == "v-v/" else "")


@st.composite
def day_of_month_item(draw: st.DrawFn) -> str:
    return draw(st.one_of(range_item(1, 31, ()), st.sampled_from(["L", "LW"])))


@st.composite
def day_of_week_item(draw: st.DrawFn) -> str:
    _, day_text = draw(value(0, 7, DAYS))
    return draw(
        st.one_of(
            range_item(0, 7, DAYS),
            st.integers(0, 7).map(lambda d: f"{d}L"),
            st.integers(1, 5).map(lambda nth: f"{day_text}#{nth}"),
        )
    )


def field_of(item: st.SearchStrategy[str], *, star_weight: int) -> st.SearchStrategy[str]:
    lists = st.lists(item, min_size=1, max_size=3).map(",".join)
    return st.one_of(*[st.just("*")] * star_weight, lists)


expressions = st.tuples(
    field_of(range_item(0, 59, ()), star_weight=0),
    field_of(range_item(0, 23, ()), star_weight=1),
    field_of(day_of_month_item(), star_weight=2),
    field_of(range_item(1, 12, MONTHS), star_weight=2),
    field_of(day_of_week_item(), star_weight=2),
).map(" ".join)


# Windows: a day either side of every DST change of 2026 and 2027, found with zoneinfo.


def offset_changes(zone: ZoneInfo) -> list[datetime]:
    changes = []
    instant = datetime(2026, 1, 1, tzinfo=UTC)
    while instant < datetime(2028, 1, 1, tzinfo=UTC):
        after = instant + timedelta(hours=1)
        if instant.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            low, high = instant, after
            while high - low > MINUTE:
                middle = low + (high - low) / 2
                middle = middle.replace(second=0, microsecond=0)
                if middle.astimezone(zone).utcoffset() == after.astimezone(zone).utcoffset():
                    high = middle
                else:
                    low = middle
            changes.append(high)
        instant = after
    return changes


def windows() -> list[object]:
    found = []
    for name in ZONES:
        zone = ZoneInfo(name)
        # A zone without DST (Kathmandu, +05:45) still gets windows: a new year's, a month end's.
        changes = offset_changes(zone) or [
            datetime(2026, 12, 31, 23, tzinfo=UTC),
            datetime(2027, 2, 28, 12, tzinfo=UTC),
        ]
        for change in changes:
            found.append(pytest.param(name, change, id=f"{name}-{change:%Y-%m-%dT%H:%M}Z"))
    return found


WINDOWS = windows()


def test_every_zone_with_dst_has_four_changes_in_two_years():
    counts = {name: len(offset_changes(ZoneInfo(name))) for name in ZONES}

    assert counts == {name: 0 if name == "Asia/Kathmandu" else 4 for name in ZONES}


def unsaved_schedule(expression: str, timezone: str) -> Schedule:
    return Schedule(kind=ScheduleKind.CRON, cron_expression=expression, timezone=timezone)


@pytest.mark.parametrize(("zone_name", "change"), WINDOWS)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(expression=expressions, probes=st.lists(st.integers(0, 48 * 3600), max_size=5))
def test_fires_previous_fires_and_preview_match_the_documented_rules_across_dst(
    zone_name, change, expression, probes
):
    zone = ZoneInfo(zone_name)
    first, last = change - timedelta(days=1), change + timedelta(days=1)
    recurrence = Recurrence(cron=expression, timezone=zone_name)
    expected = brute_fires(cron_parse(expression), zone, first, last)

    assert cached_fires_between(recurrence, first, last) == expected
    following = cached_next_after(recurrence, first - MINUTE)
    if expected:
        assert following == expected[0]
    else:
        assert following is None or following > last
    shown = expected[:999]
    preview = schedule_preview(
        unsaved_schedule(expression, zone_name), count=len(shown) + 1, after=first - MINUTE
    )
    assert preview[: len(shown)] == shown
    assert len(shown) < len(expected) or len(preview) == len(shown) or preview[-1] > last
    # The previous fire: around the change (inside a repeated or skipped hour), at each fire and
    # just before it, and at drawn instants.
    near_change = [change + timedelta(minutes=7 * step) for step in range(-12, 24)]
    around_fires = [fire - delta for fire in expected[:200] for delta in (timedelta(0), SECOND)]
    drawn = [first + timedelta(seconds=seconds) for seconds in probes]
    for instant in near_change + around_fires + drawn:
        earlier = bisect.bisect_right(expected, instant)
        latest = recurrence.latest_at_or_before(instant)
        if earlier:
            assert latest == expected[earlier - 1], instant
        else:
            assert latest is None or latest < first, instant


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    expression=expressions,
    start=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),  # noqa: DTZ001
)
def test_day_fields_match_the_documented_rules_over_long_spans(expression, start):
    after = start.replace(tzinfo=UTC)
    searched_until = after + timedelta(days=SEARCH_YEARS * 365)
    recurrence = Recurrence(cron=expression)
    cron = cron_parse(expression)
    expected = list(itertools.islice(brute_utc_fires(cron, after), 40))

    found = itertools.takewhile(lambda fire: fire < searched_until, recurrence.fires_after(after))
    preview = schedule_preview(unsaved_schedule(expression, "UTC"), count=40, after=after)

    assert list(itertools.islice(found, 40)) == expected
    assert [fire for fire in preview if fire < searched_until] == expected
    for earlier, fire in itertools.pairwise(expected):
        assert recurrence.latest_at_or_before(fire) == fire
        assert recurrence.latest_at_or_before(fire - SECOND) == earlier


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(expression=expressions)
def test_every_expression_of_the_grammar_is_accepted_unless_it_never_fires(expression):
    schedule = unsaved_schedule(expression, "UTC")
    now = datetime(2026, 6, 1, tzinfo=UTC)
    never_fires = next(brute_utc_fires(cron_parse(expression), now), None) is None

    if never_fires:
        with pytest.raises(ValidationFailed, match="never fires") as refused:
            schedule_validate(schedule, now=now)
        assert refused.value.field == "cron_expression"
    else:
        schedule_validate(schedule, now=now)
