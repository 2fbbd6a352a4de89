import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from apps.core.exceptions import ApplicationError
from apps.jobs.models import Job
from apps.jobs.services import (
    EDITABLE_FIELDS,
    job_create,
    job_definition_validate,
    job_delete,
    job_update,
)
from apps.runs.models import Run, RunTrigger
from apps.runs.services.build import run_trigger
from apps.schedules.admin import ScheduleInline
from apps.tasktypes.registry import task_type_list


class JobAdminForm(forms.ModelForm):
    task_type = forms.ChoiceField(choices=())
    args = forms.JSONField(
        initial=dict,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="A JSON object, checked against the task type's schema (listed below the form).",
    )

    tags = forms.CharField(
        required=False, help_text="Comma-separated, e.g. nightly, billing.", max_length=1000
    )

    class Meta:
        model = Job
        fields = ["team", *sorted(EDITABLE_FIELDS - {"tags"})]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        registered = [(task_type.name, task_type.name) for task_type in task_type_list()]
        current = self.instance.task_type
        # An existing job whose task type is no longer registered still opens, and says so on save.
        if current and current not in dict(registered):
            registered.append((current, f"{current} (not registered)"))
        cast(forms.ChoiceField, self.fields["task_type"]).choices = registered
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags.values_list("name", flat=True))

    def clean_tags(self) -> list[str]:
        return [
            name.strip() for name in self.cleaned_data.get("tags", "").split(",") if name.strip()
        ]

    def clean_args(self) -> Any:
        args = self.cleaned_data.get("args")
        return {} if args is None else args

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "task_type" in cleaned and "args" in cleaned:
            try:
                job_definition_validate(task_type=cleaned["task_type"], args=cleaned["args"])
            except ApplicationError as error:
                self.add_error(error.field, error.message)
        return cleaned


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    form = JobAdminForm
    list_display = ["name", "team", "task_type", "queue", "enabled", "last_run", "updated_at"]
    list_filter = ["enabled", "team", "tags", "task_type", "queue"]
    search_fields = ["name", "description"]
    actions = ["run_now"]
    readonly_fields = ["task_type_schemas", "created_at", "updated_at"]
    inlines = [ScheduleInline]
    fieldsets = [
        (None, {"fields": ["name", "team", "tags", "description", "enabled"]}),
        ("What to run", {"fields": ["task_type", "args", "task_type_schemas"]}),
        (
            "How to run it",
            {
                "fields": [
                    "queue",
                    "priority",
                    "soft_timeout_seconds",
                    "hard_timeout_seconds",
                    "overlap_policy",
                    "rate_limit_per_minute",
                    "max_concurrent_runs",
                ]
            },
        ),
        (
            "Retries",
            {
                "fields": [
                    "max_attempts",
                    "retry_backoff_seconds",
                    "retry_backoff_max_seconds",
                    "retry_jitter",
                    "idempotent",
                ]
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Argument schemas of the registered task types")
    def task_type_schemas(self, job: Job) -> str:
        rows = format_html_join(
            "",
            "<dt><code>{}</code> — {}</dt><dd><pre>{}</pre></dd>",
            (
                (task_type.name, task_type.description, json.dumps(task_type.schema, indent=2))
                for task_type in task_type_list()
            ),
        )
        return format_html("<dl>{}</dl>", rows)

    @admin.display(description="Last run")
    def last_run(self, job: Job) -> str:
        run = job.runs.order_by("-created_at").first()
        if run is None:
            return "-"
        url = reverse("admin:runs_run_change", args=[run.id])
        return format_html('<a href="{}">{}</a>', url, run.get_state_display())

    def save_model(
        self, request: HttpRequest, obj: Job, form: forms.ModelForm, change: bool
    ) -> None:
        data = {field: form.cleaned_data[field] for field in EDITABLE_FIELDS}
        if change:
            job_update(job=obj, data=data, actor=request.user)
        else:
            created = job_create(team=form.cleaned_data["team"], actor=request.user, **data)
            obj.pk, obj.created_at, obj.updated_at = (
                created.pk,
                created.created_at,
                created.updated_at,
            )

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool
    ) -> None:
        # The job's service saved its tags (save_model); the form's own many-to-many save would
        # take the tag names for ids. Only the inlines (schedules) are left to save.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        # A job stays with the team that owns it: its runs and audit entries are that team's.
        return [*self.readonly_fields, *(["team"] if obj is not None else [])]

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        job_delete(job=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            job_delete(job=job, actor=request.user)

    @admin.action(description="Run now")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            self._trigger(request, job)

    def get_urls(self) -> list[URLPattern]:
        run_now_url = path(
            "<int:job_id>/run-now/",
            self.admin_site.admin_view(self.run_now_view),
            name="jobs_job_run_now",
        )
        return [run_now_url, *super().get_urls()]

    def run_now_view(self, request: HttpRequest, job_id: int) -> HttpResponseRedirect:
        job = get_object_or_404(Job, id=job_id)
        if request.method != "POST" or not self.has_change_permission(request, job):
            return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.id]))
        run = self._trigger(request, job)
        if run is None:
            return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.id]))
        return HttpResponseRedirect(reverse("live:run", args=[run.id]))

    def _trigger(self, request: HttpRequest, job: Job) -> Run | None:
        try:
            run = run_trigger(job=job, trigger=RunTrigger.MANUAL, actor=request.user)
        except ApplicationError as error:
            self.message_user(request, f"{job}: not run. {error}", messages.ERROR)
            return None
        url = reverse("admin:runs_run_change", args=[run.id])
        self.message_user(
            request, format_html('{}: <a href="{}">run {}</a> triggered.', job, url, run.id)
        )
        return run
