import uuid

from django.db.models import QuerySet

from apps.core.exceptions import NotFound
from apps.jobs.models import Job
from apps.runs.models import Run


def run_list(*, job: Job | None = None, state: str | None = None) -> QuerySet[Run]:
    runs = Run.objects.select_related("job")
    if job is not None:
        runs = runs.filter(job=job)
    if state is not None:
        runs = runs.filter(state=state)
    return runs


def run_get(*, run_id: uuid.UUID | str) -> Run:
    try:
        return Run.objects.select_related("job").get(id=uuid.UUID(str(run_id)))
    except (Run.DoesNotExist, ValueError):
        raise NotFound(f"Run {run_id} does not exist.", field="run") from None
