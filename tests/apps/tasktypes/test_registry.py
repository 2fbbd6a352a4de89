import copy

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from apps.core.exceptions import NotFound, ValidationFailed
from apps.tasktypes import builtin
from apps.tasktypes.registry import (
    task_args_validate,
    task_modules_load,
    task_type,
    task_type_get,
    task_type_list,
)

# What jobs name in their task_type: a built-in's name never changes, nor what runs under it.
STABLE_NAMES = {
    "dts.noop": builtin.noop,
    "dts.echo": builtin.echo,
    "dts.sleep": builtin.sleep,
    "dts.fail": builtin.fail,
    "dts.log": builtin.log,
}


def test_builtin_task_types_are_registered_under_stable_names():
    registered = {registered.name: registered.func for registered in task_type_list()}

    assert {name: registered.get(name) for name in STABLE_NAMES} == STABLE_NAMES


def test_unknown_task_type_is_refused_with_the_field():
    with pytest.raises(NotFound) as raised:
        task_type_get("celery.backend_cleanup")

    assert raised.value.field == "task_type"
    assert "not a registered task type" in raised.value.message


def test_args_of_an_unknown_task_type_are_refused():
    with pytest.raises(NotFound):
        task_args_validate(task_type_name="os.system", args={})


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({}, "'seconds' is a required property"),
        ({"seconds": "ten"}, "$.seconds: 'ten' is not of type 'number'"),
        ({"seconds": -1}, "$.seconds: -1 is less than the minimum of 0"),
        (
            {"seconds": 1, "extra": True},
            "Additional properties are not allowed ('extra' was unexpected)",
        ),
        ([1, 2], "[1, 2] is not of type 'object'"),
    ],
)
def test_args_breaking_the_schema_are_refused_with_the_reason(args, reason):
    with pytest.raises(ValidationFailed) as raised:
        task_args_validate(task_type_name="dts.sleep", args=args)

    assert raised.value.field == "args"
    assert reason in raised.value.message


@pytest.mark.parametrize(
    ("task_type_name", "args"),
    [
        ("dts.sleep", {"seconds": 0.5}),
        ("dts.sleep", {"seconds": 0}),  # the schema's minimum and maximum are allowed
        ("dts.sleep", {"seconds": 86400}),
        ("dts.fail", {}),  # an optional property may be left out
        ("dts.log", {"lines": 10_000, "message": "loaded"}),
        ("dts.echo", {"any": ["json", {"at": "all"}], "é": None}),
    ],
)
def test_args_matching_the_schema_pass(task_type_name, args):
    given = copy.deepcopy(args)

    try:
        task_args_validate(task_type_name=task_type_name, args=args)
    except ValidationFailed as refusal:
        pytest.fail(f"refused: {refusal.message}")

    assert args == given  # validated as given: nothing added, dropped or converted


@pytest.mark.parametrize("seconds", [86400.001, -0.001])
def test_args_just_outside_the_schema_are_refused(seconds):
    with pytest.raises(ValidationFailed, match=r"\$\.seconds"):
        task_args_validate(task_type_name="dts.sleep", args={"seconds": seconds})


def test_dts_log_logs_its_numbered_lines(caplog):
    caplog.set_level("INFO", logger="dts.log")

    assert builtin.log(lines=3, message="loaded") == {"lines": 3}

    assert [record.getMessage() for record in caplog.records] == [
        "loaded 1",
        "loaded 2",
        "loaded 3",
    ]


@pytest.mark.parametrize("name", ["", "Dts.Echo", "dts..echo", "dts.echo!", "1dts", "x" * 201])
def test_a_malformed_task_type_name_cannot_be_registered(name):
    with pytest.raises(ImproperlyConfigured, match="dotted lowercase"):
        task_type(name, schema={"type": "object"})


def test_a_schema_that_is_not_an_object_cannot_be_registered():
    with pytest.raises(ImproperlyConfigured, match="JSON object"):
        task_type("tests.list_args", schema={"type": "array"})


def test_an_invalid_schema_cannot_be_registered():
    with pytest.raises(ImproperlyConfigured, match="invalid schema"):
        task_type("tests.bad_schema", schema={"type": "object", "properties": 5})


def test_a_name_cannot_be_taken_by_a_second_callable():
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        task_type("dts.echo", schema={"type": "object"})(lambda: None)

    assert task_type_get("dts.echo").func is builtin.echo


def test_operator_task_modules_are_loaded_from_the_setting():
    with override_settings(DTS_TASK_MODULES=["tests.workers.operator_tasks"]):
        task_modules_load()

    assert task_type_get("tests.operator.add").func(a=2, b=3) == 5


def test_a_missing_operator_task_module_stops_start_up_with_its_name():
    with (
        override_settings(DTS_TASK_MODULES=["tests.workers.no_such_module"]),
        pytest.raises(ImproperlyConfigured, match=r"tests\.workers\.no_such_module"),
    ):
        task_modules_load()
