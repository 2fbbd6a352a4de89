"""config.urls plus the plain Django views the API benchmark compares the REST API against: the
same rows, `JsonResponse(list(queryset.values(...)))`, no authentication, no serializer."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from apps.api.runs import RunSerializer
from apps.jobs.models import Job, Tag
from apps.runs.models import Run
from config.urls import urlpatterns as dts_urlpatterns

# The REST API's fields, foreign keys as their ids.
RUN_FIELDS = [
    f"{name}_id" if name in ("job", "schedule") else name for name in RunSerializer.Meta.fields
]
JOB_FIELDS = [field.name for field in Job._meta.concrete_fields]


def plain_runs(request: HttpRequest) -> JsonResponse:
    runs = Run.objects.filter(job_id=request.GET["job"], state=request.GET["state"]).order_by(
        "-created_at"
    )
    return JsonResponse(list(runs.values(*RUN_FIELDS)[:50]), safe=False)


def plain_job(request: HttpRequest, job_id: int) -> JsonResponse:
    """The job's row with its team's name, and its tags' names: what the API's job holds."""
    job = Job.objects.values(*JOB_FIELDS, "team__name").get(id=job_id)
    tags = Tag.objects.filter(jobs=job_id).order_by("name").values_list("name", flat=True)
    return JsonResponse({**job, "tags": list(tags)})


urlpatterns = [
    *dts_urlpatterns,
    path("bench/plain/runs/", plain_runs),
    path("bench/plain/jobs/<int:job_id>/", plain_job),
]
