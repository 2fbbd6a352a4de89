"""`dts`: jobs, schedules, runs and workers of a dts server, from the command line.

Every command exits 0 when it did what was asked; see ExitCode (cli/client.py) for the others.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.progress import Progress, SpinnerColumn, TextColumn

from cli.client import ApiError, Client, ExitCode
from cli.config import NotLoggedIn, Settings, settings_load, settings_save
from cli.output import Output, errors, show

TERMINAL_STATES = {"succeeded", "failed", "timed_out", "cancelled", "lost"}
FOLLOW_POLL_SECONDS = 1.0
JOB_COLUMNS = ["id", "name", "team", "task_type", "enabled", "queue", "tags"]
RUN_COLUMNS = ["id", "job", "state", "trigger", "attempt", "created_at", "finished_at"]
WORKER_COLUMNS = ["hostname", "alive", "queues", "concurrency", "last_heartbeat_at"]

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
jobs = typer.Typer(help="Jobs: what to run.", no_args_is_help=True)
schedules = typer.Typer(help="Schedules of a job.", no_args_is_help=True)
runs = typer.Typer(help="Runs: executions of jobs.", no_args_is_help=True)
workers = typer.Typer(help="Workers.", no_args_is_help=True)
app.add_typer(jobs, name="jobs")
app.add_typer(schedules, name="schedules")
app.add_typer(runs, name="runs")
app.add_typer(workers, name="workers")

OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table, json or yaml.", case_sensitive=False)
]
JobArgument = Annotated[str, typer.Argument(help="The job's id or exact name.")]
RunArgument = Annotated[str, typer.Argument(help="The run's id.")]
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
    errors.print(f"[red]Error:[/red] {message}")
    raise typer.Exit(code)


def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except ApiError as error:
        fail(str(error), error.exit_code)


def job_id(api: Client, job: str) -> int:
    if job.isdigit():
        return int(job)
    found = [item for item in call(api.pages, "/api/v1/jobs/", search=job) if item["name"] == job]
    if not found:
        fail(f"No job named {job!r}.", ExitCode.NOT_FOUND)
    return int(found[0]["id"])


def definition_read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        fail(f"{path}: {error}", ExitCode.INVALID)
    if not isinstance(data, dict):
        fail(f"{path}: a job definition is a mapping of fields.", ExitCode.INVALID)
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


@jobs.command("ls")
def jobs_ls(
    output: OutputOption = Output.TABLE,
    team: str | None = None,
    tag: str | None = None,
    task_type: str | None = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    search: str | None = None,
) -> None:
    """List jobs."""
    filters = {"team": team, "tag": tag, "task_type": task_type, "search": search}
    if enabled is not None:
        filters["enabled"] = str(enabled).lower()
    show(call(client().pages, "/api/v1/jobs/", **filters), output, JOB_COLUMNS)


@jobs.command("show")
def jobs_show(job: JobArgument, output: OutputOption = Output.TABLE) -> None:
    """Show a job."""
    api = client()
    show(call(api.get, f"/api/v1/jobs/{job_id(api, job)}/"), output)


@jobs.command("create")
def jobs_create(file: FileOption, output: OutputOption = Output.TABLE) -> None:
    """Create a job from a file."""
    show(call(client().post, "/api/v1/jobs/", definition_read(file)), output)


@jobs.command("apply")
def jobs_apply(file: FileOption, output: OutputOption = Output.TABLE) -> None:
    """Create the job the file defines, or bring the existing job of that name in line with it."""
    definition = definition_read(file)
    api = client()
    name = definition.get("name")
    if not isinstance(name, str) or not name:
        fail(f"{file}: the job needs a name.", ExitCode.INVALID)
    existing = [job for job in call(api.pages, "/api/v1/jobs/", search=name) if job["name"] == name]
    if not existing:
        show(call(api.post, "/api/v1/jobs/", definition), output)
        return
    changes = {key: value for key, value in definition.items() if key != "team"}
    show(call(api.patch, f"/api/v1/jobs/{existing[0]['id']}/", changes), output)


@jobs.command("trigger")
def jobs_trigger(
    job: JobArgument,
    args: Annotated[
        str | None, typer.Option(help="JSON arguments replacing the job's for this run.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the run ends.")] = False,
    timeout: Annotated[float, typer.Option(help="Longest wait, in seconds.")] = 3600,
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
    run = call(api.post, f"/api/v1/jobs/{job_id(api, job)}/trigger/", body)
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
def jobs_pause(job: JobArgument, output: OutputOption = Output.TABLE) -> None:
    """Pause a job: its schedules stop firing."""
    api = client()
    show(call(api.post, f"/api/v1/jobs/{job_id(api, job)}/pause/"), output)


@jobs.command("resume")
def jobs_resume(job: JobArgument, output: OutputOption = Output.TABLE) -> None:
    """Resume a paused job."""
    api = client()
    show(call(api.post, f"/api/v1/jobs/{job_id(api, job)}/resume/"), output)


@jobs.command("rm")
def jobs_rm(
    job: JobArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a job with its schedules and runs."""
    api = client()
    identifier = job_id(api, job)
    if not yes:
        typer.confirm(f"Delete job {job} with its schedules and runs?", abort=True)
    call(api.delete, f"/api/v1/jobs/{identifier}/")
    errors.print(f"Deleted job {job}.")


@schedules.command("ls")
def schedules_ls(job: JobArgument, output: OutputOption = Output.TABLE) -> None:
    """List a job's schedules."""
    api = client()
    columns = ["id", "kind", "cron_expression", "interval_seconds", "timezone", "next_fire_at"]
    show(call(api.get, f"/api/v1/jobs/{job_id(api, job)}/schedules/"), output, columns)


@schedules.command("preview")
def schedules_preview(
    job: JobArgument,
    schedule: Annotated[int, typer.Argument(help="The schedule's id.")],
    count: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    output: OutputOption = Output.TABLE,
) -> None:
    """The next fire times of a schedule."""
    api = client()
    path = f"/api/v1/jobs/{job_id(api, job)}/schedules/{schedule}/preview/"
    fires = call(api.get, path, count=count)["fire_times"]
    show([{"fire_time": fire} for fire in fires], output)


@runs.command("ls")
def runs_ls(
    output: OutputOption = Output.TABLE,
    job: Annotated[str | None, typer.Option(help="A job's id or name.")] = None,
    state: str | None = None,
    trigger: str | None = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List runs, newest first."""
    api = client()
    filters = {"job": job_id(api, job) if job else None, "state": state, "trigger": trigger}
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
) -> None:
    """Print every change of state of your teams' runs (or one job's) as it happens."""
    api = client()
    path = f"/ws/jobs/{job_id(api, job)}/" if job else "/ws/runs/"
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


@workers.command("ls")
def workers_ls(output: OutputOption = Output.TABLE) -> None:
    """List workers with their queues and last heartbeat."""
    show(call(client().get, "/api/v1/workers/"), output, WORKER_COLUMNS)
