"""Workflows: defining them, and moving their runs on.

A workflow run records, in PostgreSQL, one row per step. It moves on in one transaction that holds
its row's lock (`_advance`): the steps whose runs ended are noted, then every pending step whose
dependencies have all ended either gets its run (its condition met) or is skipped, until nothing
changes. Who moves it on is every scheduler replica's WorkflowAdvancer thread
(workers.scheduler), woken by a NOTIFY when a step's run ends (apps.core.notify.workflows_wake)
and every few seconds besides: the workers' hot path only says that something ended, and a burst
of ends is taken in a few moves rather than one each. Two advancers, or two moves, take the lock
in turn, and the second sees what the first did: a step is started once.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import Team
from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record, field_changes
from apps.core.db import models_insert, models_update
from apps.core.exceptions import ApplicationError, InvalidTransition, ValidationFailed
from apps.core.notify import scheduler_wake
from apps.core.validation import editable_fields_check, model_validate
from apps.events.models import EventType, OutboxEvent
from apps.events.outbox import event_new, events_record
from apps.jobs.models import Job, OverlapPolicy
from apps.runs.models import Run, RunTrigger
from apps.runs.services.build import run_build
from apps.runs.services.moves import runs_cancel
from apps.runs.services.publish import run_queued_event, runs_publish_on_commit
from apps.runs.states import TERMINAL_STATES, RunState
from apps.schedules.services import EDITABLE_FIELDS as SCHEDULE_FIELDS
from apps.schedules.services import (
    schedule_definition,
    schedule_next_fire_set,
    schedules_matched,
)
from apps.schedules.validation import schedule_validate
from apps.tasktypes.registry import task_args_validate
from apps.workflows.metrics import workflow_run_finished_record, workflow_run_started_record
from apps.workflows.models import (
    STEP_NAME,
    StepCondition,
    StepState,
    Workflow,
    WorkflowRun,
    WorkflowRunState,
    WorkflowSchedule,
    WorkflowStep,
    WorkflowStepRun,
)

MAX_STEPS = 200
MAX_SCHEDULES = 100
PURGE_BATCH = 1000
# The most a step reads of its dependencies' results (pass_results), as JSON.
MAX_INPUTS_BYTES = 64 * 1024
EDITABLE_FIELDS = frozenset({"name", "description", "overlap_policy", "steps", "schedules"})
STEP_FIELDS = ("name", "job", "args", "depends_on", "condition", "pass_results")
ENDED_STEPS = frozenset(
    {StepState.SUCCEEDED, StepState.FAILED, StepState.CANCELLED, StepState.SKIPPED}
)
STEP_OF_RUN = {
    RunState.SUCCEEDED: StepState.SUCCEEDED,
    RunState.FAILED: StepState.FAILED,
    RunState.TIMED_OUT: StepState.FAILED,
    RunState.LOST: StepState.FAILED,
    RunState.CANCELLED: StepState.CANCELLED,
}
NAME_TAKEN = "Your team has a workflow of this name already."


# Defining


def workflow_steps_validate(*, team: Team, steps: list[dict[str, Any]]) -> None:
    """Refuse steps that do not make a workflow of `team`, naming the step's field at fault
    (`steps[2].depends_on`): a bad or repeated name, another team's job, arguments its task type
    refuses, a dependency on no step or on itself, a condition with nothing to wait for, a cycle,
    more than MAX_STEPS steps."""
    if not steps:
        raise ValidationFailed("A workflow has at least one step.", field="steps")
    if len(steps) > MAX_STEPS:
        raise ValidationFailed(f"A workflow has at most {MAX_STEPS} steps.", field="steps")
    names: dict[str, int] = {}
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        name = step["name"]
        try:
            STEP_NAME(name)
        except Exception as error:  # django's ValidationError: its message is the rule
            raise ValidationFailed(str(STEP_NAME.message), field=f"{where}.name") from error
        if name in names:
            raise ValidationFailed(
                f"steps[{names[name]}] has this name already.", field=f"{where}.name"
            )
        names[name] = index
        job: Job = step["job"]
        if job.team_id != team.id:
            raise ValidationFailed(f"is not a job of team {team.name}.", field=f"{where}.job")
        if step.get("args") is not None:
            try:
                task_args_validate(task_type_name=job.task_type, args=step["args"])
            except ApplicationError as error:
                raise ValidationFailed(error.message, field=f"{where}.args") from error
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        depends_on = step.get("depends_on") or []
        for upstream in depends_on:
            if upstream not in names:
                raise ValidationFailed(
                    f"No step is named {upstream!r}.", field=f"{where}.depends_on"
                )
            if upstream == step["name"]:
                raise ValidationFailed(
                    "A step cannot depend on itself.", field=f"{where}.depends_on"
                )
        if len(set(depends_on)) != len(depends_on):
            raise ValidationFailed("names a step twice.", field=f"{where}.depends_on")
        condition = step.get("condition", StepCondition.ON_SUCCESS)
        if condition != StepCondition.ON_SUCCESS and not depends_on:
            raise ValidationFailed(
                f"{condition} needs a step to depend on.", field=f"{where}.condition"
            )
    cycle = _cycle({step["name"]: list(step.get("depends_on") or []) for step in steps})
    if cycle:
        raise ValidationFailed(
            f"The steps depend on each other in a cycle: {' → '.join(cycle)}.", field="steps"
        )


def workflow_steps_resolved(team: Team, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps that name their jobs (by name, in `team`) with the jobs themselves; an unknown name
    is refused naming the step's `job`."""
    names = {step["job"] for step in steps}
    jobs = {job.name: job for job in team.jobs.filter(name__in=names)}
    for index, step in enumerate(steps):
        if step["job"] not in jobs:
            raise ValidationFailed(
                f"No job of team {team.name} is named {step['job']!r}.",
                field=f"steps[{index}].job",
            )
    return [{**step, "job": jobs[step["job"]]} for step in steps]


