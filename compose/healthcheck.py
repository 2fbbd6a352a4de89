"""The image's HEALTHCHECK: the web process answers GET /healthz on its port.

The image runs every dts process and Docker gives it one health check. This one looks at the
container's command (PID 1): for uvicorn it asks /healthz on uvicorn's `--port`; the other
processes have no HTTP server, so for them the check passes while they run (Docker already knows
when they exit), and compose and the chart give them checks of their own.
Only the standard library: it runs in the image's python, cheaply, every interval."""

import sys
import urllib.request
from pathlib import Path


def web_port(arguments: list[str]) -> int | None:
    """uvicorn's port from its command line; None when the command is not uvicorn. The kernel
    puts the script's interpreter first (python …/uvicorn …), an init (`--init`) before both."""
    if not any(Path(argument).name == "uvicorn" for argument in arguments[:4]):
        return None
    for index, argument in enumerate(arguments):
        if argument == "--port" and index + 1 < len(arguments):
            return int(arguments[index + 1])
        if argument.startswith("--port="):
            return int(argument.removeprefix("--port="))
    return 8000


def main() -> int:
    arguments = Path("/proc/1/cmdline").read_bytes().decode().split("\0")[:-1]
    port = web_port(arguments)
    if port is None:
        return 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
        return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
