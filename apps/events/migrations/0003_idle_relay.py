"""The outbox's insert trigger notifies `dts_outbox` only while a relay waits (a row in
events_idlerelay). PostgreSQL serialises the commits of all transactions that NOTIFY (a lock held
through the commit's flush), so under load, when every relay is busy reading new rows anyway,
writers now pay no NOTIFY at all."""

from django.db import migrations, models

NOTIFY_WHEN_IDLE = """
CREATE OR REPLACE FUNCTION dts_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM events_idlerelay) THEN
        PERFORM pg_notify('dts_outbox', '');
    END IF;
    RETURN NULL;
END $$;
"""
NOTIFY_ALWAYS = """
CREATE OR REPLACE FUNCTION dts_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dts_outbox', '');
    RETURN NULL;
END $$;
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_WHEN_IDLE)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_ALWAYS)


class Migration(migrations.Migration):
    dependencies = [("events", "0002_outbox_notify")]

    operations = [
        migrations.CreateModel(
            name="IdleRelay",
            fields=[
                ("backend_pid", models.IntegerField(primary_key=True, serialize=False)),
                ("since", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
