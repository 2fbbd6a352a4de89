"""Workflows: /api/v1/workflows/ — list, create, read, change, delete, run now; and their runs,
/api/v1/workflow-runs/ — list, read with each step's state and run, cancel, retry from failed."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import BooleanValue, JSONObjectField, QueryText, TextField
from apps.api.pagination import LimitPage, LimitPageQuery, limit_page_of
from apps.api.permissions import role_require, team_administered
from apps.api.schedules import ScheduleTimingSerializer
from apps.jobs.models import OverlapPolicy
from apps.runs.models import RunTrigger
from apps.schedules.services import EDITABLE_FIELDS as SCHEDULE_FIELDS
from apps.workflows.models import (
    StepCondition,
    Workflow,
    WorkflowRun,
    WorkflowRunState,
    WorkflowSchedule,
)
from apps.workflows.selectors import workflow_runs_visible, workflows_visible
from apps.workflows.services import (
    MAX_SCHEDULES,
    MAX_STEPS,
    workflow_create,
    workflow_definition,
    workflow_delete,
    workflow_run_cancel,
    workflow_run_retry,
    workflow_steps_resolved,
    workflow_trigger,
    workflow_update,
)


class StepSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=100)
    job = TextField(max_length=200, help_text="The name of a job of the workflow's team.")
    args = JSONObjectField(
        required=False, allow_null=True, help_text="Replaces the job's arguments for this step."
    )
    depends_on = serializers.ListField(
        child=TextField(max_length=100), required=False, max_length=MAX_STEPS
    )
    condition = serializers.ChoiceField(choices=StepCondition.choices, required=False)
    pass_results = BooleanValue(
        required=False, help_text="Its task reads its dependencies' results."
    )


class WorkflowDefinitionSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=200)
    description = TextField(allow_blank=True, required=False, max_length=10_000)
    overlap_policy = serializers.ChoiceField(
        choices=OverlapPolicy.choices,
        required=False,
        help_text="What a schedule's fire does while a run of the workflow is still running.",
    )
    steps = StepSerializer(many=True, max_length=MAX_STEPS)  # type: ignore[call-arg]
    schedules = ScheduleTimingSerializer(  # type: ignore[call-arg]
        many=True,
        required=False,
        max_length=MAX_SCHEDULES,
        help_text="When it runs by itself: a job's schedules' fields. An update's replace them "
        "all; one whose definition is kept keeps its next fire.",
    )


class WorkflowCreateSerializer(WorkflowDefinitionSerializer):
    team = TextField(max_length=100, help_text="The name of the owning team.")


class WorkflowScheduleSerializer(serializers.ModelSerializer[WorkflowSchedule]):
    description = serializers.CharField(
        source="describe", read_only=True, help_text="When it fires, in words."
    )

    class Meta:
        model = WorkflowSchedule
        fields = [
            "id",
            "description",
            *sorted(SCHEDULE_FIELDS),
            "next_scheduled_for",
            "next_fire_at",
            "last_fired_for",
        ]
        read_only_fields = fields


class WorkflowSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    team = serializers.CharField(source="team.name")
    name = serializers.CharField()
    description = serializers.CharField()
    overlap_policy = serializers.ChoiceField(choices=OverlapPolicy.choices)
    steps = StepSerializer(many=True)
    schedules = WorkflowScheduleSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, workflow: Workflow) -> dict[str, Any]:
        data = super().to_representation(workflow)
        data["steps"] = workflow_definition(workflow)["steps"]
        return data


class StepRunSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    state = serializers.CharField(
        help_text="pending, running, succeeded, failed, cancelled, skipped"
    )
    depends_on = serializers.ListField(child=serializers.CharField())
    condition = serializers.CharField()
    run = serializers.UUIDField(allow_null=True, help_text="Its latest run.")
    run_state = serializers.CharField(allow_null=True)


class WorkflowRunSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    workflow = serializers.IntegerField(source="workflow_id")
    workflow_name = serializers.CharField(source="workflow.name")
    team = serializers.CharField(source="workflow.team.name")
    trigger = serializers.ChoiceField(choices=RunTrigger.choices)
    state = serializers.ChoiceField(choices=WorkflowRunState.choices)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    steps = serializers.SerializerMethodField()

    @extend_schema_field(StepRunSerializer(many=True))
    def get_steps(self, workflow_run: WorkflowRun) -> list[dict[str, Any]]:
        graph = {node["name"]: node for node in workflow_run.graph}
        return [
            {
                "name": step.name,
                "state": step.state,
                "depends_on": graph[step.name]["depends_on"],
                "condition": graph[step.name]["condition"],
                "run": step.run_id,
                "run_state": step.run.state if step.run else None,
            }
            for step in workflow_run.steps.select_related("run").order_by("id")
        ]


class WorkflowFilterSerializer(LimitPageQuery):
    team = QueryText(required=False, max_length=100, help_text="A team's name.")
    name = QueryText(required=False, max_length=200, help_text="The exact name.")


class WorkflowRunFilterSerializer(LimitPageQuery):
    workflow = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    state = serializers.ChoiceField(choices=WorkflowRunState.choices, required=False)


def visible_workflow(request: Request, workflow_id: int, *, role: Role | None = None) -> Workflow:
    workflow = get_object_or_404(workflows_visible(user=request.user), id=workflow_id)
    if role is not None:
        role_require(request, team_id=workflow.team_id, role=role)
    return workflow


def visible_workflow_run(request: Request, run_id: str, *, role: Role | None = None) -> WorkflowRun:
    workflow_run = get_object_or_404(workflow_runs_visible(user=request.user), id=run_id)
    if role is not None:
        role_require(request, team_id=workflow_run.workflow.team_id, role=role)
    return workflow_run


class WorkflowListView(APIView):
    @extend_schema(
        operation_id="workflows_list",
        parameters=[WorkflowFilterSerializer],
        responses={
            200: limit_page_of("Workflow", WorkflowSerializer(many=True)),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        filters = WorkflowFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        workflows = workflows_visible(user=request.user).order_by("name", "id")
        for field in ("team", "name"):
            if field in filters.validated_data:
                lookup = "team__name" if field == "team" else "name"
                workflows = workflows.filter(**{lookup: filters.validated_data[field]})
        page = LimitPage()
        found = page.paginate_queryset(workflows, request, self) or []
        return page.get_paginated_response(WorkflowSerializer(found, many=True).data)

    @extend_schema(
        operation_id="workflows_create",
        request=WorkflowCreateSerializer,
        responses={201: WorkflowSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = WorkflowCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        team = team_administered(request, data.pop("team"))
        data["steps"] = workflow_steps_resolved(team, data["steps"])
        workflow = workflow_create(team=team, actor=request.user, **data)
        return Response(WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)


class WorkflowDetailView(APIView):
    @extend_schema(
        operation_id="workflows_retrieve", responses={200: WorkflowSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request, workflow_id: int) -> Response:
        return Response(WorkflowSerializer(visible_workflow(request, workflow_id)).data)

    @extend_schema(
        operation_id="workflows_update",
        request=WorkflowDefinitionSerializer(partial=True),
        responses={200: WorkflowSerializer, **ERROR_RESPONSES},
        description="Change the name, the description or the steps (`steps` replaces them all); "
        "runs under way keep the steps they started with.",
    )
    def patch(self, request: Request, workflow_id: int) -> Response:
        workflow = visible_workflow(request, workflow_id, role=Role.ADMIN)
        body = WorkflowDefinitionSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        if "steps" in data:
            data["steps"] = workflow_steps_resolved(workflow.team, data["steps"])
        workflow = workflow_update(workflow=workflow, data=data, actor=request.user)
        return Response(WorkflowSerializer(workflow).data)

    @extend_schema(operation_id="workflows_destroy", responses={204: None, **ERROR_RESPONSES})
    def delete(self, request: Request, workflow_id: int) -> Response:
        workflow = visible_workflow(request, workflow_id, role=Role.ADMIN)
        workflow_delete(workflow=workflow, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkflowTriggerView(APIView):
    @extend_schema(
        operation_id="workflows_trigger",
        request=None,
        responses={201: WorkflowRunSerializer, **ERROR_RESPONSES},
        description="Run the workflow now: the steps that depend on none are queued at once.",
    )
    def post(self, request: Request, workflow_id: int) -> Response:
        workflow = visible_workflow(request, workflow_id, role=Role.OPERATOR)
        workflow_run = workflow_trigger(
            workflow=workflow, trigger=RunTrigger.API, actor=request.user
        )
        return Response(WorkflowRunSerializer(workflow_run).data, status=status.HTTP_201_CREATED)


class WorkflowRunListView(APIView):
    @extend_schema(
        operation_id="workflow_runs_list",
        parameters=[WorkflowRunFilterSerializer],
        responses={
            200: limit_page_of("WorkflowRun", WorkflowRunSerializer(many=True)),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        filters = WorkflowRunFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = workflow_runs_visible(user=request.user).order_by("-created_at", "-id")
        values = filters.without_paging()
        if "workflow" in values:
            runs = runs.filter(workflow_id=values["workflow"])
        if "state" in values:
            runs = runs.filter(state=values["state"])
        page = LimitPage()
        found = page.paginate_queryset(runs, request, self) or []
        return page.get_paginated_response(WorkflowRunSerializer(found, many=True).data)


class WorkflowRunDetailView(APIView):
    @extend_schema(
        operation_id="workflow_runs_retrieve",
        responses={200: WorkflowRunSerializer, **ERROR_RESPONSES},
    )
    def get(self, request: Request, workflow_run_id: str) -> Response:
        workflow_run = visible_workflow_run(request, workflow_run_id)
        return Response(WorkflowRunSerializer(workflow_run).data)


class WorkflowRunCancelView(APIView):
    @extend_schema(
        operation_id="workflow_runs_cancel",
        request=None,
        responses={200: WorkflowRunSerializer, **ERROR_RESPONSES},
        description="Cancel every unfinished step; 409 when the workflow run has ended.",
    )
    def post(self, request: Request, workflow_run_id: str) -> Response:
        workflow_run = visible_workflow_run(request, workflow_run_id, role=Role.OPERATOR)
        workflow_run = workflow_run_cancel(workflow_run=workflow_run, actor=request.user)
        return Response(WorkflowRunSerializer(workflow_run).data)


class WorkflowRunRetryView(APIView):
    @extend_schema(
        operation_id="workflow_runs_retry",
        request=None,
        responses={200: WorkflowRunSerializer, **ERROR_RESPONSES},
        description="Run again its failed, cancelled and skipped steps, in the same workflow "
        "run; 409 unless it failed or was cancelled.",
    )
    def post(self, request: Request, workflow_run_id: str) -> Response:
        workflow_run = visible_workflow_run(request, workflow_run_id, role=Role.OPERATOR)
        workflow_run = workflow_run_retry(workflow_run=workflow_run, actor=request.user)
        return Response(WorkflowRunSerializer(workflow_run).data)
