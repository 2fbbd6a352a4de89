"""Runs: /api/v1/runs/ — list (newest first, by cursor), read with attempts, cancel, retry, and
the run's log."""

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import QueryText
from apps.api.logs import search_page, user_team_ids
from apps.api.pagination import (
    MAX_ID,
    CursorPageQuery,
    IdField,
    NewestFirstCursor,
    QuerySerializer,
    cursor_page_of,
)
from apps.api.permissions import role_require
from apps.logs.search import MAX_QUERY_CHARS, RunQuery, runs_search
from apps.runs.logs import log_line_data, run_log_lines
from apps.runs.models import Run, RunAttempt, RunLogLine, RunTrigger
from apps.runs.selectors import (
    MAX_CHART_MINUTES,
    OUTCOMES,
    run_counts,
    runs_list,
    runs_per_minute,
    runs_visible,
)
from apps.runs.services.build import run_retry
from apps.runs.services.moves import run_cancel
from apps.runs.states import RunState


class RunSerializer(serializers.ModelSerializer[Run]):
    class Meta:
        model = Run
        fields = [
            "id",
            "job",
            "schedule",
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
        read_only_fields = fields


class RunAttemptSerializer(serializers.ModelSerializer[RunAttempt]):
    class Meta:
        model = RunAttempt
        fields = ["number", "worker", "started_at", "finished_at", "outcome", "error", "traceback"]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    attempts = RunAttemptSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "traceback", "attempts"]
        read_only_fields = fields


class RunScopeSerializer(QuerySerializer):
    job = IdField(required=False, source="job_id")
    trigger = serializers.ChoiceField(choices=RunTrigger.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class RunFilterSerializer(CursorPageQuery, RunScopeSerializer):
    state = serializers.ChoiceField(choices=RunState.choices, required=False)
    q = QueryText(
        required=False,
        max_length=MAX_QUERY_CHARS,
        help_text="Runs whose error or traceback holds these words (as the log search's `q`), "
        "newest first; 503 while Elasticsearch cannot be reached.",
    )


class RunCountsSerializer(serializers.Serializer[Any]):
    """The number of runs in each state (every state, 0 included)."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {state: serializers.IntegerField(min_value=0) for state in RunState.values}


class RunsPerMinuteQuery(QuerySerializer):
    minutes = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_CHART_MINUTES,
        default=MAX_CHART_MINUTES,
        help_text="How many minutes, the current one last.",
    )
    job = IdField(required=False, source="job_id")


class OutcomeSeriesSerializer(serializers.Serializer[Any]):
    """For each outcome, the number of runs that ended in each minute, in order."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            outcome: serializers.ListField(child=serializers.IntegerField(min_value=0))
            for outcome in OUTCOMES
        }


class RunsPerMinuteSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField(help_text="The start of the first minute.")
    minutes = serializers.IntegerField(min_value=1, max_value=MAX_CHART_MINUTES)
    counts = OutcomeSeriesSerializer()


class RunLogLineSerializer(serializers.ModelSerializer[RunLogLine]):
    """The fields, for the schema; a line's representation is the run log's own, which the live
    streams send too."""

    class Meta:
        model = RunLogLine
        fields = ["sequence", "attempt", "logged_at", "level", "logger", "message"]
        read_only_fields = fields

    def to_representation(self, instance: RunLogLine) -> dict[str, Any]:
        return log_line_data(instance)


class RunLogFilterSerializer(QuerySerializer):
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_ID,
        default=0,
        help_text="Lines after this sequence number.",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=200)


class RunLogSerializer(serializers.Serializer[Any]):
    lines = RunLogLineSerializer(many=True)
    finished = serializers.BooleanField(help_text="The run has ended: no line will follow.")
    next_after = serializers.IntegerField(help_text="Pass as `after` for the lines that follow.")


def visible_run(request: Request, run_id: str) -> Run:
    return get_object_or_404(runs_visible(user=request.user), id=run_id)