def workflow_steps_defined(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps as workflow_definition gives them (their jobs by name), with the defaults of what
    they leave out."""
    return [
        {
            "name": step["name"],
            "job": step["job"] if isinstance(step["job"], str) else step["job"].name,
            "args": step.get("args"),
            "depends_on": list(step.get("depends_on") or []),
            "condition": step.get("condition", StepCondition.ON_SUCCESS),
            "pass_results": step.get("pass_results", False),
        }
        for step in steps
    ]


def _cycle(depends_on: dict[str, list[str]]) -> list[str]:
    """A cycle of the graph, as the names along it (the first repeated last), or []."""
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str]:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return []
        path.append(name)
        for upstream in depends_on[name]:
            found = visit(upstream)
            if found:
                return found
        path.pop()
        done.add(name)
        return []

    for name in depends_on:
        found = visit(name)
        if found:
            return found
    return []


def _name_check(workflow: Workflow) -> None:
    others = Workflow.objects.filter(team_id=workflow.team_id, name=workflow.name)
    if others.exclude(pk=workflow.pk).exists():
        raise ValidationFailed(NAME_TAKEN, field="name")


def _steps_save(workflow: Workflow, steps: list[dict[str, Any]]) -> None:
    workflow.steps.all().delete()
    WorkflowStep.objects.bulk_create(
        WorkflowStep(
            workflow=workflow,
            name=step["name"],
            job=step["job"],
            args=step.get("args"),
            depends_on=list(step.get("depends_on") or []),
            condition=step.get("condition", StepCondition.ON_SUCCESS),
            pass_results=step.get("pass_results", False),
        )
        for step in steps
    )


def workflow_definition(workflow: Workflow) -> dict[str, Any]:
    """What the workflow is defined by, its steps' jobs by name."""
    steps = workflow.steps.select_related("job").order_by("id") if workflow.pk else []
    schedules = workflow.schedules.all() if workflow.pk else []
    return {
        "name": workflow.name,
        "description": workflow.description,
        "overlap_policy": workflow.overlap_policy,
        "steps": workflow_steps_defined(
            [{field: getattr(step, field) for field in STEP_FIELDS} for step in steps]
        ),
        "schedules": workflow_schedules_defined(map(schedule_definition, schedules)),
    }


def workflow_schedules_defined(schedules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Schedules as workflow_definition gives them: each by the fields a schedule is defined by,
    those it leaves out at their defaults, in an order of their own (not the order given)."""
    return sorted(map(_schedule_fields, schedules), key=_schedule_order)


def _schedule_fields(schedule: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: schedule[name] if name in schedule else SCHEDULE_DEFAULTS[name]
        for name in sorted(SCHEDULE_FIELDS)
    }


def _schedule_order(definition: Mapping[str, Any]) -> str:
    return json.dumps(
        definition,
        sort_keys=True,
        default=lambda value: value.timestamp() if isinstance(value, datetime) else str(value),
    )


SCHEDULE_DEFAULTS = {
    field.name: field.get_default()
    for field in WorkflowSchedule._meta.concrete_fields
    if field.name in SCHEDULE_FIELDS
}


def _schedules_save(workflow: Workflow, schedules: Sequence[Mapping[str, Any]]) -> None:
    """Give the workflow exactly these schedules, refused naming the field at fault
    (`schedules[1].cron_expression`). Matched to its own as a job's declared schedules are
    (apps.schedules.services.schedules_matched), so an edited one keeps its row and history; a
    changed or new one fires next after now, never again at a time it fired."""
    if len(schedules) > MAX_SCHEDULES:
        raise ValidationFailed(
            f"A workflow has at most {MAX_SCHEDULES} schedules.", field="schedules"
        )
    now = timezone.now()
    wanted = [_schedule_fields(schedule) for schedule in schedules]
    pairs, unmatched = schedules_matched(list(workflow.schedules.order_by("id")), wanted)
    WorkflowSchedule.objects.filter(id__in=[schedule.id for schedule in unmatched]).delete()
    for index, found in pairs:
        if found is not None and schedule_definition(found) == wanted[index]:
            continue
        schedule = found or WorkflowSchedule(workflow=workflow)
        for name, value in wanted[index].items():
            setattr(schedule, name, value)
        try:
            model_validate(schedule)
            schedule_validate(schedule, now=now)
        except ValidationFailed as refusal:
            where = f"schedules[{index}]"
            field = f"{where}.{refusal.field}" if refusal.field else where
            raise ValidationFailed(refusal.message, field=field) from refusal
        last = schedule.last_fired_for
        schedule_next_fire_set(schedule, after=max(now, last) if last else now)
        schedule.save()
    scheduler_wake()


@transaction.atomic
def workflow_create(
    *,
    team: Team,
    name: str,
    steps: list[dict[str, Any]],
    description: str = "",
    overlap_policy: str = OverlapPolicy.ALLOW,
    schedules: Sequence[Mapping[str, Any]] | None = None,
    actor: Actor = None,
) -> Workflow:
    workflow = Workflow(
        team=team, name=name, description=description, overlap_policy=overlap_policy
    )
    _name_check(workflow)
    model_validate(workflow)
    workflow_steps_validate(team=team, steps=steps)
    workflow.save()
    _steps_save(workflow, steps)
    if schedules:
        _schedules_save(workflow, schedules)
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        target=workflow,
        team_id=team.id,
        changes={
            field: {"old": None, "new": value}
            for field, value in workflow_definition(workflow).items()
        },
    )
    return workflow


@transaction.atomic
def workflow_update(*, workflow: Workflow, data: dict[str, Any], actor: Actor = None) -> Workflow:
    """Change its name, description, overlap policy, steps or schedules (all of them: `steps`
    replaces the graph, `schedules` the schedules). Runs under way keep the graph they started
    with."""
    editable_fields_check(data, EDITABLE_FIELDS)
    Workflow.objects.select_for_update().get(id=workflow.id)
    before = workflow_definition(workflow)
    for field in ("name", "description", "overlap_policy"):
        if field in data:
            setattr(workflow, field, data[field])
    _name_check(workflow)
    model_validate(workflow)
    if "steps" in data:
        workflow_steps_validate(team=workflow.team, steps=data["steps"])
    workflow.save()
    if "steps" in data:
        _steps_save(workflow, data["steps"])
    if "schedules" in data:
        _schedules_save(workflow, data["schedules"])
    changes = field_changes(before, workflow_definition(workflow), fields=data)
    if changes:
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=workflow,
            team_id=workflow.team_id,
            changes=changes,
        )
    return workflow


@transaction.atomic
def workflow_delete(*, workflow: Workflow, actor: Actor = None) -> None:
    """Delete the workflow with its runs' records (the runs of its steps stay, as their jobs')."""
    audit_record(actor=actor, action=AuditAction.DELETE, target=workflow, team_id=workflow.team_id)
    workflow.delete()


# Running


def workflow_trigger(
    *,
    workflow: Workflow,
    trigger: RunTrigger = RunTrigger.MANUAL,
    actor: Actor = None,
    schedule: WorkflowSchedule | None = None,
    scheduled_for: datetime | None = None,
) -> WorkflowRun:
    """Start a run of the workflow: its steps that depend on none are queued at once. One
    `schedule` fires for `scheduled_for` is started once: a second start of it is refused (an
    IntegrityError, and nothing is written)."""
    steps = list(workflow.steps.order_by("id"))
    graph = [
        {
            "name": step.name,
            "job_id": step.job_id,
            "args": step.args,
            "depends_on": step.depends_on,
            "condition": step.condition,
            "pass_results": step.pass_results,
        }
        for step in steps
    ]
    with transaction.atomic():
        workflow_run = WorkflowRun.objects.create(
            workflow=workflow,
            trigger=trigger,
            graph=graph,
            schedule=schedule,
            scheduled_for=scheduled_for,
        )
        audit_record(
            actor=actor,
            action=AuditAction.TRIGGER,
            target=workflow_run,
            team_id=workflow.team_id,
        )
        # Its first move, before its steps' rows are written: they are written as it leaves them.
        _advance(workflow_run, steps={step.name: _Step.new(step.name) for step in steps})
        transaction.on_commit(partial(workflow_run_started_record, trigger))
    return workflow_run


def workflow_run_advance(*, workflow_run_id: Any) -> None:
    """Move the workflow run on: note its steps' ended runs, start or skip the steps that are
    ready, and end it once every step has ended."""
    with transaction.atomic():
        locked = WorkflowRun.objects.select_for_update(of=("self",)).select_related("workflow")
        workflow_run = locked.filter(id=workflow_run_id).first()
        if workflow_run is not None:
            _advance(workflow_run)


def _advance(
    workflow_run: WorkflowRun,
    trigger: RunTrigger | None = None,
    steps: dict[str, "_Step"] | None = None,
) -> None:
    """Under the workflow run's lock; or in the transaction that created it, with its new
    `steps`, whose rows it writes, and whose start is its event."""
    now = timezone.now()
    starting = steps is not None and all(step.id is None for step in steps.values())
    if steps is None:
        steps = _steps_read(workflow_run)
    changed = _ended_noted(steps)
    made: list[Run] = []
    if workflow_run.state == WorkflowRunState.RUNNING:
        graph = {node["name"]: node for node in workflow_run.graph}
        jobs = _Jobs(node["job_id"] for node in graph.values())
        moved = True
        while moved:
            moved = False
            for name, node in graph.items():
                step = steps[name]
                upstream = [steps[other] for other in node["depends_on"]]
                if step.state != StepState.PENDING or any(
                    other.state not in ENDED_STEPS for other in upstream
                ):
                    continue
                if _condition_met(node["condition"], upstream):
                    run = _step_run(workflow_run, step, node, upstream, jobs, trigger, now)
                    step.run_id = run.id if run is not None else None
                    queued = run is not None and run.state == RunState.QUEUED
                    step.state = StepState.RUNNING if queued else StepState.FAILED
                    if run is not None:
                        made.append(run)
                else:
                    step.state = StepState.SKIPPED
                changed.add(name)
                moved = True
        if all(step.state in ENDED_STEPS for step in steps.values()):
            workflow_run.state = _outcome(graph, steps)
            workflow_run.finished_at = now
    models_insert(made)  # before the steps that name them
    new_runs = [run for run in made if run.state == RunState.QUEUED]
    if starting:
        models_insert(
            [
                WorkflowStepRun(
                    workflow_run=workflow_run,
                    name=step.name,
                    state=step.state,
                    run_id=step.run_id,
                    inputs=step.inputs,
                )
                for step in steps.values()
            ]
        )
    else:
        _step_runs_save(steps[name] for name in changed)
    if workflow_run.finished_at == now:
        workflow_run.save(update_fields=["state", "finished_at", "updated_at"])
        _finished_on_commit(workflow_run)
    events = [run_queued_event(run, time=now) for run in new_runs]
    if starting:
        kind, trigger_name = EventType.WORKFLOW_RUN_STARTED, workflow_run.trigger
        states = _states(steps.values())
        events.insert(0, _event(workflow_run, states, kind=kind, time=now, trigger=trigger_name))
    if workflow_run.finished_at == now:
        events.append(_event(workflow_run, _states(steps.values()), time=now))
    elif changed and not starting:
        kind = EventType.WORKFLOW_RUN_STEPS_CHANGED
        changed_steps = _states(steps[name] for name in changed)
        events.append(_event(workflow_run, changed_steps, kind=kind, time=now))
    events_record(events)
    runs_publish_on_commit(new_runs)


def _finished_on_commit(workflow_run: WorkflowRun) -> None:
    took = (workflow_run.finished_at or workflow_run.created_at) - workflow_run.created_at
    transaction.on_commit(partial(workflow_run_finished_record, workflow_run.state, took))


def _states(steps: Iterable["_Step"]) -> dict[str, str]:
    return {step.name: step.state for step in steps}


FINAL_EVENTS = {
    WorkflowRunState.SUCCEEDED: EventType.WORKFLOW_RUN_SUCCEEDED,
    WorkflowRunState.FAILED: EventType.WORKFLOW_RUN_FAILED,
    WorkflowRunState.CANCELLED: EventType.WORKFLOW_RUN_CANCELLED,
}


def _event(
    workflow_run: WorkflowRun,
    steps: Mapping[str, str],
    *,
    time: datetime,
    kind: EventType | None = None,
    **details: Any,
) -> OutboxEvent:
    """The event of a change of the workflow run (by default, its end, as its state says): its
    state and `steps` (name: state), keyed by its workflow (apps.events.envelope)."""
    return event_new(
        type=kind or FINAL_EVENTS[WorkflowRunState(workflow_run.state)],
        subject=f"workflow_runs/{workflow_run.id}",
        job_id=workflow_run.workflow_id,
        time=time,
        data={
            "workflow_run_id": str(workflow_run.id),
            "name": workflow_run.workflow.name,
            "state": workflow_run.state,
            "steps": steps,
            **details,
        },
    )


@dataclass(slots=True)
class _Step:
    """A step of a workflow run as a move reads and changes it: its row's values and its run's
    state, read as plain values (a wide workflow's move reads every step, and model instances of
    them and their runs were most of its time)."""

    id: int | None  # None: its row is not written yet
    name: str
    state: str
    inputs: Any
    run_id: UUID | None
    run_state: str | None

    @classmethod
    def new(cls, name: str) -> "_Step":
        """A step of a workflow run being started: no row yet."""
        return cls(None, name, StepState.PENDING, None, None, None)


def _steps_read(workflow_run: WorkflowRun) -> dict[str, _Step]:
    """The workflow run's steps by name, each with its run's state."""
    rows = workflow_run.steps.values_list("id", "name", "state", "inputs", "run_id", "run__state")
    return {row[1]: _Step(*row) for row in rows}


def _ended_noted(steps: dict[str, _Step]) -> set[str]:
    """Note each running step whose run has ended as ended; the names of those."""
    ended = set()
    for step in steps.values():
        if step.state == StepState.RUNNING and (
            step.run_id is None or step.run_state in TERMINAL_STATES
        ):
            # A run gone (the runs' retention) tells nothing of its outcome: failed.
            ran = step.run_state if step.run_id is not None else None
            step.state = STEP_OF_RUN[RunState(ran)] if ran is not None else StepState.FAILED
            ended.add(step.name)
    return ended


def _step_runs_save(steps: Iterable[_Step]) -> None:
    """Write the steps' state, run and inputs."""
    models_update(
        [
            WorkflowStepRun(id=step.id, state=step.state, run_id=step.run_id, inputs=step.inputs)
            for step in steps
        ],
        ["state", "run", "inputs"],
    )


class _Jobs:
    """The jobs of a graph's steps by id, read once one is asked for (most moves start none),
    and the verdicts on their arguments."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = set(ids)
        self.found: dict[int, Job] | None = None
        self.refusals: dict[tuple[str, str], str | None] = {}

    def get(self, job_id: int) -> Job | None:
        if self.found is None:
            self.found = Job.objects.in_bulk(self.ids)
        return self.found.get(job_id)

    def refusal(self, job: Job, args: Any) -> str | None:
        """Why the task type refuses these arguments now, or None; each pair checked once (a
        fan-out starts many steps of one job)."""
        key = (job.task_type, json.dumps(args, sort_keys=True, cls=DjangoJSONEncoder))
        if key not in self.refusals:
            try:
                task_args_validate(task_type_name=job.task_type, args=args)
                self.refusals[key] = None
            except ApplicationError as error:
                self.refusals[key] = f"Its arguments are refused: {error}"
        return self.refusals[key]


def _condition_met(condition: str, upstream: list[_Step]) -> bool:
    if condition == StepCondition.ALWAYS:
        return True
    if condition == StepCondition.ON_FAILURE:
        return any(other.state == StepState.FAILED for other in upstream)
    return all(other.state == StepState.SUCCEEDED for other in upstream)


def _step_run(
    workflow_run: WorkflowRun,
    step: _Step,
    node: dict[str, Any],
    upstream: list[_Step],
    jobs: "_Jobs",
    trigger: RunTrigger | None,
    now: datetime,
) -> Run | None:
    """The step's new run, not saved yet: queued, or failed with the reason it cannot run (its
    arguments refused by the task type now, its dependencies' results too large); None when its
    job is gone (a job is kept while a step names it: only one dropped from the graph since can
    go)."""
    job = jobs.get(node["job_id"])
    if job is None:
        return None
    args = node["args"]
    refusal = jobs.refusal(job, job.args if args is None else args)
    if node["pass_results"]:
        ids = [other.run_id for other in upstream if other.run_id is not None]
        results = dict(Run.objects.filter(id__in=ids).values_list("id", "result"))
        step.inputs = {
            other.name: results.get(other.run_id) if other.run_id else None for other in upstream
        }
        size = len(json.dumps(step.inputs, cls=DjangoJSONEncoder))
        if size > MAX_INPUTS_BYTES and refusal is None:
            refusal = (
                f"The results of the steps it depends on are {size} bytes as JSON, more than "
                f"{MAX_INPUTS_BYTES}."
            )
    run = run_build(
        job=job,
        trigger=trigger or RunTrigger(workflow_run.trigger),
        now=now,
        args=args,
        refusal=refusal,
    )
    run.workflow_run = workflow_run
    return run


def _outcome(graph: dict[str, dict[str, Any]], steps: dict[str, _Step]) -> str:
    """How a workflow run whose steps have all ended ends: failed when a step failed and no step
    handling it ran (one that depends on it with the condition on_failure or always); cancelled
    when a step was cancelled so; succeeded otherwise."""
    handled = {
        upstream
        for name, node in graph.items()
        if node["condition"] != StepCondition.ON_SUCCESS and steps[name].state != StepState.SKIPPED
        for upstream in node["depends_on"]
    }
    unhandled = {step.state for name, step in steps.items() if name not in handled}
    if StepState.FAILED in unhandled:
        return WorkflowRunState.FAILED
    if StepState.CANCELLED in unhandled:
        return WorkflowRunState.CANCELLED
    return WorkflowRunState.SUCCEEDED


@transaction.atomic
def workflow_run_cancel(*, workflow_run: WorkflowRun, actor: Actor = None) -> WorkflowRun:
    """Cancel every unfinished step: the pending ones at once, the running ones' runs as any run
    is cancelled (apps.runs.services.moves.runs_cancel); the workflow run ends cancelled."""
    locked = WorkflowRun.objects.select_for_update().get(id=workflow_run.id)
    if locked.state != WorkflowRunState.RUNNING:
        raise InvalidTransition(f"The workflow run is already {locked.state}.", field="state")
    steps = list(locked.steps.select_related("run"))
    pending = [step for step in steps if step.state == StepState.PENDING]
    for step in pending:
        step.state = StepState.CANCELLED
    WorkflowStepRun.objects.bulk_update(pending, ["state"])
    runs_cancel(runs=[step.run for step in steps if step.state == StepState.RUNNING and step.run])
    noted = _steps_read(locked)  # with those cancelled before they started
    _step_runs_save(noted[name] for name in _ended_noted(noted))
    locked.state = WorkflowRunState.CANCELLED
    locked.finished_at = timezone.now()
    locked.save(update_fields=["state", "finished_at", "updated_at"])
    _finished_on_commit(locked)
    events_record([_event(locked, _states(noted.values()), time=locked.finished_at)])
    audit_record(
        actor=actor,
        action=AuditAction.CANCEL,
        target=locked,
        team_id=locked.workflow.team_id,
        changes={"state": {"old": WorkflowRunState.RUNNING, "new": WorkflowRunState.CANCELLED}},
    )
    return locked


@transaction.atomic
def workflow_run_retry(*, workflow_run: WorkflowRun, actor: Actor = None) -> WorkflowRun:
    """Run again, in the same workflow run, only its failed, cancelled and skipped steps (and
    what depends on them, as they end): the succeeded ones keep their results."""
    locked = WorkflowRun.objects.select_for_update().get(id=workflow_run.id)
    if locked.state not in (WorkflowRunState.FAILED, WorkflowRunState.CANCELLED):
        raise InvalidTransition(
            f"Only a failed or cancelled workflow run is retried; this one is {locked.state}.",
            field="state",
        )
    steps = _steps_read(locked)
    ended = _ended_noted(steps)
    again = [
        step
        for step in steps.values()
        if step.state in (StepState.FAILED, StepState.CANCELLED, StepState.SKIPPED)
    ]
    for step in again:
        step.state, step.run_id, step.run_state, step.inputs = StepState.PENDING, None, None, None
    _step_runs_save(steps[name] for name in ended | {step.name for step in again})
    state = locked.state
    locked.state, locked.finished_at = WorkflowRunState.RUNNING, None
    audit_record(
        actor=actor,
        action=AuditAction.RETRY,
        target=locked,
        team_id=locked.workflow.team_id,
        changes={
            "state": {"old": state, "new": WorkflowRunState.RUNNING},
            "steps": {"old": None, "new": sorted(step.name for step in again)},
        },
    )
    locked.save(update_fields=["state", "finished_at", "updated_at"])
    kind = EventType.WORKFLOW_RUN_RETRIED
    events_record([_event(locked, _states(again), kind=kind, time=timezone.now())])
    _advance(locked, trigger=RunTrigger.RETRY, steps=steps)
    return locked


def workflow_runs_advance(*, limit: int = 100, settled: bool = False) -> int:
    """Move on (up to `limit` of) the workflow runs a step of which still waits for a run that
    has ended; return how many. The WorkflowAdvancer calls it when woken, and every few seconds:
    a wake-up lost with its process, or sent while PostgreSQL was away, is caught up.
    `settled`: only those whose every running step's run has ended, where a step may be ready
    now (the join of a fan-in, the next of a chain): the advancer moves them at once, and the
    others once a burst of ends has gathered."""
    if settled:
        with connection.cursor() as cursor:
            cursor.execute(SETTLED_SQL, [*TERMINAL_STATES, limit])
            due = [row[0] for row in cursor.fetchall()]
    else:
        due = list(
            WorkflowRun.objects.filter(
                steps__state=StepState.RUNNING, steps__run__state__in=TERMINAL_STATES
            )
            .values_list("id", flat=True)
            .distinct()[:limit]
        )
    for workflow_run_id in due:
        workflow_run_advance(workflow_run_id=workflow_run_id)
    return len(due)


def workflow_steps_running() -> dict[str, int]:
    """How many steps of each workflow run wait for a run that has not ended, by the workflow
    run's id (as text, as the wake-ups name it)."""
    with connection.cursor() as cursor:
        cursor.execute(RUNNING_SQL, list(TERMINAL_STATES))
        return {str(workflow_run_id): count for workflow_run_id, count in cursor.fetchall()}


TERMINAL_PLACEHOLDERS = ", ".join(["%s"] * len(TERMINAL_STATES))
RUNNING_SQL = f"""
    SELECT step.workflow_run_id, COUNT(*)
    FROM {WorkflowStepRun._meta.db_table} step
    JOIN {Run._meta.db_table} run ON run.id = step.run_id
    WHERE step.state = '{StepState.RUNNING.value}' AND run.state NOT IN ({TERMINAL_PLACEHOLDERS})
    GROUP BY step.workflow_run_id
"""  # noqa: S608 (names and a placeholder per state, no input)
# The workflow runs whose running steps' runs have all ended (a step gone with its run counts as
# not ended: the regular moves note it). Plain SQL: the advancer asks at each wake-up of a burst,
# and compiling the query each time cost more than running it.
SETTLED_SQL = f"""
    SELECT step.workflow_run_id
    FROM {WorkflowStepRun._meta.db_table} step
    LEFT JOIN {Run._meta.db_table} run ON run.id = step.run_id
    WHERE step.state = '{StepState.RUNNING.value}'
    GROUP BY step.workflow_run_id
    HAVING SUM(CASE WHEN run.state IN ({TERMINAL_PLACEHOLDERS}) THEN 0 ELSE 1 END) = 0
    LIMIT %s
"""  # noqa: S608 (names and a placeholder per state, no input)


def workflow_runs_purge_expired(*, now: datetime, keep: timedelta) -> int:
    """Delete the workflow runs (with their steps' rows) that ended before `now - keep`, in
    batches; return how many. The scheduler runs it every hour, with the runs' retention
    (DTS_RUN_RETENTION_DAYS): the runs of their steps go by their own end."""
    purged = 0
    while True:
        batch = list(
            WorkflowRun.objects.filter(finished_at__lt=now - keep)
            .exclude(state=WorkflowRunState.RUNNING)
            .values_list("id", flat=True)[:PURGE_BATCH]
        )
        if not batch:
            return purged
        WorkflowRun.objects.filter(id__in=batch).delete()
        purged += len(batch)


def workflow_runs_running_count() -> int:
    return WorkflowRun.objects.filter(state=WorkflowRunState.RUNNING).count()
