"""Jobs: /api/v1/jobs/ — list, create, read, change, delete, trigger now, pause and resume; and
the overview of a page of jobs with their latest runs (the live jobs page)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role, Team
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import BooleanValue, JSONObjectField, QueryText, TextField
from apps.api.pagination import LimitPage, LimitPageQuery, limit_page_of
from apps.api.permissions import role_require, team_administered
from apps.api.runs import RunSerializer
from apps.jobs.health import JobHealth, JobStatus
from apps.jobs.models import Job, OverlapPolicy
from apps.jobs.selectors import job_tag_names, jobs_health, jobs_list, jobs_visible
from apps.jobs.services import EDITABLE_FIELDS as JOB_FIELDS
from apps.jobs.services import job_create, job_delete, job_update
from apps.runs.models import RunTrigger
from apps.runs.selectors import MAX_LATEST_RUNS, runs_latest_per_job
from apps.runs.services.build import run_trigger
from apps.runs.states import RunState
from apps.schedules.selectors import schedules_of_jobs
from dispatch.queues import queue_choices


class JobSerializer(serializers.ModelSerializer[Job]):
    team: "serializers.SlugRelatedField[Team]" = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    tags = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField(
        help_text="ok, late, missed, failing or paused (docs/metrics.md, Job health)."
    )
    last_success_at = serializers.SerializerMethodField(
        help_text="When its latest succeeded run ended; null if none is kept."
    )
    next_fire_at = serializers.SerializerMethodField(
        help_text="When its active schedules fire next; null if none does."
    )

    class Meta:
        model = Job
        # What a job is defined by, as its service takes it (tags and name included), then its
        # health, computed (HEALTH_FIELDS).
        fields = [
            "id",
            "team",
            *sorted(JOB_FIELDS),
            "created_at",
            "updated_at",
            "health",
            "last_success_at",
            "next_fire_at",
        ]
        read_only_fields = fields

    def get_tags(self, job: Job) -> list[str]:
        return [tag.name for tag in job.tags.all()]

    @extend_schema_field(serializers.ChoiceField(choices=JobHealth.choices))
    def get_health(self, job: Job) -> str:
        return self._status(job).health.value

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_success_at(self, job: Job) -> datetime | None:
        return self._status(job).last_success_at

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_fire_at(self, job: Job) -> datetime | None:
        return self._status(job).next_fire_at

    def _status(self, job: Job) -> JobStatus:
        statuses: dict[int, JobStatus] = self.__dict__.setdefault("_statuses", {})
        if job.id not in statuses:
            statuses.update(jobs_health(jobs=Job.objects.filter(id=job.id), now=timezone.now()))
        return statuses[job.id]


class JobDefinitionSerializer(serializers.Serializer[Any]):
    """The fields a job is defined by; the service checks the rules between them."""

    name = TextField(max_length=200)
    description = TextField(allow_blank=True, required=False, max_length=10_000)
    tags = serializers.ListField(child=TextField(max_length=50), required=False, max_length=20)
    task_type = TextField(max_length=200)
    args = JSONObjectField(required=False, help_text="A JSON object for the task type.")
    queue = serializers.ChoiceField(choices=queue_choices(), required=False)
    priority = serializers.IntegerField(min_value=0, max_value=9, required=False)
    enabled = BooleanValue(required=False)
    soft_timeout_seconds = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, required=False, allow_null=True
    )
    hard_timeout_seconds = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, required=False, allow_null=True
    )
    overlap_policy = serializers.ChoiceField(choices=OverlapPolicy.choices, required=False)
    rate_limit_per_minute = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, allow_null=True
    )
    max_concurrent_runs = serializers.IntegerField(
        min_value=1, max_value=100_000, required=False, allow_null=True
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=100, required=False)
    retry_backoff_seconds = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, required=False
    )
    retry_backoff_max_seconds = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, required=False
    )
    retry_jitter = BooleanValue(required=False)
    idempotent = BooleanValue(required=False)


class JobCreateSerializer(JobDefinitionSerializer):
    team = TextField(max_length=100, help_text="The name of the owning team.")


class JobFilterSerializer(LimitPageQuery):
    team = QueryText(required=False, max_length=100, help_text="A team's name.")
    name = QueryText(
        required=False,
        max_length=200,
        help_text="The exact name: one job per team has it at most, so with `team`, at most one.",
    )
    tag = QueryText(required=False, max_length=50)
    task_type = QueryText(required=False, max_length=200)
    # Not required and None by default: DRF would read an omitted boolean of a form as false.
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    search = QueryText(required=False, max_length=200, help_text="Part of the name.")
    health = serializers.ChoiceField(
        choices=JobHealth.choices,
        required=False,
        help_text="Only the jobs of this health (docs/metrics.md, Job health).",
    )


class LatestRunSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=RunState.choices)
    created_at = serializers.DateTimeField()


class ScheduleBriefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    description = serializers.CharField(help_text="When it fires, in words.")
    active = serializers.BooleanField(help_text="Enabled and not paused.")


class JobOverviewSerializer(JobSerializer):
    latest_runs = LatestRunSerializer(
        many=True, read_only=True, help_text="Its latest runs by creation, newest first."
    )
    schedules = ScheduleBriefSerializer(
        many=True, read_only=True, help_text="Its schedules, oldest first."
    )

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "latest_runs", "schedules"]
        read_only_fields = fields


class JobOverviewQuery(JobFilterSerializer):
    runs = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LATEST_RUNS,
        default=MAX_LATEST_RUNS,
        help_text="How many of each job's latest runs.",
    )


class TriggerSerializer(serializers.Serializer[Any]):
    args = JSONObjectField(
        required=False, help_text="Replaces the job's arguments for this run only."
    )


def visible_job(request: Request, job_id: int, *, role: Role | None = None) -> Job:
    """The job, if the user may see it (else 404) and, with `role`, has that role in its team
    (else 403)."""
    job = get_object_or_404(jobs_visible(user=request.user), id=job_id)
    if role is not None:
        role_require(request, team_id=job.team_id, role=role)
    return job


# What JobSerializer writes, read as rows: the job's columns and its team's name in one query, the
# tags of a page's jobs in a second, their health in two or three more (jobs_health); no model or
# serializer field is built (a test keeps the two equal). Reads take this path; writes answer with
# JobSerializer.
HEALTH_FIELDS = ("health", "last_success_at", "next_fire_at")
JOB_COLUMNS = [
    field for field in JobSerializer.Meta.fields if field not in ("team", "tags", *HEALTH_FIELDS)
]


def job_rows(jobs: QuerySet[Job]) -> QuerySet[Any]:
    return jobs.prefetch_related(None).values(*JOB_COLUMNS, team_name=F("team__name"))


def jobs_represented(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [row["id"] for row in rows]
    tags = job_tag_names(job_ids=ids)
    statuses = jobs_health(jobs=Job.objects.filter(id__in=ids), now=timezone.now()) if ids else {}
    for row in rows:
        row["team"] = row.pop("team_name")
        row["tags"] = tags.get(row["id"], [])
        status = statuses[row["id"]]
        row["health"] = status.health.value
        row["last_success_at"] = status.last_success_at
        row["next_fire_at"] = status.next_fire_at
    return list(rows)


class JobListView(APIView):
    @extend_schema(
        operation_id="jobs_list",
        parameters=[JobFilterSerializer],
        responses={200: limit_page_of("Job", JobSerializer(many=True)), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        filters = JobFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = LimitPage()
        jobs = jobs_list(user=request.user, **filters.without_paging())
        rows = page.paginate_queryset(job_rows(jobs), request, self)
        return page.get_paginated_response(jobs_represented(rows or []))

    @extend_schema(
        operation_id="jobs_create",
        request=JobCreateSerializer,
        responses={201: JobSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        team = team_administered(request, data.pop("team"))
        job = job_create(team=team, actor=request.user, **data)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobOverviewView(APIView):
    @extend_schema(
        operation_id="jobs_overview",
        parameters=[JobOverviewQuery],
        responses={
            200: limit_page_of("JobOverview", JobOverviewSerializer(many=True)),
            **ERROR_RESPONSES,
        },
        description="A page of jobs as the job list has them (same filters, same order), each "
        "with its latest runs and its schedules in words: the live jobs page.",
    )
    def get(self, request: Request) -> Response:
        query = JobOverviewQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.without_paging()
        count = filters.pop("runs")
        page = LimitPage()
        jobs = jobs_list(user=request.user, **filters)
        rows = jobs_represented(page.paginate_queryset(job_rows(jobs), request, self) or [])
        ids = [row["id"] for row in rows]
        latest = runs_latest_per_job(job_ids=ids, count=count)
        schedules = schedules_of_jobs(job_ids=ids)
        for row in rows:
            row["latest_runs"] = latest.get(row["id"], [])
            row["schedules"] = [
                {
                    "id": schedule.id,
                    "description": schedule.describe(),
                    "active": schedule.enabled and not schedule.paused,
                }
                for schedule in schedules.get(row["id"], [])
            ]
        return page.get_paginated_response(rows)


class JobDetailView(APIView):
    @extend_schema(operation_id="jobs_retrieve", responses={200: JobSerializer, **ERROR_RESPONSES})
    def get(self, request: Request, job_id: int) -> Response:
        row = get_object_or_404(job_rows(jobs_visible(user=request.user)), id=job_id)
        return Response(jobs_represented([row])[0])

    @extend_schema(
        operation_id="jobs_update",
        request=JobDefinitionSerializer(partial=True),
        responses={200: JobSerializer, **ERROR_RESPONSES},
    )
    def patch(self, request: Request, job_id: int) -> Response:
        job = visible_job(request, job_id, role=Role.ADMIN)
        body = JobDefinitionSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        job = job_update(job=job, data=dict(body.validated_data), actor=request.user)
        return Response(JobSerializer(jobs_visible(user=request.user).get(id=job.id)).data)

    @extend_schema(operation_id="jobs_destroy", responses={204: None, **ERROR_RESPONSES})
    def delete(self, request: Request, job_id: int) -> Response:
        job = visible_job(request, job_id, role=Role.ADMIN)
        job_delete(job=job, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobTriggerView(APIView):
    @extend_schema(
        operation_id="jobs_trigger",
        request=TriggerSerializer,
        responses={201: RunSerializer, **ERROR_RESPONSES},
        description="Run the job now, optionally with other arguments for this run.",
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = visible_job(request, job_id, role=Role.OPERATOR)
        body = TriggerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = run_trigger(
            job=job,
            trigger=RunTrigger.API,
            args=body.validated_data.get("args"),
            actor=request.user,
        )
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


class JobPauseView(APIView):
    enabled = False

    @extend_schema(request=None, responses={200: JobSerializer, **ERROR_RESPONSES})
    def post(self, request: Request, job_id: int) -> Response:
        job = visible_job(request, job_id, role=Role.OPERATOR)
        job = job_update(job=job, data={"enabled": self.enabled}, actor=request.user)
        return Response(JobSerializer(job).data)


class JobResumeView(JobPauseView):
    enabled = True
