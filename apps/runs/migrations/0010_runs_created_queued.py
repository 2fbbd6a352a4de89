"""Runs are created queued, with `queued_at`, in the transaction that records them: the state
`pending` and the publisher's `published_at` update are gone."""

from django.db import migrations, models
from django.db.models import F

STATES = [
    ("queued", "Queued"),
    ("running", "Running"),
    ("retrying", "Retrying"),
    ("cancelling", "Cancelling"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("timed_out", "Timed out"),
    ("cancelled", "Cancelled"),
    ("lost", "Lost"),
]


def pending_to_queued(apps, schema_editor):  # type: ignore[no-untyped-def]
    Run = apps.get_model("runs", "Run")
    Run.objects.filter(state="pending").update(state="queued", queued_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0009_unique_fire_time_only_scheduled"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="run", name="run_unpublished_idx"),
        migrations.RenameField(model_name="run", old_name="published_at", new_name="queued_at"),
        migrations.RunPython(pending_to_queued, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="run",
            name="state",
            field=models.CharField(choices=STATES, default="queued", max_length=20),
        ),
        migrations.AlterField(
            model_name="runattempt",
            name="outcome",
            field=models.CharField(blank=True, choices=STATES, max_length=20),
        ),
    ]
