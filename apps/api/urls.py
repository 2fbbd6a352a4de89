from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.api.audit import AuditListView
from apps.api.errors import api_not_found
from apps.api.jobs import (
    JobDetailView,
    JobListView,
    JobOverviewView,
    JobPauseView,
    JobResumeView,
    JobTriggerView,
)
from apps.api.logs import LogSearchView
from apps.api.manifests import ApplyView, ManifestSchemaView
from apps.api.runs import (
    RunCancelView,
    RunCountsView,
    RunDetailView,
    RunListView,
    RunLogView,
    RunRetryView,
    RunsPerMinuteView,
)
from apps.api.schedules import (
    ScheduleDetailView,
    ScheduleExplainView,
    ScheduleListView,
    SchedulePauseView,
    SchedulePreviewView,
    ScheduleResumeView,
    TimingPreviewView,
)
from apps.api.task_types import TaskTypeListView
from apps.api.teams import MemberDetailView, MemberListView, TeamDetailView, TeamListView
from apps.api.tokens import TokenDetailView, TokenListView
from apps.api.webhooks import (
    DeliveryListView,
    DeliveryRedeliverView,
    WebhookDetailView,
    WebhookListView,
    WebhookPingView,
)
from apps.api.workers import QueueListView, WorkerListView
from apps.api.workflows import (
    WorkflowDetailView,
    WorkflowListView,
    WorkflowRunCancelView,
    WorkflowRunDetailView,
    WorkflowRunListView,
    WorkflowRunRetryView,
    WorkflowTriggerView,
)

SCHEDULE = "jobs/<int:job_id>/schedules/<int:schedule_id>/"

v1 = [
    path("task-types/", TaskTypeListView.as_view(), name="task-types"),
    path("apply/", ApplyView.as_view(), name="apply"),
    path("jobs/", JobListView.as_view(), name="jobs"),
    path("jobs/overview/", JobOverviewView.as_view(), name="jobs-overview"),
    path("jobs/<int:job_id>/", JobDetailView.as_view(), name="job"),
    path("jobs/<int:job_id>/trigger/", JobTriggerView.as_view(), name="job-trigger"),
    path("jobs/<int:job_id>/pause/", JobPauseView.as_view(), name="job-pause"),
    path("jobs/<int:job_id>/resume/", JobResumeView.as_view(), name="job-resume"),
    path("jobs/<int:job_id>/schedules/", ScheduleListView.as_view(), name="schedules"),
    path("schedules/preview/", TimingPreviewView.as_view(), name="schedule-timing-preview"),
    path(SCHEDULE, ScheduleDetailView.as_view(), name="schedule"),
    path(f"{SCHEDULE}pause/", SchedulePauseView.as_view(), name="schedule-pause"),
    path(f"{SCHEDULE}resume/", ScheduleResumeView.as_view(), name="schedule-resume"),
    path(f"{SCHEDULE}preview/", SchedulePreviewView.as_view(), name="schedule-preview"),
    path(f"{SCHEDULE}explain/", ScheduleExplainView.as_view(), name="schedule-explain"),
    path("workflows/", WorkflowListView.as_view(), name="workflows"),
    path("workflows/<int:workflow_id>/", WorkflowDetailView.as_view(), name="workflow"),
    path(
        "workflows/<int:workflow_id>/trigger/",
        WorkflowTriggerView.as_view(),
        name="workflow-trigger",
    ),
    path("workflow-runs/", WorkflowRunListView.as_view(), name="workflow-runs"),
    path(
        "workflow-runs/<uuid:workflow_run_id>/",
        WorkflowRunDetailView.as_view(),
        name="workflow-run",
    ),
    path(
        "workflow-runs/<uuid:workflow_run_id>/cancel/",
        WorkflowRunCancelView.as_view(),
        name="workflow-run-cancel",
    ),
    path(
        "workflow-runs/<uuid:workflow_run_id>/retry/",
        WorkflowRunRetryView.as_view(),
        name="workflow-run-retry",
    ),
    path("webhooks/", WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:webhook_id>/", WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<int:webhook_id>/ping/", WebhookPingView.as_view(), name="webhook-ping"),
    path(
        "webhooks/<int:webhook_id>/deliveries/",
        DeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/<int:webhook_id>/deliveries/<uuid:delivery_id>/redeliver/",
        DeliveryRedeliverView.as_view(),
        name="webhook-delivery-redeliver",
    ),
    path("runs/", RunListView.as_view(), name="runs"),
    path("runs/counts/", RunCountsView.as_view(), name="run-counts"),
    path("runs/per-minute/", RunsPerMinuteView.as_view(), name="runs-per-minute"),
    path("runs/<uuid:run_id>/", RunDetailView.as_view(), name="run"),
    path("runs/<uuid:run_id>/cancel/", RunCancelView.as_view(), name="run-cancel"),
    path("runs/<uuid:run_id>/retry/", RunRetryView.as_view(), name="run-retry"),
    path("runs/<uuid:run_id>/log/", RunLogView.as_view(), name="run-log"),
    path("logs/", LogSearchView.as_view(), name="logs"),
    path("workers/", WorkerListView.as_view(), name="workers"),
    path("queues/", QueueListView.as_view(), name="queues"),
    path("audit/", AuditListView.as_view(), name="audit"),
    path("teams/", TeamListView.as_view(), name="teams"),
    path("teams/<int:team_id>/", TeamDetailView.as_view(), name="team"),
    path("teams/<int:team_id>/members/", MemberListView.as_view(), name="team-members"),
    path(
        "teams/<int:team_id>/members/<str:username>/",
        MemberDetailView.as_view(),
        name="team-member",
    ),
    path("tokens/", TokenListView.as_view(), name="tokens"),
    path("tokens/<int:token_id>/", TokenDetailView.as_view(), name="token"),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="v1")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("schema/manifest/", ManifestSchemaView.as_view(), name="manifest-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Last: an unknown address ending in "/" (one without is first redirected to it).
    re_path(r"^[\s\S]*/$", api_not_found),
]
