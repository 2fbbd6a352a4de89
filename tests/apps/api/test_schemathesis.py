"""Schemathesis against the live OpenAPI schema, every check, every phase (examples, coverage,
fuzzing, stateful) once, at most 25 examples per operation and phase: 0 server errors, 0 schema
violations, and every selected operation tested.

No `--max-time`: with a time budget schemathesis repeats fuzzing and stateful testing until the
budget is spent, so the test took the whole budget even when every operation had passed.

The inputs the schema cannot make schemathesis generate (NUL bytes, lone surrogates, deep
nesting, bodies over the limit, unknown task types, bad cron and time zones) are sent by
tests/apps/api/test_errors.py, test_jobs.py and test_schedules.py."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from apps.accounts.services import token_create
from apps.runs.states import RunState
from tests.conftest import REPO
from tests.factories import JobFactory, RunFactory, ScheduleFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 20
TIMEOUT_SECONDS = 300


def test_the_api_keeps_its_schema_under_generated_input(api_server, tmp_path):
    user = UserFactory(username="fuzzer", is_superuser=True, is_staff=True)
    job = JobFactory(team=TeamFactory(name="red"), name="fuzzed", task_type="dts.noop", args={})
    ScheduleFactory(job=job)
    RunFactory(job=job, task_type="dts.noop", args={}, state=RunState.FAILED)
    _, secret = token_create(user=user, name="schemathesis")
    st = Path(sys.executable).with_name("st")
    command = [str(st), "--config-file", str(CONFIG), "--no-color", "run"]
    command += [f"{api_server}/api/schema/?format=json", "--checks", "all"]
    command += ["--header", f"Authorization: Bearer {secret}"]
    # Revoking its own token would leave the rest of the run unauthenticated.
    command += ["--exclude-operation-id", "tokens_revoke"]
    command += ["--max-examples", str(MAX_EXAMPLES), "--seed", "1"]
    command += ["--report", "junit", "--report-dir", str(tmp_path)]

    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env=os.environ | {"SCHEMATHESIS_HOOKS": ""},
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", result.stdout)
    assert selected, result.stdout[-3000:]
    assert selected[1] == selected[2], f"operations left untested:\n{result.stdout[-6000:]}"
