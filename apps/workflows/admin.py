"""Workflows in the admin: a workflow with its steps and schedules inline, the steps checked as one
graph (the refusals of apps.workflows.services, under the step's field), the schedules as a job's
are, and saved through the services (audited); its runs, read-only, each with its steps'
states."""

from typing import Any

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone

from apps.core.admin import SavedByServicesAdmin
from apps.core.exceptions import ApplicationError
from apps.schedules.services import EDITABLE_FIELDS as SCHEDULE_FIELDS
from apps.schedules.validation import schedule_validate
from apps.workflows.models import (
    Workflow,
    WorkflowRun,
    WorkflowSchedule,
    WorkflowStep,
    WorkflowStepRun,
)
from apps.workflows.services import (
    STEP_FIELDS,
    workflow_create,
    workflow_delete,
    workflow_steps_validate,
    workflow_update,
)


class StepForm(forms.ModelForm):
    depends_on = forms.CharField(
        required=False, help_text="The steps it waits for, by name, comma-separated."
    )

    class Meta:
        model = WorkflowStep
        fields = list(STEP_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["depends_on"] = ", ".join(self.instance.depends_on or [])

    def clean_depends_on(self) -> list[str]:
        given = self.cleaned_data.get("depends_on") or ""
        return [name.strip() for name in given.split(",") if name.strip()]


class StepFormSet(BaseInlineFormSet):
    def steps(self) -> list[dict[str, Any]]:
        """The steps the forms define (deleted ones left out), in order."""
        return [
            {field: form.cleaned_data.get(field) for field in STEP_FIELDS}
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        super().clean()
        if any(self.errors) or self.instance.team_id is None:
            return
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        try:
            workflow_steps_validate(team=self.instance.team, steps=self.steps())
        except ApplicationError as error:
            field = error.field or ""
            if field.startswith("steps["):
                index, _, name = field.removeprefix("steps[").partition("].")
                form = kept[int(index)]
                if name in form.fields:
                    form.add_error(name, error.message)
                    return
            raise forms.ValidationError(error.message) from error


class StepInline(admin.TabularInline):
    model = WorkflowStep
    form = StepForm
    formset = StepFormSet
    extra = 1
    autocomplete_fields = ["job"]


class ScheduleFormSet(BaseInlineFormSet):
    def schedules(self) -> list[dict[str, Any]]:
        """The schedules the forms define (deleted ones left out)."""
        return [
            {field: form.cleaned_data.get(field) for field in SCHEDULE_FIELDS}
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        """Each schedule refused as a job's would be, under the field at fault."""
        super().clean()
        now = timezone.now()
        for form in self.forms:
            if form.errors or not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            fields = {field: form.cleaned_data.get(field) for field in SCHEDULE_FIELDS}
            try:
                schedule_validate(WorkflowSchedule(**fields), now=now)
            except ApplicationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)


class ScheduleInline(admin.StackedInline):
    model = WorkflowSchedule
    formset = ScheduleFormSet
    fields = [*sorted(SCHEDULE_FIELDS), "next_fire_at", "last_fired_for"]
    readonly_fields = ["next_fire_at", "last_fired_for"]
    extra = 0


@admin.register(Workflow)
class WorkflowAdmin(SavedByServicesAdmin):
    list_display = ["name", "team", "description", "updated_at"]
    list_filter = ["team"]
    search_fields = ["name"]
    inlines = [StepInline, ScheduleInline]
    fields = ["team", "name", "description", "overlap_policy"]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        workflow = form.instance
        data = {
            "name": workflow.name,
            "description": workflow.description,
            "overlap_policy": workflow.overlap_policy,
            "steps": formsets[0].steps(),
            "schedules": formsets[1].schedules(),
        }
        if change:
            workflow_update(
                workflow=Workflow.objects.get(pk=workflow.pk), data=data, actor=request.user
            )
        else:
            workflow.pk = workflow_create(team=workflow.team, actor=request.user, **data).pk

    def delete_model(self, request: HttpRequest, obj: Workflow) -> None:
        workflow_delete(workflow=obj, actor=request.user)


class StepRunInline(admin.TabularInline):
    model = WorkflowStepRun
    fields = ["name", "state", "run"]
    readonly_fields = ["name", "state", "run"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    list_display = ["id", "workflow", "state", "trigger", "created_at", "finished_at"]
    list_filter = ["state", "trigger"]
    list_select_related = ["workflow"]
    inlines = [StepRunInline]
    fields = ["workflow", "state", "trigger", "created_at", "finished_at", "graph"]
    readonly_fields = ["workflow", "state", "trigger", "created_at", "finished_at", "graph"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
