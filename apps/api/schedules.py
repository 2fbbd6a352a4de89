"""Schedules of a job: /api/v1/jobs/{job_id}/schedules/ — list, create, read, change, delete,
pause, resume, the next fire times, and what the schedule did lately (explain)."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import BooleanValue, QueryText, TextField
from apps.api.jobs import visible_job
from apps.api.pagination import QuerySerializer
from apps.api.permissions import role_require
from apps.api.runs import RunSerializer
from apps.schedules.models import MisfirePolicy, Schedule, ScheduleKind, SkippedFire
from apps.schedules.selectors import schedule_explain
from apps.schedules.services import EDITABLE_FIELDS as SCHEDULE_FIELDS
from apps.schedules.services import (
    schedule_create,
    schedule_delete,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_timing_preview,
    schedule_update,
)
from apps.schedules.validation import FIELDS_OF_KIND

DAY = 24 * 3600


class ScheduleSerializer(serializers.ModelSerializer[Schedule]):
    description = serializers.CharField(
        source="describe",
        read_only=True,
        help_text='When it fires, in words: "At 09:00, Monday through Friday, Europe/Paris".',
    )

    class Meta:
        model = Schedule
        fields = [
            "id",
            "job",
            "description",
            *sorted(SCHEDULE_FIELDS),  # what a schedule is defined by, as its service takes it
            "paused",
            "pause_note",
            "paused_at",
            "next_scheduled_for",
            "next_fire_at",
            "last_fired_for",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ScheduleDefinitionSerializer(serializers.Serializer[Any]):
    """The fields a schedule is defined by; the service checks the rules between them."""

    kind = serializers.ChoiceField(choices=ScheduleKind.choices)
    cron_expression = TextField(
        max_length=200, required=False, allow_blank=True, help_text="5 fields or an @alias."
    )
    timezone = TextField(max_length=64, required=False, help_text="IANA name, e.g. Europe/Paris.")
    interval_seconds = serializers.IntegerField(
        min_value=1, max_value=366 * DAY, required=False, allow_null=True
    )
    once_at = serializers.DateTimeField(required=False, allow_null=True)
    start_at = serializers.DateTimeField(required=False, allow_null=True)
    end_at = serializers.DateTimeField(required=False, allow_null=True)
    jitter_seconds = serializers.IntegerField(min_value=0, max_value=3600, required=False)
    misfire_policy = serializers.ChoiceField(choices=MisfirePolicy.choices, required=False)
    catch_up_window_seconds = serializers.IntegerField(
        min_value=0, max_value=7 * DAY, required=False
    )
    catch_up_max_fires = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    enabled = BooleanValue(required=False)


class ScheduleTimingSerializer(ScheduleDefinitionSerializer):
    """A schedule's definition whose kind may be left out (a workflow's, or a declared job's)."""

    kind = serializers.ChoiceField(
        choices=ScheduleKind.choices,
        required=False,
        help_text="Left out: the kind whose field is given (cron_expression, interval_seconds or "
        "once_at).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return kind_inferred(attrs)


def kind_inferred(attrs: dict[str, Any]) -> dict[str, Any]:
    """A schedule's fields, with its kind, when left out, the one whose field is given."""
    if "kind" not in attrs:
        given = [kind for kind, name in FIELDS_OF_KIND.items() if attrs.get(name) not in (None, "")]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"kind": ["Say it, or give one of cron_expression, interval_seconds, once_at."]}
            )
        attrs["kind"] = given[0]
    return attrs


class TimingQuerySerializer(QuerySerializer):
    kind = serializers.ChoiceField(
        choices=ScheduleKind.choices,
        required=False,
        help_text="Left out: the kind whose field is given.",
    )
    cron_expression = QueryText(max_length=200, required=False)
    timezone = QueryText(max_length=64, required=False, help_text="IANA name (default UTC).")
    interval_seconds = serializers.IntegerField(min_value=1, max_value=366 * DAY, required=False)
    once_at = serializers.DateTimeField(required=False)
    start_at = serializers.DateTimeField(required=False)
    end_at = serializers.DateTimeField(required=False)
    count = serializers.IntegerField(min_value=1, max_value=100, default=10)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return kind_inferred(attrs)


class TimingPreviewSerializer(serializers.Serializer[Any]):
    description = serializers.CharField(help_text="When it would fire, in words.")
    fire_times = serializers.ListField(child=serializers.DateTimeField())


class PauseSerializer(serializers.Serializer[Any]):
    note = TextField(max_length=1000, required=False, allow_blank=True, default="")


class PreviewQuerySerializer(QuerySerializer):
    count = serializers.IntegerField(min_value=1, max_value=1000, default=10)


class PreviewSerializer(serializers.Serializer[Any]):
    fire_times = serializers.ListField(child=serializers.DateTimeField())


class SkippedFireSerializer(serializers.ModelSerializer[SkippedFire]):
    class Meta:
        model = SkippedFire
        fields = [
            "reason",
            "first_scheduled_for",
            "last_scheduled_for",
            "count",
            "count_is_lower_bound",
            "created_at",
        ]
        read_only_fields = fields


