"""The `dts` CLI against a live server: uvicorn on the test database (tests/cli/conftest.py)."""

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time

import pytest
import yaml
from django.db import connection
from django.utils import timezone
from typer.testing import CliRunner

from apps.accounts.models import Role
from apps.accounts.services import token_create
from apps.runs.logs import run_log_capture
from apps.runs.models import Run, RunLogLine
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import run_attempt_end
from apps.runs.states import RunState
from apps.schedules.services import schedule_create
from cli.client import ExitCode
from cli.main import app
from tests.cli.conftest import as_json
from tests.conftest import REPO
from tests.factories import JobFactory, MembershipFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_stores_the_token_readable_only_by_its_owner(api_server, tmp_path, monkeypatch):
    UserFactory(username="ben")
    monkeypatch.setenv("DTS_CONFIG_DIR", str(tmp_path / "config"))
    runner = CliRunner()

    result = runner.invoke(
        app, ["login", "--url", api_server, "--username", "ben"], input="password\n"
    )

    assert result.exit_code == 0, result.output
    path = tmp_path / "config" / "config.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["token"].startswith("dts_")
    wrong = runner.invoke(
        app, ["login", "--url", api_server, "--username", "ben", "--password", "nope"]
    )
    assert wrong.exit_code == ExitCode.AUTH
    assert "Wrong user name or password" in wrong.output


def test_jobs_create_apply_show_ls_pause_resume_rm(dts, tmp_path):
    definition = tmp_path / "job.yaml"
    definition.write_text(
        yaml.safe_dump(
            {
                "team": "ops",
                "name": "nightly",
                "task_type": "dts.sleep",
                "args": {"seconds": 1},
                "tags": ["nightly"],
            }
        )
    )

    created = as_json(dts("jobs", "create", "-f", str(definition), "-o", "json"))
    definition.write_text(definition.read_text().replace("seconds: 1", "seconds: 2"))
    applied = as_json(dts("jobs", "apply", "-f", str(definition), "-o", "json"))
    shown = yaml.safe_load(dts("jobs", "show", "nightly", "-o", "yaml").stdout)
    listed = as_json(dts("jobs", "ls", "--tag", "nightly", "-o", "json"))
    paused = as_json(dts("jobs", "pause", "nightly", "-o", "json"))
    resumed = as_json(dts("jobs", "resume", str(created["id"]), "-o", "json"))
    table = dts("jobs", "ls").stdout
    dts("jobs", "rm", "nightly", "--yes")

    assert applied["id"] == created["id"]
    assert shown["args"] == {"seconds": 2}
    assert [job["name"] for job in listed] == ["nightly"]
    assert (paused["enabled"], resumed["enabled"]) == (False, True)
    assert "nightly" in table
    assert dts("jobs", "show", "nightly", expect=ExitCode.NOT_FOUND)


def test_a_bad_definition_exits_invalid_naming_the_field(dts, tmp_path):
    definition = tmp_path / "job.yaml"
    definition.write_text(yaml.safe_dump({"team": "ops", "name": "x", "task_type": "nope.nope"}))

    result = dts("jobs", "create", "-f", str(definition), expect=ExitCode.INVALID)

    assert "(task_type)" in result.output
    definition.write_text("- not\n- a mapping\n")
    dts("jobs", "create", "-f", str(definition), expect=ExitCode.INVALID)


def test_trigger_runs_ls_show_cancel_retry_and_logs(dts, team):
    job = JobFactory(team=team, name="echo", task_type="dts.echo", args={"greeting": "hi"})

    run = as_json(dts("jobs", "trigger", "echo", "--args", '{"greeting": "yo"}', "-o", "json"))
    listed = as_json(dts("runs", "ls", "--job", "echo", "-o", "json"))
    shown = as_json(dts("runs", "show", run["id"], "-o", "json"))
    cancelled = as_json(dts("runs", "cancel", run["id"], "-o", "json"))
    retried = as_json(dts("runs", "retry", run["id"], "-o", "json"))

    assert (run["args"], run["state"]) == ({"greeting": "yo"}, "queued")
    assert [item["id"] for item in listed] == [run["id"]]
    assert shown["attempts"] == []
    assert cancelled["state"] == "cancelled"
    assert retried["job"] == job.id
    dts("runs", "cancel", run["id"], expect=ExitCode.INVALID)  # already over: 409
    dts("jobs", "trigger", "echo", "--args", "{not json", expect=ExitCode.INVALID)


