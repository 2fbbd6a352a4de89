from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

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
