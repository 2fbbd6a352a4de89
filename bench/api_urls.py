"""config.urls plus the plain Django views the API benchmark compares the REST API against: the
same rows, `JsonResponse(list(queryset.values(...)))`, no authentication, no serializer."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from apps.jobs.models import Job
from apps.runs.models import Run
from config.urls import urlpatterns as dts_urlpatterns

RUN_FIELDS = [
    "id",
    "job_id",
    "schedule_id",
    "trigger",
    "state",
    "attempt",
    "task_type",
    "args",
    "queue",
    "priority",
    "scheduled_for",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "next_attempt_at",
    "worker",
    "result",
    "error",
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