def test_logs_prints_the_lines_and_follow_stops_when_the_run_ends(dts, team):
    run = RunFactory(job=JobFactory(team=team), state=RunState.SUCCEEDED)
    RunLogLine.objects.bulk_create(
        RunLogLine(
            run=run,
            attempt=1,
            sequence=n,
            logged_at=run.created_at,
            level="INFO",
            logger="t",
            message=f"line {n}",
        )
        for n in range(1, 4)
    )

    result = dts("runs", "logs", str(run.id), "--follow")

    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["1", "2", "3"]


def test_trigger_wait_exits_failed_for_a_run_that_does_not_succeed(dts, team):
    JobFactory(team=team, name="doomed", task_type="dts.noop", args={})
    # No worker here: a thread ends the run as failed as soon as it exists.
    failer = threading.Thread(target=fail_the_first_run_of, args=("doomed",), daemon=True)
    failer.start()

    result = dts(
        "jobs",
        "trigger",
        "doomed",
        "--wait",
        "--timeout",
        "20",
        "-o",
        "json",
        expect=ExitCode.FAILED,
    )
    failer.join()

    assert as_json(result)["state"] == "failed"


def fail_the_first_run_of(job_name: str) -> None:
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            if Run.objects.filter(job__name=job_name).update(state=RunState.FAILED):
                return
            time.sleep(0.05)
    finally:
        connection.close()  # this thread's own connection


def test_errors_say_what_went_wrong_with_their_exit_codes(dts, monkeypatch, team):
    blue = JobFactory(team=TeamFactory(name="blue"))
    viewer = MembershipFactory(team=team, user=UserFactory(username="vic"), role=Role.VIEWER).user
    other = JobFactory(team=team, name="mine")

    dts("jobs", "show", str(blue.id), expect=ExitCode.NOT_FOUND)
    monkeypatch.setenv("DTS_TOKEN", token_create(user=viewer, name="v")[1])
    denied = dts("jobs", "pause", str(other.id), expect=ExitCode.AUTH)
    assert "operator role" in denied.output
    monkeypatch.setenv("DTS_TOKEN", "dts_unknown")
    dts("jobs", "ls", expect=ExitCode.AUTH)
    monkeypatch.setenv("DTS_URL", "http://127.0.0.1:1")
    unreachable = dts("jobs", "ls", expect=ExitCode.NETWORK)
    assert "Cannot reach" in unreachable.output
    monkeypatch.delenv("DTS_URL")
    monkeypatch.delenv("DTS_TOKEN")
    assert "Not logged in" in dts("jobs", "ls", expect=ExitCode.AUTH).output


def test_schedules_ls_and_preview_and_workers_ls(dts, team):
    job = JobFactory(team=team, name="cron job", task_type="dts.noop", args={})
    schedule = schedule_create(job=job, kind="cron", cron_expression="0 3 * * *")

    fires = as_json(
        dts("schedules", "preview", "cron job", str(schedule.id), "--count", "2", "-o", "json")
    )
    listed = as_json(dts("schedules", "ls", "cron job", "-o", "json"))
    table = dts("schedules", "ls", "cron job").stdout
    workers = as_json(dts("workers", "ls", "-o", "json"))

    assert [fire["fire_time"][11:16] for fire in fires] == ["03:00", "03:00"]
    assert [item["id"] for item in listed] == [schedule.id]
    assert "At 03:00, UTC" in table
    assert isinstance(workers, list)


