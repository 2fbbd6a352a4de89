"""Shell completion of the arguments that name things on the server: job names, a job's schedule
ids and recent run ids, asked of the API as the user presses Tab (`dts --install-completion`
installs the shell's side). Completion never fails out loud: not logged in, the server away or
anything else completes nothing."""

from collections.abc import Callable
from typing import Any

import typer

from cli.client import Client
from cli.config import settings_load

# Candidates offered at most: enough to choose from, quick to fetch.
MOST = 50


def _asked(question: Callable[[Client], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    try:
        return question(Client.from_settings(settings_load()))
    except Exception:  # any failure completes nothing: a shell prompt is no place for a trace
        return []


def job_names(incomplete: str) -> list[tuple[str, str]]:
    """Your jobs whose name starts with what was typed, with their team."""

    def ask(api: Client) -> list[tuple[str, str]]:
        jobs = api.pages("/api/v1/jobs/", most=MOST, search=incomplete or None)
        return [
            (job["name"], f"team {job['team']}")
            for job in jobs
            if job["name"].startswith(incomplete)
        ]

    return _asked(ask)


def schedule_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The schedules of the job already typed, each with its description."""
    job, team = ctx.params.get("job"), ctx.params.get("team")
    if not job:
        return []

    def ask(api: Client) -> list[tuple[str, str]]:
        if str(job).isdigit():
            identifier = int(job)
        else:
            named = api.pages("/api/v1/jobs/", name=job, team=team)
            if len(named) != 1:
                return []
            identifier = named[0]["id"]
        found: list[dict[str, Any]] = api.get(f"/api/v1/jobs/{identifier}/schedules/")
        return [
            (str(item["id"]), item["description"])
            for item in found
            if str(item["id"]).startswith(incomplete)
        ]

    return _asked(ask)


def run_ids(incomplete: str) -> list[tuple[str, str]]:
    """Your teams' latest runs whose id starts with what was typed, with their task type and
    state."""

    def ask(api: Client) -> list[tuple[str, str]]:
        runs = api.get("/api/v1/runs/", limit=MOST)["results"]
        return [
            (run["id"], f"{run['task_type']} {run['state']}")
            for run in runs
            if run["id"].startswith(incomplete)
        ]

    return _asked(ask)
