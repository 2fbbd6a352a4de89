"""`dts apply` against a live server: the example of docs/cli.md applied, changed and pruned, and
bad files answered with the file and line of every fault."""

import re

import pytest
from django.contrib.auth.models import User

from apps.accounts.models import Role
from apps.jobs.models import Job
from apps.schedules.models import Schedule
from cli.client import ExitCode
from tests.cli.conftest import as_json
from tests.conftest import REPO
from tests.factories import JobFactory, MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)


def docs_example() -> str:
    """The YAML example of docs/cli.md, "Jobs as code"."""
    text = (REPO / "docs" / "cli.md").read_text()
    return re.search(r"```yaml\n(# jobs/ops\.yaml.*?)```", text, re.DOTALL).group(1)


@pytest.fixture
def jobs_dir(tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "ops.yaml").write_text(docs_example())
    (folder / "notes.txt").write_text("not a declaration: a folder's other files are not read")
    return folder


def test_the_docs_example_is_applied_then_unchanged_then_changed_and_pruned(dts, jobs_dir, team):
    other = JobFactory(team=TeamFactory(name="blue"), name="elsewhere", task_type="dts.noop")

    dry = dts("apply", "-f", str(jobs_dir), "--dry-run")
    assert not Job.objects.filter(team=team).exists()
    applied = dts("apply", "-f", str(jobs_dir))
    again = dts("apply", "-f", str(jobs_dir))
    report = Job.objects.get(team=team, name="nightly-report")
    (schedule,) = report.schedules.all()
    (warm,) = Schedule.objects.filter(job__name="cache-warm")
    ops = jobs_dir / "ops.yaml"
    ops.write_text(ops.read_text().replace("0 9 * * 1-5", "30 9 * * 1-5").split("---")[0])
    pruned = dts("apply", "-f", str(jobs_dir), "--prune")

    assert "+++ job ops/nightly-report (declared)" in dry.stdout
    assert "+task_type: dts.echo" in dry.stdout
    assert "(dry run: nothing was changed)" in dry.stderr
    assert applied.stdout.splitlines() == [
        "job ops/nightly-report created",
        f"schedule ops/nightly-report #{schedule.id} created",
        "job ops/cache-warm created",
        f"schedule ops/cache-warm #{warm.id} created",
    ]
    assert "4 created" in applied.stderr
    assert all(line.endswith(" unchanged") for line in again.stdout.splitlines())
    assert "No changes" in again.stderr
    assert schedule.describe() == "At 09:00, Monday through Friday, Europe/Paris"
    assert (report.args, report.max_attempts, report.tags.get().name) == (
        {"greeting": "report"},
        3,
        "nightly",
    )
    assert f"schedule ops/nightly-report #{schedule.id} configured" in pruned.stdout
    assert "job ops/cache-warm deleted" in pruned.stdout
    schedule.refresh_from_db()
    assert schedule.cron_expression == "30 9 * * 1-5"
    assert list(Job.objects.filter(team=team).values_list("name", flat=True)) == ["nightly-report"]
    assert Job.objects.filter(id=other.id).exists()


def test_every_fault_is_shown_with_its_file_and_line_and_nothing_is_applied(dts, tmp_path):
    good = tmp_path / "a.yaml"
    good.write_text("team: ops\nname: fine\ntask_type: dts.noop\n")
    bad = tmp_path / "b.yaml"
    bad.write_text(
        "team: ops\n"
        "name: nightly\n"
        "task_type: dts.noop\n"
        "schedules:\n"
        "  - interval_seconds: 60\n"
        "  - cron_expression: '61 * * * *'\n"
        "---\n"
        "team: ops\n"
        "name: other\n"
        "task_typo: dts.noop\n"
    )

    result = dts("apply", "-f", str(good), "-f", str(bad), expect=ExitCode.INVALID)

    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"Error: {bad}:6: schedules[1].cron_expression: ") for line in lines
    ), lines
    assert f"Error: {bad}:10: task_typo: Unknown field." in lines
    assert f"Error: {bad}:8: task_type: This field is required." in lines
    assert not Job.objects.filter(name__in=["fine", "nightly", "other"]).exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team: ops\n---\n- a\n- list\n", ":3: a document is a mapping of fields."),
        ("team: [ops\n", "while parsing a flow sequence"),
        ("# nothing but a comment\n", "No documents in"),
    ],
)
def test_a_file_that_is_not_documents_of_fields_is_refused_before_any_request(
    dts, tmp_path, text, message
):
    path = tmp_path / "jobs.yaml"
    path.write_text(text)

    result = dts("apply", "-f", str(path), expect=ExitCode.INVALID)

    assert message in result.stderr


def test_a_team_you_are_not_an_admin_of_is_refused(dts, tmp_path):
    blue = TeamFactory(name="blue")
    MembershipFactory(team=blue, user=User.objects.get(username="ana"), role=Role.OPERATOR)
    path = tmp_path / "jobs.yaml"
    path.write_text("team: blue\nname: x\ntask_type: dts.noop\n")

    result = dts("apply", "-f", str(path), expect=ExitCode.AUTH)

    assert "admin role" in result.stderr
    assert not Job.objects.filter(team=blue).exists()


def test_the_result_as_json_is_the_servers(dts, jobs_dir):
    result = as_json(dts("apply", "-f", str(jobs_dir / "ops.yaml"), "-o", "json"))

    assert result["changed"]
    assert [change["action"] for change in result["changes"]] == ["created"] * 4
    assert Schedule.objects.filter(job__team__name="ops").count() == 2