def test_schedules_create_update_pause_resume_explain_rm(dts, team, tmp_path):
    JobFactory(team=team, name="report", task_type="dts.noop", args={})

    created = as_json(
        dts("schedules", "create", "report", "--cron", "0 9 * * 1-5", "--timezone",
            "Europe/Paris", "--jitter", "30", "-o", "json")
    )  # fmt: skip
    schedule = str(created["id"])
    shown = yaml.safe_load(dts("schedules", "show", "report", schedule, "-o", "yaml").stdout)
    # From cron to interval: the kind follows the option, and the cron is cleared.
    updated = as_json(
        dts("schedules", "update", "report", schedule, "--interval", "600", "-o", "json")
    )
    paused = as_json(
        dts("schedules", "pause", "report", schedule, "--note", "maintenance", "-o", "json")
    )
    resumed = as_json(dts("schedules", "resume", "report", schedule, "-o", "json"))
    explained = as_json(dts("schedules", "explain", "report", schedule, "-o", "json"))
    table = dts("schedules", "explain", "report", schedule).stdout
    definition = tmp_path / "schedule.yaml"
    definition.write_text(yaml.safe_dump({"kind": "once", "once_at": "2030-01-01T00:00:00Z"}))
    from_file = as_json(dts("schedules", "create", "report", "-f", str(definition), "-o", "json"))
    dts("schedules", "rm", "report", schedule, "--yes")
    listed = as_json(dts("schedules", "ls", "report", "-o", "json"))

    assert (shown["kind"], shown["cron_expression"], shown["timezone"]) == (
        "cron", "0 9 * * 1-5", "Europe/Paris",
    )  # fmt: skip
    assert shown["jitter_seconds"] == 30
    assert (updated["kind"], updated["cron_expression"], updated["interval_seconds"]) == (
        "interval", "", 600,
    )  # fmt: skip
    assert (paused["paused"], paused["pause_note"]) == (True, "maintenance")
    assert resumed["paused"] is False
    assert explained == {"last_fires": [], "skipped": []}
    assert "Latest fires" in table
    assert "Skipped fires" in table
    assert from_file["once_at"].startswith("2030-01-01T00:00:00")
    assert [item["id"] for item in listed] == [from_file["id"]]
    dts("schedules", "show", "report", schedule, expect=ExitCode.NOT_FOUND)


def test_schedules_bad_input_exits_with_the_apis_reason_or_as_bad_options(dts, team, tmp_path):
    JobFactory(team=team, name="report", task_type="dts.noop", args={})

    bad_cron = dts("schedules", "create", "report", "--cron", "61 * * * *", expect=6)
    both = dts("schedules", "create", "report", "--cron", "@daily", "--interval", "60", expect=2)
    nothing = dts("schedules", "create", "report", expect=2)
    zone = dts("schedules", "create", "report", "--cron", "@daily", "--timezone", "Mars/Base",
               expect=6)  # fmt: skip
    listed = as_json(dts("schedules", "ls", "report", "-o", "json"))
    not_a_mapping = tmp_path / "schedule.yaml"
    not_a_mapping.write_text("- cron\n")
    file = dts("schedules", "create", "report", "-f", str(not_a_mapping), expect=6)

    assert "cron_expression" in bad_cron.output
    assert "one of --cron, --interval and --once-at" in both.output
    assert "--cron, --interval, --once-at or -f" in nothing.output
    assert "timezone" in zone.output
    assert "the definition of a schedule is a mapping" in file.output
    assert listed == []  # nothing half-made


