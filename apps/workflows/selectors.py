from collections import defaultdict
from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber

from apps.accounts.selectors import visible_to
from apps.workflows.models import Workflow, WorkflowRun


def workflows_visible(*, user: User | AnonymousUser) -> QuerySet[Workflow]:
    """The workflows of the user's teams (every one for a superuser)."""
    workflows = Workflow.objects.select_related("team")
    return visible_to(workflows, user=user, memberships="team__memberships")


def workflow_runs_visible(*, user: User | AnonymousUser) -> QuerySet[WorkflowRun]:
    """The workflow runs of the user's teams, newest first."""
    runs = WorkflowRun.objects.select_related("workflow__team")
    return visible_to(runs, user=user, memberships="workflow__team__memberships")


def workflow_runs_latest(
    *, workflow_ids: Iterable[int], count: int
) -> dict[int, list[WorkflowRun]]:
    """The latest `count` runs of each workflow, newest first, in one query."""
    ranked = WorkflowRun.objects.filter(workflow_id__in=list(workflow_ids)).annotate(
        rank=Window(RowNumber(), partition_by=F("workflow_id"), order_by=F("created_at").desc())
    )
    latest: dict[int, list[WorkflowRun]] = defaultdict(list)
    for run in ranked.filter(rank__lte=count).order_by("workflow_id", "rank"):
        latest[run.workflow_id].append(run)
    return latest
