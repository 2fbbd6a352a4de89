"""Every statement that inserts outbox rows notifies `dts_outbox` (delivered at commit, once per
transaction), which wakes the relay (apps.events.relay). PostgreSQL only: make dev has no relay."""

from django.db import migrations

CREATE = """
CREATE FUNCTION dts_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dts_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER dts_outbox_notify AFTER INSERT ON events_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION dts_outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS dts_outbox_notify ON events_outboxevent;
DROP FUNCTION IF EXISTS dts_outbox_notify();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("events", "0001_outbox")]

    operations = [migrations.RunPython(forwards, backwards)]
