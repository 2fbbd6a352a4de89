"""config.urls plus the plain Django views the API benchmark compares the REST API against: the
same rows, `JsonResponse(list(queryset.values(...)))`, no authentication, no serializer."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from apps.api.runs import RunSerializer
from apps.jobs.models import Job
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
    return JsonResponse(Job.objects.values(*JOB_FIELDS).get(id=job_id))


urlpatterns = [
    *dts_urlpatterns,
    path("bench/plain/runs/", plain_runs),
    path("bench/plain/jobs/<int:job_id>/", plain_job),
]
