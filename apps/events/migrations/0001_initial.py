"""The outbox and its wake-up. Every statement that inserts outbox rows notifies `dts_outbox`
(delivered at commit, once per transaction), which wakes the relay (apps.events.relay), but only
while a relay waits (a row in events_idlerelay): PostgreSQL serialises the commits of all
transactions that NOTIFY (a lock held through the commit's flush), so under load, when every relay
is busy reading new rows anyway, writers pay no NOTIFY at all. PostgreSQL only: make dev has no
relay."""

import django.core.serializers.json
import uuid
from django.db import migrations, models

CREATE = """
CREATE FUNCTION dts_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM events_idlerelay) THEN
        PERFORM pg_notify('dts_outbox', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER dts_outbox_notify AFTER INSERT ON events_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION dts_outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS dts_outbox_notify ON events_outboxevent;
DROP FUNCTION IF EXISTS dts_outbox_notify();
"""


def notify_create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def notify_drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="OutboxEvent",
            fields=[
                ("sequence", models.BigAutoField(primary_key=True, serialize=False)),
                ("event_id", models.UUIDField(default=uuid.uuid4, editable=False)),
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("dts.run.queued", "Run queued"),
                            ("dts.run.started", "Run started"),
                            ("dts.run.retrying", "Run retrying"),
                            ("dts.run.cancelling", "Run cancelling"),
                            ("dts.run.succeeded", "Run succeeded"),
                            ("dts.run.failed", "Run failed"),
                            ("dts.run.timed_out", "Run timed out"),
                            ("dts.run.cancelled", "Run cancelled"),
                            ("dts.run.lost", "Run lost"),
                            ("dts.job.created", "Job created"),
                            ("dts.job.updated", "Job updated"),
                            ("dts.job.deleted", "Job deleted"),
                            ("dts.job.paused", "Job paused"),
                            ("dts.job.resumed", "Job resumed"),
                            ("dts.schedule.fired", "Schedule fired"),
                            ("dts.schedule.skipped", "Schedule fired nothing"),
                        ],
                        max_length=40,
                    ),
                ),
                ("subject", models.CharField(max_length=100)),
                ("job_id", models.BigIntegerField()),
                ("time", models.DateTimeField()),
                ("data", models.JSONField(encoder=django.core.serializers.json.DjangoJSONEncoder)),
                ("published_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("published_at__isnull", True)),
                        fields=["sequence"],
                        name="outbox_unpublished_idx",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="IdleRelay",
            fields=[
                ("backend_pid", models.IntegerField(primary_key=True, serialize=False)),
                ("since", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(notify_create, notify_drop),
    ]