class ExplanationSerializer(serializers.Serializer[Any]):
    last_fires = RunSerializer(many=True)
    skipped = SkippedFireSerializer(many=True)


def visible_schedule(
    request: Request, job_id: int, schedule_id: int, *, role: Role | None = None
) -> Schedule:
    """The schedule, if the user may see its job (else 404) and, with `role`, has that role in
    the job's team (else 403)."""
    job = visible_job(request, job_id)
    schedule = get_object_or_404(Schedule.objects.select_related("job"), id=schedule_id, job=job)
    if role is not None:
        role_require(request, team_id=job.team_id, role=role)
    return schedule


class ScheduleListView(APIView):
    @extend_schema(
        operation_id="schedules_list",
        responses={200: ScheduleSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = visible_job(request, job_id)
        return Response(ScheduleSerializer(job.schedules.order_by("id"), many=True).data)

    @extend_schema(
        operation_id="schedules_create",
        request=ScheduleDefinitionSerializer,
        responses={201: ScheduleSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = visible_job(request, job_id, role=Role.ADMIN)
        body = ScheduleDefinitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        if "timezone" in data:
            data["timezone_name"] = data.pop("timezone")
        schedule = schedule_create(job=job, actor=request.user, **data)
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailView(APIView):
    @extend_schema(
        operation_id="schedules_retrieve", responses={200: ScheduleSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request, job_id: int, schedule_id: int) -> Response:
        return Response(ScheduleSerializer(visible_schedule(request, job_id, schedule_id)).data)

    @extend_schema(
        operation_id="schedules_update",
        request=ScheduleDefinitionSerializer(partial=True),
        responses={200: ScheduleSerializer, **ERROR_RESPONSES},
    )
    def patch(self, request: Request, job_id: int, schedule_id: int) -> Response:
        schedule = visible_schedule(request, job_id, schedule_id, role=Role.ADMIN)
        body = ScheduleDefinitionSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        schedule = schedule_update(
            schedule=schedule, data=dict(body.validated_data), actor=request.user
        )
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(operation_id="schedules_destroy", responses={204: None, **ERROR_RESPONSES})
    def delete(self, request: Request, job_id: int, schedule_id: int) -> Response:
        schedule = visible_schedule(request, job_id, schedule_id, role=Role.ADMIN)
        schedule_delete(schedule=schedule, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SchedulePauseView(APIView):
    @extend_schema(
        operation_id="schedules_pause",
        request=PauseSerializer,
        responses={200: ScheduleSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, job_id: int, schedule_id: int) -> Response:
        schedule = visible_schedule(request, job_id, schedule_id, role=Role.OPERATOR)
        body = PauseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        schedule = schedule_pause(
            schedule=schedule, note=body.validated_data["note"], actor=request.user
        )
        return Response(ScheduleSerializer(schedule).data)


class ScheduleResumeView(APIView):
    @extend_schema(
        operation_id="schedules_resume",
        request=None,
        responses={200: ScheduleSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, job_id: int, schedule_id: int) -> Response:
        schedule = visible_schedule(request, job_id, schedule_id, role=Role.OPERATOR)
        return Response(
            ScheduleSerializer(schedule_resume(schedule=schedule, actor=request.user)).data
        )


class SchedulePreviewView(APIView):
    @extend_schema(
        operation_id="schedules_preview",
        parameters=[PreviewQuerySerializer],
        responses={200: PreviewSerializer, **ERROR_RESPONSES},
        description="The next fire times (nominal, before jitter), from now.",
    )
    def get(self, request: Request, job_id: int, schedule_id: int) -> Response:
        schedule = visible_schedule(request, job_id, schedule_id)
        query = PreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        fires = schedule_preview(schedule, count=query.validated_data["count"])
        return Response(PreviewSerializer({"fire_times": fires}).data)


class TimingPreviewView(APIView):
    @extend_schema(
        operation_id="schedules_timing_preview",
        parameters=[TimingQuerySerializer],
        responses={200: TimingPreviewSerializer, **ERROR_RESPONSES},
        description="What a schedule of this timing would be, before it is created: its "
        "description and next fire times (nominal, before jitter), or the refusal creating it "
        "would meet, naming the field. The admin's schedule form shows it as it is typed.",
    )
    def get(self, request: Request) -> Response:
        query = TimingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        timing = dict(query.validated_data)
        count = timing.pop("count")
        description, fires = schedule_timing_preview(timing=timing, count=count)
        return Response(
            TimingPreviewSerializer({"description": description, "fire_times": fires}).data
        )


class ScheduleExplainView(APIView):
    @extend_schema(
        operation_id="schedules_explain",
        responses={200: ExplanationSerializer, **ERROR_RESPONSES},
        description="The schedule's latest fires and the fires it skipped, with the reason.",
    )
    def get(self, request: Request, job_id: int, schedule_id: int) -> Response:
        schedule = visible_schedule(request, job_id, schedule_id)
        return Response(ExplanationSerializer(schedule_explain(schedule=schedule)).data)
