from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from apps.runs.models import Run
from apps.schedules.models import Schedule, SkippedFire


@dataclass(frozen=True)
class ScheduleExplanation:
    """What a schedule did lately: the runs it fired and the fires it skipped, with why."""

    last_fires: list[Run]
    skipped: list[SkippedFire]


def schedule_explain(*, schedule: Schedule, limit: int = 20) -> ScheduleExplanation:
    return ScheduleExplanation(
        last_fires=list(schedule.runs.order_by("-scheduled_for")[:limit]),
        skipped=list(schedule.skipped_fires.all()[:limit]),
    )


def schedules_of_jobs(*, job_ids: Iterable[int]) -> dict[int, list[Schedule]]:
    """Each job's schedules, oldest first, in one query."""
    found: dict[int, list[Schedule]] = defaultdict(list)
    for schedule in Schedule.objects.filter(job_id__in=list(job_ids)).order_by("id"):
        found[schedule.job_id].append(schedule)
    return found
