from typing import Any


def run_and_attempt(args: Any) -> tuple[str, int]:
    """The run id and attempt number an execute_run message carries (a message without an attempt
    number is for its run's first attempt)."""
    run_id, *rest = args
    return str(run_id), int(rest[0]) if rest else 1
