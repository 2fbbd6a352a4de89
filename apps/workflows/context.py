"""What a task of a workflow's step reads of the steps it depends on."""

from typing import Any

from apps.tasktypes.context import current_run_id
from apps.workflows.models import WorkflowStepRun


def upstream_results() -> dict[str, Any]:
    """The results of the steps the executing step depends on, by step name (None for one that
    did not succeed), when the step passes results (`pass_results`); {} otherwise."""
    run_id = current_run_id()
    if run_id is None:
        raise RuntimeError("upstream_results is for the task of a run.")
    inputs = WorkflowStepRun.objects.filter(run_id=run_id).values_list("inputs", flat=True).first()
    return dict(inputs or {})
