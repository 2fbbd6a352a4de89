"""Pause the schedules whose cron expression dts no longer accepts (croniter took reversed ranges,
R, H, ?, nearest-weekday W), saying why in the pause note: the scheduler cannot compute their fire
times, and silently firing them by another reading would be worse. Edit, then resume."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.utils import timezone

from apps.core.exceptions import ValidationFailed
from apps.schedules.validation import cron_syntax_validate


def refused_crons_pause(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    Schedule = apps.get_model("schedules", "Schedule")
    now = timezone.now()
    for schedule in Schedule.objects.filter(kind="cron", paused=False).iterator():
        try:
            cron_syntax_validate(schedule.cron_expression)
        except ValidationFailed as refusal:
            schedule.paused = True
            schedule.paused_at = now
            schedule.pause_note = (
                f"Paused on upgrade: the cron expression {schedule.cron_expression!r} is no longer "
                f"accepted ({refusal.message}) Edit it, then resume."
            )
            schedule.save(update_fields=["paused", "paused_at", "pause_note"])


class Migration(migrations.Migration):
    dependencies = [("schedules", "0001_initial")]

    operations = [migrations.RunPython(refused_crons_pause, migrations.RunPython.noop)]
