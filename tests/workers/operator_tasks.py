"""A task module as an operator would write one, loaded through DTS_TASK_MODULES in tests."""

from workers.registry import task_type


@task_type(
    "tests.operator.add",
    schema={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
def add(a: int, b: int) -> int:
    return a + b
