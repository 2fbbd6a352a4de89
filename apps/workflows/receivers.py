"""A run of a workflow's step ended: move its workflow on (connected in WorkflowsConfig.ready)."""

from typing import Any

from django.dispatch import receiver

from apps.runs.signals import run_of_workflow_ended
from apps.workflows.services import workflow_run_advance


@receiver(run_of_workflow_ended)
def workflow_moved_on(sender: Any, *, workflow_run_id: Any, run_id: Any, **kwargs: Any) -> None:
    workflow_run_advance(workflow_run_id=workflow_run_id)
