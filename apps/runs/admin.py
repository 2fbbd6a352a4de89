import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.core.exceptions import ApplicationError
from apps.runs.logs import run_log_lines
from apps.runs.models import Run, RunAttempt, Worker
from apps.runs.services.moves import run_cancel

LOG_LINES_SHOWN = 2000


class RunAttemptInline(admin.TabularInline):
    model = RunAttempt
    fields = ["number", "worker", "started_at", "finished_at", "outcome", "error"]
    readonly_fields = ["number", "worker", "started_at", "finished_at", "outcome", "error"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Runs are records of what happened: readable by operators, changed only by dts itself."""

    inlines = [RunAttemptInline]
    actions = ["cancel"]

    list_display = [
        "id",
        "job",
        "state",
        "trigger",
        "attempt",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
        "worker",
    ]
    list_filter = ["state", "trigger", "job"]
    list_select_related = ["job"]
    search_fields = ["id", "job__name"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["id", "job", "state", "trigger", "attempt", "worker"]}),
        ("What ran", {"fields": ["task_type", "args_json", "queue"]}),
        ("Attempts", {"fields": ["next_attempt_at", "last_seen_at"]}),
        (
            "Timings",
            {
                "fields": [
                    "scheduled_for",
                    "created_at",
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "duration",
                ]
            },
        ),
        ("Outcome", {"fields": ["result_json", "error", "traceback_text"]}),
        ("Log", {"fields": ["log"]}),
    ]
    # Nothing of a run is edited here: every field shown is read-only.
    readonly_fields = flatten_fieldsets(fieldsets)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        for run in queryset:
            try:
                run_cancel(run=run, actor=request.user)
            except ApplicationError as error:
                self.message_user(request, f"Run {run.id}: {error.message}", messages.WARNING)

    def has_change_permission(self, request: HttpRequest, obj: Run | None = None) -> bool:
        return False

    @admin.display(description="Duration")
    def duration(self, run: Run) -> str:
        if run.started_at is None or run.finished_at is None:
            return "-"
        return f"{(run.finished_at - run.started_at).total_seconds():.3f} s"

    @admin.display(description="Arguments")
    def args_json(self, run: Run) -> str:
        return format_html("<pre>{}</pre>", json.dumps(run.args, indent=2))

    @admin.display(description="Result")
    def result_json(self, run: Run) -> str:
        return format_html("<pre>{}</pre>", json.dumps(run.result, indent=2, default=str))

    @admin.display(description=f"Log (the first {LOG_LINES_SHOWN} lines)")
    def log(self, run: Run) -> str:
        lines = run_log_lines(run_id=run.id, limit=LOG_LINES_SHOWN)
        if not lines:
            return "-"
        return format_html(
            "<pre>{}</pre>",
            format_html_join(
                "\n",
                "{} #{} {} {}: {}",
                (
                    (
                        line.logged_at.strftime("%H:%M:%S.%f")[:-3],
                        line.attempt,
                        line.level,
                        line.logger,
                        line.message,
                    )
                    for line in lines
                ),
            ),
        )

    @admin.display(description="Traceback")
    def traceback_text(self, run: Run) -> str:
        return format_html("<pre>{}</pre>", run.traceback) if run.traceback else "-"


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    """Worker nodes as their heartbeats describe them."""

    list_display = [
        "hostname",
        "queues",
        "concurrency",
        "last_heartbeat_at",
        "running",
        "stopped_at",
    ]
    readonly_fields = [field.name for field in Worker._meta.fields if not field.primary_key]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Worker | None = None) -> bool:
        return False

    @admin.display(description="Runs executing")
    def running(self, worker: Worker) -> int:
        return len(worker.active_run_ids)
