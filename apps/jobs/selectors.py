from django.db.models import QuerySet

from apps.core.exceptions import NotFound
from apps.jobs.models import Job


def job_list(*, enabled: bool | None = None) -> QuerySet[Job]:
    jobs = Job.objects.all()
    if enabled is not None:
        jobs = jobs.filter(enabled=enabled)
    return jobs


def job_get(*, job_id: int) -> Job:
    try:
        return Job.objects.get(id=job_id)
    except Job.DoesNotExist:
        raise NotFound(f"Job {job_id} does not exist.", field="job") from None
