"""Jobs as code: a set of declared jobs, each with its schedules, and workflows, applied as one
change.

A job is matched by (team, name). A field its declaration leaves out takes its default, except a
job's `enabled`, which pausing and resuming change: left out, it stays as it is. A job whose
declaration lists schedules has exactly these (an empty list: none); one that does not list them
keeps its own. Declared schedules are matched to the job's by their whole definition, then by
their timing, then in order; what is left over is created, or deleted. A workflow is matched by
(team, name) too, and its steps are the declared ones; its steps may name jobs the same set
declares (jobs are applied first). Its schedules, like a job's, are the declared ones when it
lists them, and its own when it does not.

Nothing is written unless everything is valid: every refusal is collected with the path of the
field at fault (`documents[2].schedules[0].cron_expression`), and one refusal rolls back all.
A dry run makes the same changes, so it gives the same answer, and rolls them back.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import transaction
from django.db.models import Field, Model

from apps.accounts.models import Team
from apps.audit.services import Actor
from apps.core.exceptions import ApplicationError, ValidationFailed
from apps.jobs.models import Job
from apps.jobs.services import EDITABLE_FIELDS as JOB_FIELDS
from apps.jobs.services import job_create, job_definition, job_delete, job_update
from apps.schedules.models import Schedule
from apps.schedules.services import EDITABLE_FIELDS as SCHEDULE_FIELDS
from apps.schedules.services import (
    schedule_create,
    schedule_definition,
    schedule_delete,
    schedule_update,
    schedules_matched,
)
from apps.workflows.models import Workflow
from apps.workflows.services import (
    workflow_create,
    workflow_definition,
    workflow_delete,
    workflow_schedules_defined,
    workflow_steps_defined,
    workflow_steps_resolved,
    workflow_update,
)

CREATED, CONFIGURED, UNCHANGED, DELETED = "created", "configured", "unchanged", "deleted"


@dataclass(frozen=True)
class JobDeclaration:
    where: str  # where it was declared, the start of its refusals' paths: "documents[2]"
    team: Team
    name: str
    fields: dict[str, Any]  # the job's fields it declares, name included
    schedules: list[dict[str, Any]] | None  # None: the job's schedules are not declared


@dataclass(frozen=True)
class WorkflowDeclaration:
    where: str
    team: Team
    name: str
    description: str
    overlap_policy: str
    steps: list[dict[str, Any]]  # as the API takes them: each names its job
    schedules: list[dict[str, Any]] | None  # None: the workflow's schedules are not declared


@dataclass
class Change:
    """What the apply did (or, in a dry run, would do) to one job, schedule or workflow."""

    kind: str  # "job", "schedule" or "workflow"
    action: str  # CREATED, CONFIGURED, UNCHANGED or DELETED
    team: str
    name: str  # the job's or workflow's (a schedule's job's)
    id: int | None  # None for what a dry run would create
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class _Apply:
    actor: Actor
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @contextmanager
    def collecting(self, where: str) -> Iterator[None]:
        """Undo the block's writes and note its refusal, under `where`, if it is refused."""
        try:
            with transaction.atomic():
                yield
        except ApplicationError as refusal:
            for name, messages in _problems(refusal).items():
                path = f"{where}.{name}" if name else where
                self.errors.setdefault(path, []).extend(messages)

    def note(
        self, kind: str, action: str, owner: Job | Workflow, target: Model, before: Any, after: Any
    ) -> None:
        """A change to `target`, the job or workflow `owner` or a schedule of the job."""
        created_in_dry_run = self.dry_run and action == CREATED
        self.changes.append(
            Change(
                kind=kind,
                action=action,
                team=owner.team.name,
                name=owner.name,
                id=None if created_in_dry_run else target.pk,
                before=before,
                after=after,
            )
        )


@transaction.atomic
def declarations_apply(
    *,
    declarations: list[JobDeclaration | WorkflowDeclaration],
    prune: bool,
    dry_run: bool,
    actor: Actor = None,
) -> list[Change]:
    """Make the declared jobs and workflows so, and with `prune` delete the jobs and workflows
    of the declared teams that are not declared; in a dry run, say what would change and change
    nothing."""
    run = _Apply(actor=actor, dry_run=dry_run)
    declared: dict[tuple[type, int, str], str] = {}
    jobs_first = sorted(declarations, key=lambda d: isinstance(d, WorkflowDeclaration))
    for declaration in jobs_first:
        where = declaration.where
        key = (type(declaration), declaration.team.id, declaration.name)
        if key in declared:
            what = "workflow" if isinstance(declaration, WorkflowDeclaration) else "job"
            run.errors[f"{where}.name"] = [f"{declared[key]} declares this {what} too."]
            continue
        declared[key] = where
        with run.collecting(where):
            if isinstance(declaration, WorkflowDeclaration):
                _workflow_apply(run, declaration)
                continue
            job = _job_apply(run, declaration)
            if declaration.schedules is not None:
                _schedules_apply(run, job, declaration.schedules, where=where)
    if prune:
        for team in {declaration.team for declaration in declarations}:
            _prune(run, team, declared)
    if run.errors:
        path, messages = next(iter(run.errors.items()))
        raise ValidationFailed(messages[0], field=path, extra={"errors": run.errors})
    if dry_run:
        transaction.set_rollback(True)
    return run.changes


