"""`dts`: jobs, schedules, runs and workers of a dts server, from the command line.

Every command exits 0 when it did what was asked; see ExitCode (cli/client.py) for the others.
"""

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.tree import Tree

from cli import completion, manifests
from cli.client import ApiError, Client, ExitCode
from cli.config import NotLoggedIn, Settings, settings_load, settings_save
from cli.output import Output, console, errors, show

TERMINAL_STATES = {"succeeded", "failed", "timed_out", "cancelled", "lost"}
FOLLOW_POLL_SECONDS = 1.0
JOB_COLUMNS = ["id", "name", "team", "task_type", "enabled", "queue", "tags", "health"]
JOB_HEALTHS = ["ok", "late", "missed", "failing", "paused"]
RUN_COLUMNS = ["id", "job", "state", "trigger", "attempt", "created_at", "finished_at"]
WORKER_COLUMNS = ["hostname", "alive", "queues", "concurrency", "last_heartbeat_at"]

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
jobs = typer.Typer(help="Jobs: what to run.", no_args_is_help=True)
schedules = typer.Typer(help="Schedules of a job.", no_args_is_help=True)
runs = typer.Typer(help="Runs: executions of jobs.", no_args_is_help=True)
workers = typer.Typer(help="Workers.", no_args_is_help=True)
teams = typer.Typer(help="Teams, their members and roles.", no_args_is_help=True)
workflows = typer.Typer(help="Workflows: jobs that depend on jobs.", no_args_is_help=True)
webhooks = typer.Typer(
    help="Webhooks: what a team is told of its jobs and workflows.", no_args_is_help=True
)
app.add_typer(jobs, name="jobs")
app.add_typer(schedules, name="schedules")
app.add_typer(runs, name="runs")
app.add_typer(workers, name="workers")
app.add_typer(teams, name="teams")
app.add_typer(workflows, name="workflows")
app.add_typer(webhooks, name="webhooks")

OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table, json or yaml.", case_sensitive=False)
]
JobArgument = Annotated[
    str, typer.Argument(help="The job's id or exact name.", autocompletion=completion.job_names)
]
TeamOption = Annotated[
    str | None,
    typer.Option(help="The job's team, when several of your teams have a job of that name."),
]
RunArgument = Annotated[
    str, typer.Argument(help="The run's id.", autocompletion=completion.run_ids)
]
FileOption = Annotated[
    Path, typer.Option("--file", "-f", help="A YAML (or JSON) file defining the job.")
]


def main() -> None:
    app()


def client() -> Client:
    try:
        return Client.from_settings(settings_load())
    except NotLoggedIn as error:
        fail(str(error), ExitCode.AUTH)


