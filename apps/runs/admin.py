import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from apps.runs.models import Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Runs are records of what happened: readable by operators, changed only by dts itself."""

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
        (
            "Timings",
            {
                "fields": [
                    "scheduled_for",
                    "created_at",
                    "published_at",
                    "started_at",
                    "finished_at",
                    "duration",
                ]
            },
        ),
        ("Outcome", {"fields": ["result_json", "error", "traceback_text"]}),
    ]
    readonly_fields = [
        "id",
        "job",
        "state",
        "trigger",
        "attempt",
        "worker",
        "task_type",
        "args_json",
        "queue",
        "scheduled_for",
        "created_at",
        "published_at",
        "started_at",
        "finished_at",
        "duration",
        "result_json",
        "error",
        "traceback_text",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

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

    @admin.display(description="Traceback")
    def traceback_text(self, run: Run) -> str:
        return format_html("<pre>{}</pre>", run.traceback) if run.traceback else "-"