def _prune(run: _Apply, team: Team, declared: dict[tuple[type, int, str], str]) -> None:
    """Delete the team's workflows, then jobs (a workflow's steps hold theirs), none declares."""
    kept = {(kind, name) for kind, team_id, name in declared if team_id == team.id}
    for workflow in team.workflows.order_by("name"):
        if (WorkflowDeclaration, workflow.name) not in kept:
            run.note("workflow", DELETED, workflow, workflow, workflow_definition(workflow), None)
            workflow_delete(workflow=workflow, actor=run.actor)
    for job in team.jobs.order_by("name"):
        if (JobDeclaration, job.name) not in kept:
            run.note("job", DELETED, job, job, job_definition(job), None)
            job_delete(job=job, actor=run.actor)


def _workflow_apply(run: _Apply, declaration: WorkflowDeclaration) -> None:
    team, name = declaration.team, declaration.name
    steps = workflow_steps_resolved(team, declaration.steps)
    workflow = Workflow.objects.filter(team=team, name=name).first()
    if workflow is None:
        workflow = workflow_create(
            team=team,
            name=name,
            description=declaration.description,
            overlap_policy=declaration.overlap_policy,
            steps=steps,
            schedules=declaration.schedules,
            actor=run.actor,
        )
        run.note("workflow", CREATED, workflow, workflow, None, workflow_definition(workflow))
        return
    before = workflow_definition(workflow)
    schedules = declaration.schedules
    wanted = {
        "name": name,
        "description": declaration.description,
        "overlap_policy": declaration.overlap_policy,
        "steps": workflow_steps_defined(steps),
        "schedules": before["schedules"]
        if schedules is None
        else workflow_schedules_defined(schedules),
    }
    if wanted != before:
        data = {
            "description": declaration.description,
            "overlap_policy": declaration.overlap_policy,
            "steps": steps,
            **({} if schedules is None else {"schedules": schedules}),
        }
        workflow_update(workflow=workflow, data=data, actor=run.actor)
    after = workflow_definition(workflow)
    action = CONFIGURED if wanted != before else UNCHANGED
    run.note("workflow", action, workflow, workflow, before, after)


def _job_apply(run: _Apply, declaration: JobDeclaration) -> Job:
    job = Job.objects.filter(team=declaration.team, name=declaration.name).first()
    if job is None:
        job = job_create(team=declaration.team, actor=run.actor, **declaration.fields)
        run.note("job", CREATED, job, job, None, job_definition(job))
        return job
    before = job_definition(job)
    wanted = {
        name: declaration.fields.get(name, _default(Job, name))
        for name in JOB_FIELDS
        if name in declaration.fields or name != "enabled"
    }
    changes = {name: value for name, value in wanted.items() if before[name] != value}
    if changes:
        job_update(job=job, data=changes, actor=run.actor)
    run.note("job", CONFIGURED if changes else UNCHANGED, job, job, before, job_definition(job))
    if changes:
        job.refresh_from_db()  # a schedule's checks read the job's fields
    return job


def _schedules_apply(run: _Apply, job: Job, declared: list[dict[str, Any]], *, where: str) -> None:
    wanted = [
        {name: fields.get(name, _default(Schedule, name)) for name in SCHEDULE_FIELDS}
        for fields in declared
    ]
    existing = list(job.schedules.order_by("id"))
    pairs, unmatched = schedules_matched(existing, wanted)
    for gone in unmatched:  # first: the places they free count for the team's cap
        run.note("schedule", DELETED, job, gone, schedule_definition(gone), None)
        schedule_delete(schedule=gone, actor=run.actor)
    for index, schedule in pairs:
        with run.collecting(f"{where}.schedules[{index}]"):
            if schedule is None:
                data = dict(wanted[index])
                data["timezone_name"] = data.pop("timezone")
                created = schedule_create(job=job, actor=run.actor, **data)
                run.note("schedule", CREATED, job, created, None, schedule_definition(created))
                continue
            before = schedule_definition(schedule)
            changes = {
                name: value for name, value in wanted[index].items() if before[name] != value
            }
            if changes:
                schedule_update(schedule=schedule, data=changes, actor=run.actor)
            action = CONFIGURED if changes else UNCHANGED
            run.note("schedule", action, job, schedule, before, schedule_definition(schedule))


def _default(model: type[Model], name: str) -> Any:
    if name == "tags":
        return []
    return cast(Field, model._meta.get_field(name)).get_default()


def _problems(refusal: ApplicationError) -> dict[str | None, list[str]]:
    """A refusal's messages by field (None: the object as a whole)."""
    found = refusal.extra.get("errors")
    if isinstance(found, dict):
        return {None if name == "__all__" else name: [str(found[name])] for name in found}
    return {refusal.field: [refusal.message]}
