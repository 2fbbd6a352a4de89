"""The live pages: server-rendered, their data from the REST API and the WebSockets (static/live/).
Signed-in users only (the admin's login); each sees their teams' jobs and runs."""

from typing import Any

from axes.helpers import get_lockout_message
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from apps.accounts.models import Role
from apps.accounts.selectors import role_allows, user_role
from apps.jobs.health import JobHealth
from apps.jobs.selectors import jobs_visible
from apps.live.graph import NODE_HEIGHT, NODE_WIDTH, graph_layout
from apps.runs.selectors import runs_visible
from apps.runs.states import RunState
from apps.workflows.selectors import workflow_runs_latest, workflow_runs_visible, workflows_visible

# The workflows page shows this many of each workflow's latest runs.
LATEST_WORKFLOW_RUNS = 20


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    jobs = list(jobs_visible(user=request.user).prefetch_related(None).order_by("name"))
    job = next((job for job in jobs if str(job.id) == request.GET.get("job")), None)
    state = request.GET.get("state", "")
    can_trigger = job is not None and role_allows(
        user_role(user=request.user, team_id=job.team_id), Role.OPERATOR
    )
    page: dict[str, Any] = {
        "jobs": {job.id: job.name for job in jobs},
        "run_page": reverse("live:dashboard") + "runs/",
    }
    context = {
        "jobs": jobs,
        "job": job,
        "state": state if state in RunState.values else "",
        "states": RunState.choices,
        "can_trigger": can_trigger,
        "page": page,
    }
    return render(request, "live/dashboard.html", context)


@login_required
def jobs_page(request: HttpRequest) -> HttpResponse:
    """Each job with its health, next fire, last success and its latest runs as cells: the rows
    come from /api/v1/jobs/overview/ (the page's query, as its filters), then the run events."""
    dashboard_url = reverse("live:dashboard")
    page = {"run_page": f"{dashboard_url}runs/", "job_runs": f"{dashboard_url}?job="}
    return render(
        request,
        "live/jobs.html",
        {"page": page, "health": JobHealth.choices, "states": RunState.choices},
    )


@login_required
def run_page(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_object_or_404(runs_visible(user=request.user), id=run_id)
    role = user_role(user=request.user, team_id=run.job.team_id)
    context = {
        "run": run,
        "can_operate": role_allows(role, Role.OPERATOR),
        "page": {"run": str(run.id)},
    }
    return render(request, "live/run.html", context)


@login_required
def workflows_page(request: HttpRequest) -> HttpResponse:
    """Each workflow with its schedules and its latest runs as cells, each a link to its graph."""
    workflows = list(
        workflows_visible(user=request.user).prefetch_related("schedules").order_by("name", "id")
    )
    latest = workflow_runs_latest(
        workflow_ids=[workflow.id for workflow in workflows], count=LATEST_WORKFLOW_RUNS
    )
    rows = [(workflow, latest.get(workflow.id, [])) for workflow in workflows]
    return render(request, "live/workflows.html", {"rows": rows})


@login_required
def workflow_run_page(request: HttpRequest, workflow_run_id: str) -> HttpResponse:
    workflow_run = get_object_or_404(
        workflow_runs_visible(user=request.user).select_related("workflow"), id=workflow_run_id
    )
    steps = {
        name: (state, str(run_id) if run_id else None)
        for name, state, run_id in workflow_run.steps.values_list("name", "state", "run_id")
    }
    context = {
        "workflow_run": workflow_run,
        "layout": graph_layout(workflow_run.graph, steps),
        "width": NODE_WIDTH,
        "height": NODE_HEIGHT,
        "page": {
            "workflow_run": str(workflow_run.id),
            "run_page": reverse("live:dashboard") + "runs/",
        },
    }
    return render(request, "live/workflow_run.html", context)


def login_locked_out(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' answer to a sign-in it refuses (AXES_LOCKOUT_CALLABLE), at /live/login/ and
    /admin/login/: the sign-in form again with the reason, as 429 with Retry-After.

    axes passes its arguments differently in its sync and async middleware; neither is needed."""
    context = {
        "form": AuthenticationForm(request),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "locked_out": get_lockout_message(),
    }
    response = render(request, "live/login.html", context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
