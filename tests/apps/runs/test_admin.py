from django.contrib.admin.utils import flatten_fieldsets

from apps.runs.admin import RunAdmin, WorkerAdmin
from apps.runs.models import Worker


def test_every_field_the_run_admin_shows_is_read_only():
    assert set(RunAdmin.readonly_fields) == set(flatten_fieldsets(RunAdmin.fieldsets))


def test_the_worker_admin_shows_all_a_heartbeat_describes_read_only():
    shown = WorkerAdmin.readonly_fields

    assert {"hostname", "last_heartbeat_at", "active_run_ids", "stopped_at"} <= set(shown)
    assert {field.name for field in Worker._meta.fields} == {"id", *shown}
