from apps.audit.services import field_changes


def test_field_changes_lists_only_the_named_fields_that_changed_in_name_order():
    before = {"name": "nightly", "priority": 5, "enabled": True, "queue": "default"}
    after = {"name": "hourly", "priority": 5, "enabled": False, "queue": "bulk"}

    changes = field_changes(before, after, fields=["priority", "name", "enabled"])

    assert list(changes) == ["enabled", "name"]
    assert changes == {
        "enabled": {"old": True, "new": False},
        "name": {"old": "nightly", "new": "hourly"},
    }


def test_field_changes_of_an_update_that_changed_nothing_are_empty():
    definition = {"name": "nightly", "tags": ["billing"]}

    assert field_changes(definition, dict(definition), fields=definition) == {}