class RunListView(APIView):
    @extend_schema(
        operation_id="runs_list",
        parameters=[RunFilterSerializer],
        responses={200: cursor_page_of("Run", RunSerializer(many=True)), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        filters = RunFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = filters.without_paging()
        if "q" in values:
            return self.search(request, values, size=filters.validated_data.get("limit"))
        # Rows, not models: every field of a listed run is a column (a foreign key as its id),
        # which DRF's JSON encoder writes as RunSerializer does, for a fraction of the time.
        rows = runs_list(user=request.user, **values)
        page = NewestFirstCursor()
        runs = page.paginate_queryset(rows.values(*RunSerializer.Meta.fields), request, self)
        return page.get_paginated_response(runs)

    def search(self, request: Request, values: dict[str, Any], size: int | None) -> Response:
        """The runs whose error text matches `q`, found by the log search (apps.logs.search)."""
        query = RunQuery(team_ids=user_team_ids(request), **values)
        page, following = search_page(
            request,
            runs_search,
            query,
            size=size or NewestFirstCursor.page_size,
            cursor=request.query_params.get("cursor"),
        )
        found = runs_visible(user=request.user).filter(id__in=page.results)
        rows = {row["id"]: row for row in found.values(*RunSerializer.Meta.fields)}
        results = [rows[run_id] for run_id in page.results if run_id in rows]
        return Response({"next": following, "previous": None, "results": results})


class RunCountsView(APIView):
    @extend_schema(
        operation_id="runs_counts",
        parameters=[RunScopeSerializer],
        responses={200: RunCountsSerializer, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        filters = RunScopeSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(run_counts(user=request.user, **filters.validated_data))


class RunsPerMinuteView(APIView):
    @extend_schema(
        operation_id="runs_per_minute",
        parameters=[RunsPerMinuteQuery],
        responses={200: RunsPerMinuteSerializer, **ERROR_RESPONSES},
        description="How many of the runs you may see ended in each of the last minutes (the "
        "current one, so far, last), by outcome: " + ", ".join(OUTCOMES) + ".",
    )
    def get(self, request: Request) -> Response:
        query = RunsPerMinuteQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        chart = runs_per_minute(user=request.user, now=timezone.now(), **query.validated_data)
        return Response(RunsPerMinuteSerializer(chart).data)


class RunDetailView(APIView):
    @extend_schema(
        operation_id="runs_retrieve", responses={200: RunDetailSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = get_object_or_404(
            runs_visible(user=request.user).prefetch_related("attempts"), id=run_id
        )
        return Response(RunDetailSerializer(run).data)


class RunCancelView(APIView):
    @extend_schema(request=None, responses={200: RunSerializer, **ERROR_RESPONSES})
    def post(self, request: Request, run_id: str) -> Response:
        run = visible_run(request, run_id)
        role_require(request, team_id=run.job.team_id, role=Role.OPERATOR)
        return Response(RunSerializer(run_cancel(run=run, actor=request.user)).data)


class RunRetryView(APIView):
    @extend_schema(
        request=None,
        responses={201: RunSerializer, **ERROR_RESPONSES},
        description="A new run of the job with this run's arguments; the run must have ended "
        "without success.",
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = visible_run(request, run_id)
        role_require(request, team_id=run.job.team_id, role=Role.OPERATOR)
        retried = run_retry(run=run, actor=request.user)
        return Response(RunSerializer(retried).data, status=status.HTTP_201_CREATED)


class RunLogView(APIView):
    @extend_schema(
        operation_id="runs_log",
        parameters=[RunLogFilterSerializer],
        responses={200: RunLogSerializer, **ERROR_RESPONSES},
        description="The run's log lines in order, a page at a time; to follow a running run, "
        "ask again with `after` = `next_after` until `finished`.",
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = visible_run(request, run_id)
        query = RunLogFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        lines = list(run_log_lines(run_id=run.id, after_sequence=after, limit=limit))
        return Response(
            {
                "lines": RunLogLineSerializer(lines, many=True).data,
                "finished": run.is_terminal and len(lines) < limit,
                "next_after": lines[-1].sequence if lines else after,
            }
        )