def completions(words: str) -> str:
    """What zsh's completion would offer for the command line `words` (the last one being typed)."""
    result = CliRunner().invoke(
        app,
        [],
        prog_name="dts",
        env={"_DTS_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words},
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_tab_completes_job_names_schedule_ids_and_run_ids(dts, team):
    nightly = JobFactory(team=team, name="nightly", task_type="dts.noop", args={})
    JobFactory(team=team, name="hourly", task_type="dts.noop", args={})
    JobFactory(team=TeamFactory(name="others"), name="nightly-other", task_type="dts.noop")
    schedule = schedule_create(job=nightly, kind="cron", cron_expression="0 3 * * *")
    run = run_trigger(job=nightly)

    jobs = completions("dts jobs show nig")
    schedules = completions("dts schedules explain nightly ")
    runs = completions(f"dts runs show {str(run.id)[:4]}")

    assert '"nightly":"team ops"' in jobs
    assert "hourly" not in jobs
    assert "nightly-other" not in jobs  # not one of your teams' jobs
    assert f'"{schedule.id}":"At 03' in schedules  # zsh's escapes then stand for "03:00, UTC"
    assert f'"{run.id}":"dts.noop ' in runs  # then its state: a lane's worker may run it


def test_tab_completes_nothing_and_quietly_when_the_server_is_away(dts, monkeypatch):
    monkeypatch.setenv("DTS_URL", "http://127.0.0.1:9")

    # Nothing offered: zsh falls back to file names, and nothing is printed to the shell.
    assert completions("dts jobs show ni") == "_files\n"


def test_teams_ls_show_members_and_an_admin_manages_the_members(dts, team):
    UserFactory(username="ben")

    listed = as_json(dts("teams", "ls", "-o", "json"))
    shown = as_json(dts("teams", "show", "ops", "-o", "json"))
    added = as_json(dts("teams", "add-member", "ops", "ben", "-o", "json"))
    promoted = as_json(dts("teams", "set-role", "ops", "ben", "operator", "-o", "json"))
    members = as_json(dts("teams", "members", str(team.id), "-o", "json"))
    dts("teams", "remove-member", "ops", "ben", "--yes")
    last_admin = dts("teams", "set-role", "ops", "ana", "viewer", expect=ExitCode.INVALID)
    unknown = dts("teams", "add-member", "ops", "nobody", expect=ExitCode.INVALID)
    not_staff = dts("teams", "set", "ops", "--max-active-schedules", "5", expect=ExitCode.AUTH)
    elsewhere = dts("teams", "members", "red", expect=ExitCode.NOT_FOUND)

    assert [(item["name"], item["role"]) for item in listed] == [("ops", "admin")]
    assert shown["max_active_schedules"] is None
    assert (added["role"], promoted["role"]) == ("viewer", "operator")
    assert members == [
        {"username": "ana", "role": "admin"},
        {"username": "ben", "role": "operator"},
    ]
    assert team.memberships.filter(user__username="ben").count() == 0
    assert "last admin" in last_admin.output
    assert "username" in unknown.output
    assert "superuser" in not_staff.output
    assert "red" in elsewhere.output


def test_the_console_script_is_installed():
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "dts"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )

    assert result.returncode == 0
    assert "jobs" in result.stdout


def in_background(dts, *args: str):
    """Run `dts *args` in a thread; returns the thread and where its result will be."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(done=dts(*args)), daemon=True)
    thread.start()
    return thread, result


def test_logs_follow_streams_a_running_runs_lines_and_stops_when_it_ends(dts, team):
    run = RunFactory(job=JobFactory(team=team), state=RunState.RUNNING, started_at=timezone.now())
    thread, result = in_background(dts, "runs", "logs", str(run.id), "--follow")
    time.sleep(1)  # connected, or it catches up from the REST API: either way, each line once

    with run_log_capture(run_id=run.id, job_id=run.job_id, attempt=1):
        for number in range(1, 4):
            logging.getLogger("task").info("line %s", number)
    assert run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)
    thread.join(20)

    assert not thread.is_alive(), "dts runs logs --follow did not stop when the run ended"
    lines = result["done"].stdout.splitlines()
    assert [line.split()[-1] for line in lines] == ["1", "2", "3"]


def test_watch_prints_each_change_of_state_as_it_happens(dts, team, sent_tasks):
    job = JobFactory(team=team, name="watched", task_type="dts.noop", args={})
    thread, result = in_background(dts, "runs", "watch", "--job", "watched", "--count", "2")
    time.sleep(1)

    runs = [run_trigger(job=job), run_trigger(job=job)]  # (dts itself is busy watching)
    thread.join(20)

    assert not thread.is_alive(), "dts runs watch --count 2 did not stop"
    lines = result["done"].stdout.splitlines()
    assert [line.split()[2] for line in lines] == [str(run.id) for run in runs]
    assert all(f"job {job.id} queued #1" in line for line in lines)


@pytest.fixture
def twins(dts, team):
    """Ana (admin of "ops") is also an operator of "blue"; both teams have a job named "twin"."""
    blue = TeamFactory(name="blue")
    MembershipFactory(team=blue, user=team.memberships.get().user, role=Role.OPERATOR)
    ops_job = JobFactory(team=team, name="twin", task_type="dts.noop", args={})
    blue_job = JobFactory(team=blue, name="twin", task_type="dts.noop", args={})
    return ops_job, blue_job


def test_a_job_name_two_of_your_teams_have_asks_for_the_team(dts, twins):
    ops_job, blue_job = twins

    ambiguous = dts("jobs", "show", "twin", expect=ExitCode.INVALID)
    shown = as_json(dts("jobs", "show", "twin", "--team", "blue", "-o", "json"))
    listed = as_json(dts("runs", "ls", "--job", "twin", "--team", "ops", "-o", "json"))
    missing = dts("jobs", "show", "twin", "--team", "nobody", expect=ExitCode.NOT_FOUND)

    assert "--team" in ambiguous.output
    assert "blue, ops" in ambiguous.output
    assert shown["id"] == blue_job.id
    assert listed == []
    assert "'nobody'" in missing.output
    dts("jobs", "trigger", "twin", expect=ExitCode.INVALID)
    dts("jobs", "pause", "twin", "--team", "ops")
    ops_job.refresh_from_db()
    blue_job.refresh_from_db()
    assert (ops_job.enabled, blue_job.enabled) == (False, True)


def test_apply_changes_the_job_of_the_files_team_only(dts, twins, tmp_path):
    ops_job, blue_job = twins
    definition = tmp_path / "job.yaml"
    body = {"name": "twin", "task_type": "dts.echo", "args": {"greeting": "hi"}}
    definition.write_text(yaml.safe_dump({**body, "team": "ops"}))

    applied = as_json(dts("jobs", "apply", "-f", str(definition), "-o", "json"))

    ops_job.refresh_from_db()
    blue_job.refresh_from_db()
    assert applied["id"] == ops_job.id
    assert (ops_job.task_type, blue_job.task_type) == ("dts.echo", "dts.noop")
    definition.write_text(yaml.safe_dump(body))
    assert "--team" in dts("jobs", "apply", "-f", str(definition), expect=ExitCode.INVALID).output
    assert (
        as_json(dts("jobs", "apply", "-f", str(definition), "--team", "ops", "-o", "json"))["id"]
        == ops_job.id
    )
    definition.write_text(yaml.safe_dump({**body, "team": "blue"}))
    dts("jobs", "apply", "-f", str(definition), "--team", "ops", expect=ExitCode.INVALID)


def test_apply_creates_a_job_of_a_name_another_team_has(dts, tmp_path):
    theirs = JobFactory(team=TeamFactory(name="red"), name="nightly", task_type="dts.noop")
    definition = tmp_path / "job.yaml"
    definition.write_text(
        yaml.safe_dump({"team": "ops", "name": "nightly", "task_type": "dts.echo", "args": {}})
    )

    created = as_json(dts("jobs", "apply", "-f", str(definition), "-o", "json"))

    assert (created["team"], created["name"]) == ("ops", "nightly")
    theirs.refresh_from_db()
    assert created["id"] != theirs.id
    assert theirs.task_type == "dts.noop"


def test_jobs_ls_shows_each_jobs_health_and_filters_by_it(dts, team):
    failing = JobFactory(team=team, name="flaky", task_type="dts.noop", args={})
    for _ in range(3):
        RunFactory(job=failing, state=RunState.FAILED, finished_at=timezone.now())
    JobFactory(team=team, name="resting", task_type="dts.noop", args={}, enabled=False)
    JobFactory(team=team, name="steady", task_type="dts.noop", args={})

    table = dts("jobs", "ls").stdout
    listed = as_json(dts("jobs", "ls", "-o", "json"))
    as_yaml = yaml.safe_load(dts("jobs", "ls", "-o", "yaml").stdout)
    only_failing = as_json(dts("jobs", "ls", "--health", "failing", "-o", "json"))
    refused = dts("jobs", "ls", "--health", "sleepy", expect=ExitCode.INVALID)

    header = next(line for line in table.splitlines() if "name" in line)
    assert "health" in header
    rows = {line.split("│")[2].strip(): line for line in table.splitlines() if "│" in line}
    assert "failing" in rows["flaky"]
    assert "paused" in rows["resting"]
    assert " ok " in rows["steady"]
    assert {job["name"]: job["health"] for job in listed} == {
        "flaky": "failing",
        "resting": "paused",
        "steady": "ok",
    }
    assert {job["name"]: job["health"] for job in as_yaml} == {
        job["name"]: job["health"] for job in listed
    }
    assert all("last_success_at" in job and "next_fire_at" in job for job in listed)
    assert [job["name"] for job in only_failing] == ["flaky"]
    assert "(health)" in refused.output