def fail(message: str, code: int) -> NoReturn:
    errors.print(f"[red]Error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except ApiError as error:
        fail(str(error), error.exit_code)


def job_id(api: Client, job: str, team: str | None = None) -> int:
    """The id of the job `job` names (its id, or its name in one of your teams, or in `team`)."""
    return named_id(api, "/api/v1/jobs/", job, team, what="job")


def job_named(api: Client, name: str, team: str | None) -> dict[str, Any]:
    """Your job of this name (in `team`, if given); none is NOT_FOUND, and a name that several
    of your teams use is refused (INVALID) until --team says which."""
    found = job_of_name(api, name, team)
    if found is None:
        not_found("job", name, team)
    return found


def named_id(api: Client, path: str, value: str, team: str | None, *, what: str) -> int:
    """The id of the object of the list at `path` that `value` names: its id, or its name (as
    `named` finds it); none is NOT_FOUND."""
    if value.isdigit():
        return int(value)
    found = named(api, path, value, team, what=what)
    if found is None:
        not_found(what, value, team)
    return int(found["id"])


def not_found(what: str, name: str, team: str | None) -> NoReturn:
    where = f" in team {team!r}" if team else " in your teams"
    fail(f"No {what} named {name!r}{where}.", ExitCode.NOT_FOUND)


def job_of_name(api: Client, name: str, team: str | None) -> dict[str, Any] | None:
    return named(api, "/api/v1/jobs/", name, team, what="job")


def named(api: Client, path: str, name: str, team: str | None, *, what: str) -> Any:
    """The object of the list at `path` with this name (in `team`, if given), or None; a name
    that several of your teams use is refused (INVALID) until --team says which."""
    found = call(api.pages, path, name=name, team=team)
    if len(found) > 1:
        teams = ", ".join(sorted(str(item["team"]) for item in found))
        fail(
            f"Several of your teams have a {what} named {name!r} ({teams}): say which with --team.",
            ExitCode.INVALID,
        )
    return dict(found[0]) if found else None


def definition_read(path: Path, what: str = "a job") -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        fail(f"{path}: {error}", ExitCode.INVALID)
    if not isinstance(data, dict):
        fail(f"{path}: the definition of {what} is a mapping of fields.", ExitCode.INVALID)
    return data


@app.command()
def login(
    url: Annotated[str, typer.Option(help="The dts server, e.g. https://dts.example.com.")],
    username: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    name: Annotated[str, typer.Option(help="A name for the token.")] = "dts cli",
    days: Annotated[int, typer.Option(min=1, max=365, help="Days the token lasts.")] = 90,
    read_only: Annotated[bool, typer.Option(help="A token that can only read.")] = False,
) -> None:
    """Sign in: trade a user name and password for a token, kept in your config folder."""
    api = Client(url.rstrip("/"))
    body = {
        "username": username,
        "password": password,
        "name": name,
        "days": days,
        "read_only": read_only,
    }
    token = call(api.post, "/api/v1/tokens/", body)
    path = settings_save(Settings(url=url.rstrip("/"), token=token["token"]))
    errors.print(f"Logged in as {username}; token {token['prefix']}… saved in {path}.")


@app.command("apply")
def apply(
    files: Annotated[
        list[Path],
        typer.Option(
            "--file",
            "-f",
            help="A YAML file of declared jobs, or a folder of them; may be repeated.",
        ),
    ],
    prune: Annotated[
        bool, typer.Option(help="Delete the jobs of the files' teams that no file declares.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print the changes as a diff, and change nothing.")
    ] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Make the jobs and workflows the files declare, with the jobs' schedules, so: all of it,
    or nothing (docs/cli.md, "Jobs as code")."""
    documents_apply(files, prune=prune, dry_run=dry_run, output=output)


def documents_apply(
    files: list[Path],
    *,
    prune: bool,
    dry_run: bool,
    output: Output,
    kind: str | None = None,
) -> None:
    """Apply the documents of the files (a document without `kind` is a `kind`, if given)."""
    try:
        documents, sources = manifests.documents_read(files)
    except manifests.Unreadable as error:
        fail(str(error), ExitCode.INVALID)
    if not documents:
        fail(f"No documents in {', '.join(map(str, files))}.", ExitCode.INVALID)
    if kind is not None:
        documents = [{"kind": kind, **document} for document in documents]
    body = {"documents": documents, "prune": prune, "dry_run": dry_run}
    try:
        result = client().post("/api/v1/apply/", manifests.json_ready(body))
    except ApiError as error:
        for line in manifests.refusals_located(error.errors, sources) or [str(error)]:
            errors.print(f"[red]Error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from error
    if output != Output.TABLE:
        show(result, output)
        return
    changes = result["changes"]
    for change in changes:
        if dry_run and change["action"] != "unchanged":
            console.print(manifests.change_diff(change), markup=False, highlight=False, end="")
        else:
            console.print(f"{manifests.change_name(change)} {change['action']}", markup=False)
    counts = Counter(change["action"] for change in changes)
    if not result["changed"]:
        errors.print(f"No changes: {len(changes)} objects as declared.")
    else:
        summary = ", ".join(f"{count} {action}" for action, count in sorted(counts.items()))
        errors.print(f"{summary}{' (dry run: nothing was changed)' if dry_run else ''}.")


@jobs.command("ls")
def jobs_ls(
    output: OutputOption = Output.TABLE,
    team: str | None = None,
    tag: str | None = None,
    task_type: str | None = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    search: str | None = None,
    health: Annotated[
        str | None, typer.Option(help=f"Only jobs of this health: {', '.join(JOB_HEALTHS)}.")
    ] = None,
) -> None:
    """List jobs, with their health."""
    filters = {
        "team": team,
        "tag": tag,
        "task_type": task_type,
        "search": search,
        "health": health,
    }
    if enabled is not None:
        filters["enabled"] = str(enabled).lower()
    show(call(client().pages, "/api/v1/jobs/", **filters), output, JOB_COLUMNS)


@jobs.command("show")
def jobs_show(
    job: JobArgument, team: TeamOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Show a job."""
    api = client()
    show(call(api.get, f"/api/v1/jobs/{job_id(api, job, team)}/"), output)


@jobs.command("create")
def jobs_create(file: FileOption, output: OutputOption = Output.TABLE) -> None:
    """Create a job from a file."""
    show(call(client().post, "/api/v1/jobs/", definition_read(file)), output)


@jobs.command("apply")
def jobs_apply(
    file: FileOption, team: TeamOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Create the job the file defines, or bring the existing job of that name in its team in
    line with it; the team is the file's `team` or --team."""
    definition = definition_read(file)
    name, named_team = definition.get("name"), definition.get("team")
    if not isinstance(name, str) or not name:
        fail(f"{file}: the job needs a name.", ExitCode.INVALID)
    if named_team is not None and not isinstance(named_team, str):
        fail(f"{file}: the team is a team's name.", ExitCode.INVALID)
    if team is not None and named_team is not None and team != named_team:
        fail(f"{file} names team {named_team!r} but --team says {team!r}.", ExitCode.INVALID)
    team = team or named_team
    api = client()
    existing = job_of_name(api, name, team)
    if existing is None:
        body = definition if team is None else {**definition, "team": team}
        show(call(api.post, "/api/v1/jobs/", body), output)
        return
    changes = {key: value for key, value in definition.items() if key != "team"}
    show(call(api.patch, f"/api/v1/jobs/{existing['id']}/", changes), output)


@jobs.command("trigger")
def jobs_trigger(
    job: JobArgument,
    args: Annotated[
        str | None, typer.Option(help="JSON arguments replacing the job's for this run.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the run ends.")] = False,
    timeout: Annotated[float, typer.Option(help="Longest wait, in seconds.")] = 3600,
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Run a job now; with --wait, exit 0 only if the run succeeded."""
    body: dict[str, Any] = {}
    if args is not None:
        try:
            body["args"] = json.loads(args)
        except ValueError as error:
            fail(f"--args is not JSON: {error}", ExitCode.INVALID)
    api = client()
    run = call(api.post, f"/api/v1/jobs/{job_id(api, job, team)}/trigger/", body)
    if wait:
        run = run_wait(api, run["id"], timeout)
    show(run, output)
    if wait and run["state"] != "succeeded":
        raise typer.Exit(ExitCode.FAILED)


def run_wait(api: Client, run_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=errors) as progress:
        task = progress.add_task(f"run {run_id}: queued")
        while True:
            run = call(api.get, f"/api/v1/runs/{run_id}/")
            progress.update(task, description=f"run {run_id}: {run['state']}")
            if run["state"] in TERMINAL_STATES:
                return dict(run)
            if time.monotonic() > deadline:
                fail(f"Run {run_id} still {run['state']} after {timeout:g} s.", ExitCode.FAILED)
            time.sleep(FOLLOW_POLL_SECONDS)


@jobs.command("pause")
def jobs_pause(
    job: JobArgument, team: TeamOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Pause a job: its schedules stop firing."""
    api = client()
    show(call(api.post, f"/api/v1/jobs/{job_id(api, job, team)}/pause/"), output)


@jobs.command("resume")
def jobs_resume(
    job: JobArgument, team: TeamOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Resume a paused job."""
    api = client()
    show(call(api.post, f"/api/v1/jobs/{job_id(api, job, team)}/resume/"), output)


@jobs.command("rm")
def jobs_rm(
    job: JobArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    team: TeamOption = None,
) -> None:
    """Delete a job with its schedules and runs."""
    api = client()
    identifier = job_id(api, job, team)
    if not yes:
        typer.confirm(f"Delete job {job} with its schedules and runs?", abort=True)
    call(api.delete, f"/api/v1/jobs/{identifier}/")
    errors.print(f"Deleted job {job}.")


ScheduleArgument = Annotated[
    int, typer.Argument(help="The schedule's id.", autocompletion=completion.schedule_ids)
]
SCHEDULE_COLUMNS = ["id", "description", "enabled", "paused", "next_fire_at"]
# The schedule options, by the API field each sets.
SCHEDULE_OPTIONS = {
    "cron": "cron_expression",
    "interval": "interval_seconds",
    "once_at": "once_at",
    "timezone": "timezone",
    "start_at": "start_at",
    "end_at": "end_at",
    "jitter": "jitter_seconds",
    "misfire": "misfire_policy",
    "enabled": "enabled",
}
# The fields that say what a schedule fires, each of its kind.
KINDS = {"cron_expression": "cron", "interval_seconds": "interval", "once_at": "once"}
ScheduleFileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="A YAML (or JSON) file of the schedule's fields."),
]
CronOption = Annotated[
    str | None, typer.Option("--cron", help="A cron expression (5 fields or an @alias).")
]
IntervalOption = Annotated[
    int | None, typer.Option("--interval", help="Fire every this many seconds.")
]
OnceAtOption = Annotated[
    str | None, typer.Option("--once-at", help="Fire once, at this ISO 8601 time.")
]
TimezoneOption = Annotated[
    str | None, typer.Option(help="The cron's IANA time zone, e.g. Europe/Paris.")
]
StartOption = Annotated[str | None, typer.Option(help="Fire from this ISO 8601 time.")]
EndOption = Annotated[str | None, typer.Option(help="Fire until this ISO 8601 time.")]
JitterOption = Annotated[
    int | None, typer.Option("--jitter", help="Fire up to this many seconds late, at random.")
]
MisfireOption = Annotated[
    str | None,
    typer.Option(
        "--misfire", help="What a scheduler outage's missed fires do: skip, run_once or catch_up."
    ),
]
EnabledOption = Annotated[bool | None, typer.Option("--enabled/--disabled")]


def schedule_fields(file: Path | None, **options: Any) -> dict[str, Any]:
    """The schedule's fields from the file (if any) and the options given (which win); the kind
    follows from the one of --cron, --interval or --once-at given."""
    fields = definition_read(file, "a schedule") if file is not None else {}
    given = {SCHEDULE_OPTIONS[name]: value for name, value in options.items() if value is not None}
    kinds = [KINDS[key] for key in KINDS if key in given]
    if len(kinds) > 1:
        fail("Give one of --cron, --interval and --once-at.", ExitCode.USAGE)
    if kinds:
        # The other kinds' fields are cleared, so that a schedule can change its kind.
        fields |= {key: "" if key == "cron_expression" else None for key in KINDS}
        fields["kind"] = kinds[0]
    return fields | given


def schedule_path(api: Client, job: str, team: str | None, schedule: int | None = None) -> str:
    path = f"/api/v1/jobs/{job_id(api, job, team)}/schedules/"
    return path if schedule is None else f"{path}{schedule}/"


@schedules.command("ls")
def schedules_ls(
    job: JobArgument, team: TeamOption = None, output: OutputOption = Output.TABLE
) -> None:
    """List a job's schedules."""
    api = client()
    show(call(api.get, schedule_path(api, job, team)), output, SCHEDULE_COLUMNS)


@schedules.command("preview")
def schedules_preview(
    job: JobArgument,
    schedule: ScheduleArgument,
    count: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The next fire times of a schedule."""
    api = client()
    path = schedule_path(api, job, team, schedule) + "preview/"
    fires = call(api.get, path, count=count)["fire_times"]
    show([{"fire_time": fire} for fire in fires], output)


@schedules.command("show")
def schedules_show(
    job: JobArgument,
    schedule: ScheduleArgument,
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show a schedule."""
    api = client()
    show(call(api.get, schedule_path(api, job, team, schedule)), output)


@schedules.command("create")
def schedules_create(
    job: JobArgument,
    file: ScheduleFileOption = None,
    cron: CronOption = None,
    interval: IntervalOption = None,
    once_at: OnceAtOption = None,
    timezone: TimezoneOption = None,
    start_at: StartOption = None,
    end_at: EndOption = None,
    jitter: JitterOption = None,
    misfire: MisfireOption = None,
    enabled: EnabledOption = None,
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Add a schedule to a job: --cron, --interval or --once-at, and the options, or a file."""
    fields = schedule_fields(
        file,
        cron=cron,
        interval=interval,
        once_at=once_at,
        timezone=timezone,
        start_at=start_at,
        end_at=end_at,
        jitter=jitter,
        misfire=misfire,
        enabled=enabled,
    )
    if not fields:
        fail("Say what the schedule fires: --cron, --interval, --once-at or -f.", ExitCode.USAGE)
    api = client()
    show(call(api.post, schedule_path(api, job, team), fields), output)


@schedules.command("update")
def schedules_update(
    job: JobArgument,
    schedule: ScheduleArgument,
    file: ScheduleFileOption = None,
    cron: CronOption = None,
    interval: IntervalOption = None,
    once_at: OnceAtOption = None,
    timezone: TimezoneOption = None,
    start_at: StartOption = None,
    end_at: EndOption = None,
    jitter: JitterOption = None,
    misfire: MisfireOption = None,
    enabled: EnabledOption = None,
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Change a schedule's fields: those the options or the file give; the rest stay."""
    fields = schedule_fields(
        file,
        cron=cron,
        interval=interval,
        once_at=once_at,
        timezone=timezone,
        start_at=start_at,
        end_at=end_at,
        jitter=jitter,
        misfire=misfire,
        enabled=enabled,
    )
    if not fields:
        fail("Nothing to change: give an option or -f.", ExitCode.USAGE)
    api = client()
    show(call(api.patch, schedule_path(api, job, team, schedule), fields), output)


@schedules.command("pause")
def schedules_pause(
    job: JobArgument,
    schedule: ScheduleArgument,
    note: Annotated[str, typer.Option(help="Why, for whoever looks at it next.")] = "",
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Pause a schedule: it stops firing, and the fires it misses are recorded as skipped."""
    api = client()
    path = schedule_path(api, job, team, schedule) + "pause/"
    show(call(api.post, path, {"note": note}), output)


@schedules.command("resume")
def schedules_resume(
    job: JobArgument,
    schedule: ScheduleArgument,
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Resume a paused schedule from now."""
    api = client()
    show(call(api.post, schedule_path(api, job, team, schedule) + "resume/"), output)


@schedules.command("rm")
def schedules_rm(
    job: JobArgument,
    schedule: ScheduleArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    team: TeamOption = None,
) -> None:
    """Delete a schedule (its runs stay)."""
    api = client()
    path = schedule_path(api, job, team, schedule)
    if not yes:
        typer.confirm(f"Delete schedule {schedule} of job {job}?", abort=True)
    call(api.delete, path)
    errors.print(f"Deleted schedule {schedule} of job {job}.")


@schedules.command("explain")
def schedules_explain(
    job: JobArgument,
    schedule: ScheduleArgument,
    team: TeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Why a schedule fired or did not: its latest fires, and the fires it skipped with why."""
    api = client()
    explanation = call(api.get, schedule_path(api, job, team, schedule) + "explain/")
    if output != Output.TABLE:
        show(explanation, output)
        return
    console.print("[bold]Latest fires[/bold]")
    show(explanation["last_fires"], output, ["id", "scheduled_for", "state", "created_at"])
    console.print("[bold]Skipped fires[/bold]")
    columns = ["reason", "first_scheduled_for", "last_scheduled_for", "count"]
    show(explanation["skipped"], output, columns)


@runs.command("ls")
def runs_ls(
    output: OutputOption = Output.TABLE,
    job: Annotated[str | None, typer.Option(help="A job's id or name.")] = None,
    state: str | None = None,
    trigger: str | None = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    team: TeamOption = None,
) -> None:
    """List runs, newest first."""
    api = client()
    filters = {"job": job_id(api, job, team) if job else None, "state": state, "trigger": trigger}
    found = call(api.pages, "/api/v1/runs/", most=limit, limit=min(limit, 500), **filters)
    show(found, output, RUN_COLUMNS)


@runs.command("show")
def runs_show(run: RunArgument, output: OutputOption = Output.TABLE) -> None:
    """Show a run with its attempts."""
    show(call(client().get, f"/api/v1/runs/{run}/"), output)


@runs.command("cancel")
def runs_cancel(run: RunArgument, output: OutputOption = Output.TABLE) -> None:
    """Cancel a run: at once if it has not started, else its task is stopped."""
    show(call(client().post, f"/api/v1/runs/{run}/cancel/"), output)


@runs.command("retry")
def runs_retry(run: RunArgument, output: OutputOption = Output.TABLE) -> None:
    """Run again, as a new run, a run that ended without success."""
    show(call(client().post, f"/api/v1/runs/{run}/retry/"), output)


@runs.command("logs")
def runs_logs(
    run: RunArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream new lines until the run ends.")
    ] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Print a run's log; with --follow, stream it (WebSocket) until the run ends."""
    api = client()
    printed: set[tuple[int, int]] = set()
    read = {"after": 0}  # the sequence number of the last line read from the REST API

    def print_new(lines: list[dict[str, Any]]) -> None:
        for line in lines:
            if (line["attempt"], line["sequence"]) in printed:
                continue
            printed.add((line["attempt"], line["sequence"]))
            if output == Output.TABLE:
                print(f"{line['logged_at']} #{line['attempt']} {line['level']} {line['message']}")
            else:
                show(line, output)

    def print_written() -> bool:
        """Print the lines written since the last read; whether the run has ended."""
        while True:
            page = call(api.get, f"/api/v1/runs/{run}/log/", after=read["after"], limit=1000)
            print_new(page["lines"])
            if not page["lines"]:
                return bool(page["finished"])
            read["after"] = page["next_after"]

    ended = print_written()
    if ended or not follow:
        return
    for event in followed(api, f"/ws/runs/{run}/"):
        if event is None or event["type"].removeprefix("dts.run.") in TERMINAL_STATES:
            if print_written():
                return
        elif event["type"] == "dts.run.log":
            print_new(event["data"]["lines"])


@runs.command("watch")
def runs_watch(
    job: Annotated[str | None, typer.Option(help="Only this job's runs (id or name).")] = None,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many changes (default: never).")
    ] = None,
    output: OutputOption = Output.TABLE,
    team: TeamOption = None,
) -> None:
    """Print every change of state of your teams' runs (or one job's) as it happens."""
    api = client()
    path = f"/ws/jobs/{job_id(api, job, team)}/" if job else "/ws/runs/"
    seen = 0
    for event in followed(api, path):
        if event is None or not event["type"].startswith("dts.run."):
            continue
        data = event["data"]
        if output == Output.TABLE:
            detail = data.get("worker") or data.get("error") or ""
            print(
                f"{event['time']} run {data['run_id']} job {data['job_id']} "
                f"{data['state']} #{data['attempt']} {detail}".rstrip()
            )
        else:
            show(event, output)
        seen += 1
        if count is not None and seen >= count:
            return


def followed(api: Client, path: str) -> Iterator[dict[str, Any] | None]:
    """Client.follow, its failures said as the CLI says them."""
    try:
        yield from api.follow(path)
    except ApiError as error:
        fail(str(error), error.exit_code)


TeamArgument = Annotated[str, typer.Argument(help="The team's id or name.")]
UserArgument = Annotated[str, typer.Argument(help="The member's user name.")]
ROLES = ["viewer", "operator", "admin"]
RoleArgument = Annotated[str, typer.Argument(help=f"One of {', '.join(ROLES)}.")]


def team_path(api: Client, team: str) -> str:
    """The API path of the team `team` names (its id, or the name of one of your teams)."""
    if team.isdigit():
        return f"/api/v1/teams/{team}/"
    found = [item for item in call(api.get, "/api/v1/teams/") if item["name"] == team]
    if not found:
        fail(f"No team named {team!r} among your teams.", ExitCode.NOT_FOUND)
    return f"/api/v1/teams/{found[0]['id']}/"


@teams.command("ls")
def teams_ls(output: OutputOption = Output.TABLE) -> None:
    """List your teams (every team, for a superuser), with your role in each."""
    show(call(client().get, "/api/v1/teams/"), output, ["id", "name", "role"])


@teams.command("show")
def teams_show(team: TeamArgument, output: OutputOption = Output.TABLE) -> None:
    """Show a team and its settings."""
    api = client()
    show(call(api.get, team_path(api, team)), output)


@teams.command("set")
def teams_set(
    team: TeamArgument,
    max_active_schedules: Annotated[
        int | None, typer.Option(help="Its cap on enabled, unpaused schedules.")
    ] = None,
    default_cap: Annotated[
        bool, typer.Option("--default-cap", help="Back to the platform's default cap.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Change a team's settings (superusers only)."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if max_active_schedules is not None and default_cap:
        fail("Give --max-active-schedules or --default-cap, not both.", ExitCode.USAGE)
    if max_active_schedules is not None or default_cap:
        changes["max_active_schedules"] = max_active_schedules
    if not changes:
        fail(
            "Nothing to change: give --name, --max-active-schedules or --default-cap.",
            ExitCode.USAGE,
        )
    api = client()
    show(call(api.patch, team_path(api, team), changes), output)


@teams.command("members")
def teams_members(team: TeamArgument, output: OutputOption = Output.TABLE) -> None:
    """List a team's members and their roles."""
    api = client()
    show(call(api.get, team_path(api, team) + "members/"), output, ["username", "role"])


@teams.command("add-member")
def teams_add_member(
    team: TeamArgument,
    username: UserArgument,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "viewer",
    output: OutputOption = Output.TABLE,
) -> None:
    """Make a user a member of a team (its admins, or a superuser)."""
    api = client()
    body = {"username": username, "role": role}
    show(call(api.post, team_path(api, team) + "members/", body), output)


@teams.command("set-role")
def teams_set_role(
    team: TeamArgument,
    username: UserArgument,
    role: RoleArgument,
    output: OutputOption = Output.TABLE,
) -> None:
    """Change a member's role (its admins, or a superuser); a team keeps at least one admin."""
    api = client()
    path = f"{team_path(api, team)}members/{username}/"
    show(call(api.patch, path, {"role": role}), output)


@teams.command("remove-member")
def teams_remove_member(
    team: TeamArgument,
    username: UserArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a member from a team (its admins, or a superuser); its last admin stays."""
    api = client()
    path = f"{team_path(api, team)}members/{username}/"
    if not yes:
        typer.confirm(f"Remove {username} from team {team}?", abort=True)
    call(api.delete, path)
    errors.print(f"Removed {username} from team {team}.")


@workers.command("ls")
def workers_ls(output: OutputOption = Output.TABLE) -> None:
    """List workers with their queues and last heartbeat."""
    show(call(client().get, "/api/v1/workers/"), output, WORKER_COLUMNS)


WORKFLOW_COLUMNS = ["id", "name", "team", "description"]
WORKFLOW_RUN_COLUMNS = ["id", "workflow_name", "team", "state", "trigger", "created_at"]
WORKFLOW_TERMINAL_STATES = {"succeeded", "failed", "cancelled"}
STEP_STYLES = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "bright_black",
    "skipped": "bright_black",
    "running": "yellow",
    "pending": "blue",
}
WorkflowArgument = Annotated[str, typer.Argument(help="The workflow's id or exact name.")]
WorkflowRunArgument = Annotated[str, typer.Argument(help="The workflow run's id.")]
WorkflowTeamOption = Annotated[
    str | None,
    typer.Option(help="The workflow's team, when several of your teams have one of that name."),
]


def workflow_id(api: Client, workflow: str, team: str | None) -> int:
    return named_id(api, "/api/v1/workflows/", workflow, team, what="workflow")


def workflow_tree(run: dict[str, Any]) -> Tree:
    """A workflow run as a tree: each step under the first step it depends on."""
    tree = Tree(
        f"[bold]{escape(run['workflow_name'])}[/bold] run {run['id']} "
        f"[{STEP_STYLES.get(run['state'], 'white')}]{run['state']}[/]"
    )
    nodes: dict[str, Tree] = {}
    for step in run["steps"]:
        label = (
            f"{escape(step['name'])} [{STEP_STYLES.get(step['state'], 'white')}]{step['state']}[/]"
        )
        if step["condition"] != "on_success":
            label += f" ({step['condition']})"
        if len(step["depends_on"]) > 1:
            label += f" after {', '.join(map(escape, step['depends_on']))}"
        if step["run"]:
            label += f" [bright_black]run {step['run']}[/]"
        parent = nodes.get(step["depends_on"][0]) if step["depends_on"] else None
        nodes[step["name"]] = (parent or tree).add(label)
    return tree


def styled(state: str) -> str:
    return f"[{STEP_STYLES.get(state, 'white')}]{state}[/]"


def workflow_run_show(run: dict[str, Any], output: Output) -> None:
    if output == Output.TABLE:
        console.print(workflow_tree(run))
    else:
        show(run, output)


@workflows.command("ls")
def workflows_ls(team: str | None = None, output: OutputOption = Output.TABLE) -> None:
    """List workflows."""
    show(call(client().pages, "/api/v1/workflows/", team=team), output, WORKFLOW_COLUMNS)


@workflows.command("show")
def workflows_show(
    workflow: WorkflowArgument, team: WorkflowTeamOption = None, output: OutputOption = Output.YAML
) -> None:
    """Show a workflow with its steps."""
    api = client()
    show(call(api.get, f"/api/v1/workflows/{workflow_id(api, workflow, team)}/"), output)


@workflows.command("apply")
def workflows_apply(
    files: Annotated[
        list[Path],
        typer.Option("--file", "-f", help="A YAML file of workflows, or a folder of them."),
    ],
    dry_run: Annotated[bool, typer.Option(help="Print the changes as a diff.")] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Create the workflows the files declare, or change those of their names to match: `dts
    apply` with `kind: workflow` as each document's default."""
    documents_apply(files, prune=False, dry_run=dry_run, output=output, kind="workflow")


@workflows.command("run")
def workflows_run(
    workflow: WorkflowArgument,
    wait: Annotated[bool, typer.Option(help="Wait until the workflow run ends.")] = False,
    timeout: Annotated[float, typer.Option(help="Longest wait, in seconds.")] = 3600,
    team: WorkflowTeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Run a workflow now; with --wait, exit 0 only if the workflow run succeeded."""
    api = client()
    run = call(api.post, f"/api/v1/workflows/{workflow_id(api, workflow, team)}/trigger/")
    deadline = time.monotonic() + timeout
    while wait and run["state"] not in WORKFLOW_TERMINAL_STATES:
        if time.monotonic() > deadline:
            workflow_run_show(run, output)
            fail(f"Workflow run {run['id']} still {run['state']} after {timeout:g} s.", 1)
        time.sleep(FOLLOW_POLL_SECONDS)
        run = call(api.get, f"/api/v1/workflow-runs/{run['id']}/")
    workflow_run_show(run, output)
    if wait and run["state"] != "succeeded":
        raise typer.Exit(ExitCode.FAILED)


@workflows.command("runs")
def workflows_runs(
    workflow: Annotated[str | None, typer.Argument(help="Only this workflow's runs.")] = None,
    state: Annotated[str | None, typer.Option(help="running, succeeded, failed, cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    team: WorkflowTeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """List workflow runs, newest first."""
    api = client()
    which = workflow_id(api, workflow, team) if workflow else None
    found = call(api.pages, "/api/v1/workflow-runs/", most=limit, workflow=which, state=state)
    show(found, output, WORKFLOW_RUN_COLUMNS)


@workflows.command("tree")
def workflows_tree(run: WorkflowRunArgument, output: OutputOption = Output.TABLE) -> None:
    """Show a workflow run as a tree of its steps, each with its state and run."""
    workflow_run_show(call(client().get, f"/api/v1/workflow-runs/{run}/"), output)


@workflows.command("cancel")
def workflows_cancel(run: WorkflowRunArgument, output: OutputOption = Output.TABLE) -> None:
    """Cancel every unfinished step of a workflow run."""
    workflow_run_show(call(client().post, f"/api/v1/workflow-runs/{run}/cancel/"), output)


@workflows.command("retry")
def workflows_retry(run: WorkflowRunArgument, output: OutputOption = Output.TABLE) -> None:
    """Run again the failed, cancelled and skipped steps of a failed or cancelled workflow run."""
    workflow_run_show(call(client().post, f"/api/v1/workflow-runs/{run}/retry/"), output)


WEBHOOK_COLUMNS = ["id", "name", "team", "url", "enabled"]
DELIVERY_COLUMNS = ["id", "event", "state", "attempts", "response_status", "created_at", "error"]
WebhookArgument = Annotated[str, typer.Argument(help="The webhook's id or exact name.")]
WebhookTeamOption = Annotated[
    str | None,
    typer.Option(help="The webhook's team, when several of your teams have one of that name."),
]


def webhook_path(api: Client, webhook: str, team: str | None) -> str:
    return f"/api/v1/webhooks/{named_id(api, '/api/v1/webhooks/', webhook, team, what='webhook')}/"


@webhooks.command("ls")
def webhooks_ls(team: str | None = None, output: OutputOption = Output.TABLE) -> None:
    """List webhooks."""
    show(call(client().pages, "/api/v1/webhooks/", team=team), output, WEBHOOK_COLUMNS)


@webhooks.command("show")
def webhooks_show(
    webhook: WebhookArgument, team: WebhookTeamOption = None, output: OutputOption = Output.YAML
) -> None:
    """Show a webhook with what it is told of (its secret is never shown)."""
    api = client()
    show(call(api.get, webhook_path(api, webhook, team)), output)


@webhooks.command("deliveries")
def webhooks_deliveries(
    webhook: WebhookArgument,
    state: Annotated[str | None, typer.Option(help="pending, delivered, failed")] = None,
    event: Annotated[str | None, typer.Option(help="run.failed, job.late, ping, …")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    team: WebhookTeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The webhook's delivery log, newest first: each notice's attempts and how the last went."""
    api = client()
    path = f"{webhook_path(api, webhook, team)}deliveries/"
    show(call(api.pages, path, most=limit, state=state, event=event), output, DELIVERY_COLUMNS)


@webhooks.command("ping")
def webhooks_ping(
    webhook: WebhookArgument, team: WebhookTeamOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Send the webhook a `ping` delivery (see how it went with `dts webhooks deliveries`)."""
    api = client()
    show(call(api.post, f"{webhook_path(api, webhook, team)}ping/"), output)


@webhooks.command("redeliver")
def webhooks_redeliver(
    webhook: WebhookArgument,
    delivery: Annotated[str, typer.Argument(help="The failed delivery's id.")],
    team: WebhookTeamOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Send a failed delivery again, from its first attempt."""
    api = client()
    path = f"{webhook_path(api, webhook, team)}deliveries/{delivery}/redeliver/"
    show(call(api.post, path), output)
