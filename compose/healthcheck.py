"""The image's HEALTHCHECK, also the chart's probe of the processes without HTTP: exit 0 when
the container's process is healthy.

The image runs every dts process and Docker gives it one health check. This one looks for the
dts process among the container's processes (PID 1 itself, or the child of an init such as
compose's `init: true`, whose start script exec'd it):
- the web (uvicorn): GET /healthz on uvicorn's `--port`;
- a worker, the scheduler (celery), the relay (manage.py relay_events) and the log indexer
  (manage.py index_logs): the file DTS_HEARTBEAT_FILE names was touched within
  DTS_HEARTBEAT_MAX_AGE seconds (default 60). Each touches it on every round of its loop, during
  an outage of a backing service too (apps.core.liveness): a stale or missing file means the loop
  hangs or never started;
- anything else (migrate, a shell): healthy while it runs (Docker knows when it exits).
Only the standard library: it runs in the image's python, cheaply, every interval."""

import os
import sys
import time
import urllib.request
from pathlib import Path

DEFAULT_MAX_AGE_SECONDS = 60.0
# The processes judged by the age of their heartbeat file, as command_name names them.
HEARTBEAT_PROCESSES = {"celery", "manage.py relay_events", "manage.py index_logs"}


def command_name(arguments: list[str]) -> str:
    """The dts program a command line runs, past its interpreter (the kernel puts a script's
    interpreter first: python …/uvicorn …); "" for anything else."""
    for argument in arguments[:2]:
        name = Path(argument).name
        if name in {"uvicorn", "celery"}:
            return name
        if name == "manage.py":
            return "manage.py " + " ".join(arguments[arguments.index(argument) + 1 :][:1])
    return ""


def web_port(arguments: list[str]) -> int:
    """uvicorn's port from its command line."""
    for index, argument in enumerate(arguments):
        if argument == "--port" and index + 1 < len(arguments):
            return int(arguments[index + 1])
        if argument.startswith("--port="):
            return int(argument.removeprefix("--port="))
    return 8000


def heartbeat_fresh(path: str, max_age: float) -> bool:
    try:
        return time.time() - Path(path).stat().st_mtime <= max_age
    except FileNotFoundError:
        return False


def dts_process(commands: list[list[str]]) -> list[str]:
    """The first command line, in process-id order, that runs a dts program; [] if none."""
    return next((arguments for arguments in commands if command_name(arguments)), [])


def container_commands() -> list[list[str]]:
    """Every process's command line in this container (its PID namespace), lowest id first."""
    commands = []
    for folder in sorted(Path("/proc").glob("[0-9]*"), key=lambda path: int(path.name)):
        try:
            commands.append((folder / "cmdline").read_bytes().decode().split("\0")[:-1])
        except OSError:  # it ended meanwhile
            continue
    return commands


def main(commands: list[list[str]]) -> int:
    arguments = dts_process(commands)
    name = command_name(arguments)
    if name == "uvicorn":
        url = f"http://127.0.0.1:{web_port(arguments)}/healthz"
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    heartbeat_file = os.environ.get("DTS_HEARTBEAT_FILE", "")
    if name in HEARTBEAT_PROCESSES and heartbeat_file:
        max_age = float(os.environ.get("DTS_HEARTBEAT_MAX_AGE", DEFAULT_MAX_AGE_SECONDS))
        if not heartbeat_fresh(heartbeat_file, max_age):
            print(f"{heartbeat_file} not touched in the last {max_age:g} s", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(container_commands()))
