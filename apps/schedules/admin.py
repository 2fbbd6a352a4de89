from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.core.exceptions import ApplicationError
from apps.schedules.models import Schedule
from apps.schedules.selectors import schedule_explain
from apps.schedules.services import (
    EDITABLE_FIELDS,
    schedule_create,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_update,
)
from apps.schedules.validation import schedule_validate

PREVIEW_COUNT = 10
# The form shows every field the service lets change (EDITABLE_FIELDS), in the model's order:
# enabled at the top, what decides missed fires apart, and the rest under "When".
MISSED_FIRE_FIELDS = ("misfire_policy", "catch_up_window_seconds", "catch_up_max_fires")
WHEN_FIELDS = tuple(
    field.name
    for field in Schedule._meta.fields
    if field.name in EDITABLE_FIELDS - {"enabled", *MISSED_FIRE_FIELDS}
)


class ScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["job", *sorted(EDITABLE_FIELDS), "paused", "pause_note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        candidate = Schedule(**{field: cleaned.get(field) for field in ["job", *EDITABLE_FIELDS]})
        try:
            schedule_validate(candidate, now=timezone.now())
        except ApplicationError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleAdminForm
    list_display = ["job", "describe", "enabled", "paused", "next_fire_at", "last_fired_for"]
    list_filter = ["kind", "enabled", "paused", "misfire_policy"]
    list_select_related = ["job"]
    search_fields = ["job__name", "cron_expression"]
    autocomplete_fields = ["job"]
    actions = ["resume"]
    readonly_fields = [
        "preview",
        "explain",
        "paused_by",
        "paused_at",
        "next_scheduled_for",
        "next_fire_at",
        "last_fired_for",
    ]
    fieldsets = [
        (None, {"fields": ["job", "enabled"]}),
        ("When", {"fields": [*WHEN_FIELDS, "preview"]}),
        ("Missed fires", {"fields": MISSED_FIRE_FIELDS}),
        ("Pause", {"fields": ["paused", "pause_note", "paused_by", "paused_at"]}),
        (
            "Next fires",
            {"fields": ["next_scheduled_for", "next_fire_at", "last_fired_for"]},
        ),
        ("Explain", {"fields": ["explain"]}),
    ]

    class Media:
        # Redraws `preview` as the timing is typed, before saving.
        js = ["schedules/timing_preview.js"]

    @admin.display(description="Schedule")
    def describe(self, schedule: Schedule) -> str:
        return schedule.describe()

    @admin.display(description=f"When, and the next {PREVIEW_COUNT} fire times")
    def preview(self, schedule: Schedule) -> str:
        if schedule.pk is None:
            return "Shown as the timing is typed."
        try:
            fires = schedule_preview(schedule, count=PREVIEW_COUNT)
        except ApplicationError as error:  # a cron expression stored before the current rules
            return f"None: {error}"
        zone = schedule.recurrence().zone()
        listed = (
            format_html(
                "<ol>{}</ol>",
                format_html_join(
                    "",
                    "<li>{} ({})</li>",
                    ((fire.astimezone(zone).isoformat(), fire.isoformat()) for fire in fires),
                ),
            )
            if fires
            else "None: it has nothing left to fire."
        )
        return format_html("<p>{}</p>{}", schedule.describe(), listed)

    @admin.display(description="Last fires and skipped fires")
    def explain(self, schedule: Schedule) -> str:
        if schedule.pk is None:
            return "-"
        explanation = schedule_explain(schedule=schedule)
        fired = format_html_join(
            "",
            "<li>{}: run {} — {}</li>",
            (
                (run.scheduled_for, run.id, run.get_state_display())
                for run in explanation.last_fires
            ),
        )
        skipped = format_html_join(
            "",
            "<li>{} fire(s) {} … {}: {}</li>",
            (
                (
                    f"{skip.count}+" if skip.count_is_lower_bound else skip.count,
                    skip.first_scheduled_for,
                    skip.last_scheduled_for,
                    skip.get_reason_display(),
                )
                for skip in explanation.skipped
            ),
        )
        return format_html("<p>Fired:</p><ul>{}</ul><p>Skipped:</p><ul>{}</ul>", fired, skipped)

    def save_model(
        self, request: HttpRequest, obj: Schedule, form: forms.ModelForm, change: bool
    ) -> None:
        data = {field: form.cleaned_data[field] for field in EDITABLE_FIELDS}
        was_paused = change and Schedule.objects.get(pk=obj.pk).paused
        try:
            if change:
                schedule_update(schedule=obj, data=data, actor=request.user)
            else:
                timezone_name = data.pop("timezone")
                obj.pk = schedule_create(
                    job=form.cleaned_data["job"],
                    timezone_name=timezone_name,
                    actor=request.user,
                    **data,
                ).pk
            if form.cleaned_data["paused"] and not was_paused:
                schedule_pause(
                    schedule=Schedule.objects.get(pk=obj.pk),
                    note=form.cleaned_data["pause_note"],
                    actor=request.user,
                )
            elif was_paused and not form.cleaned_data["paused"]:
                schedule_resume(schedule=Schedule.objects.get(pk=obj.pk), actor=request.user)
        except ApplicationError as error:
            # Validated by the form a moment ago; only a race (the clock passing once_at) gets here.
            self.message_user(request, f"Not saved: {error}", messages.ERROR)

    @admin.action(description="Resume")
    def resume(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset.filter(paused=True):
            try:
                schedule_resume(schedule=schedule, actor=request.user)
            except ApplicationError as error:
                self.message_user(request, f"{schedule} not resumed: {error}", messages.ERROR)


class ScheduleInline(admin.TabularInline):
    model = Schedule
    fields = ["describe", "enabled", "paused", "next_fire_at", "last_fired_for"]
    readonly_fields = ["describe", "enabled", "paused", "next_fire_at", "last_fired_for"]
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Schedule")
    def describe(self, schedule: Schedule) -> str:
        return schedule.describe()
