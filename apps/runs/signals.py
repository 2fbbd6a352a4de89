"""What the run lifecycle tells the apps above it, without importing them."""

from django.dispatch import Signal

# A run of a workflow's step ended (succeeded, failed, timed out, was cancelled or lost), sent
# once that is committed: `workflow_run_id`, `run_id`. A receiver that fails is logged, not
# raised, and the scheduler's sweep moves the workflow on later (apps.workflows).
run_of_workflow_ended = Signal()
