"""Live updates over WebSockets: 1,000 clients, 100 run state changes a second, with each of
channels-redis's layers (core and pub/sub) in the same run.

    python -m bench.live [--clients 1000] [--rate 100] [--seconds 30] [--idle-seconds 15]
                         [--watch jobs|dashboard]

For each layer: the web process (uvicorn, one process, production settings, the layer chosen by
DTS_CHANNEL_LAYER) serves --clients WebSockets from a client process (asyncio), spread evenly over
the streams of JOBS jobs (/ws/jobs/<id>/: a team's operators watching their jobs), or with
`--watch dashboard` all on the team's dashboard (/ws/runs/: every client gets every change).
First, nothing changes for --idle-seconds: the web process's CPU is what the open connections
cost. Then a driver process (a worker, as far as dts can tell) makes --rate run state changes a
second for --seconds, through the worker's own code (a run started, then succeeded), round-robin
over the jobs. Each change reaches the clients of its job's stream (or all of them).

Measured per layer: delivery latency from the change (its event's time, taken just before the
commit) to the client, p50/p99/max; deliveries lost (expected minus received 2 s after the last
change; every client also checks each stream's numbers, so a gap or a repeat shows), the web
process's CPU while idle and under load, and the driver's lag behind its schedule. Writes
bench/results/live.json and live.md (live-dashboard.* with --watch dashboard). Bounded: every
phase has a duration, every wait a deadline.
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in requirements (types-psutil)

from bench.databases import REPO, database_recreate
from bench.web import free_port, web_server_env

RESULTS = REPO / "bench" / "results"
DATABASE = "dts_bench_live"
REDIS = "redis://127.0.0.1:56379"
JOBS = 100
LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
CONNECT_CONCURRENCY = 50
TARGET_P99_MS, TARGET_LOAD_CORES, TARGET_IDLE_CORES = 250, 1.0, 0.10

ENV = web_server_env(settings_module="config.settings.production", database=DATABASE) | {
    "CELERY_BROKER_URL": f"{REDIS}/14",
    "DTS_CACHE_URL": f"{REDIS}/15",
    "DTS_LIVE_REDIS_URL": f"{REDIS}/11",
    # The outbox is not what is measured here.
    "DTS_EVENTS_ENABLED": "false",
    "DTS_LOG_LEVEL": "WARNING",
}


def setup() -> dict[str, Any]:
    """A team with JOBS jobs and an operator's API token."""
    import django

    django.setup()
    from django.contrib.auth.models import User

    from apps.accounts.models import Role, Team
    from apps.accounts.services import membership_set, token_create
    from apps.jobs.models import Job

    team = Team.objects.create(name="bench")
    user = User.objects.create_user(username="bench")
    membership_set(team=team, user=user, role=Role.OPERATOR)
    jobs = Job.objects.bulk_create(
        Job(team=team, name=f"live {n}", task_type="dts.noop", args={}) for n in range(JOBS)
    )
    return {"jobs": [job.id for job in jobs], "token": token_create(user=user, name="bench")[1]}


def runs_create(job_ids: list[int], count: int) -> list[str]:
    """`count` queued runs, round-robin over the jobs, in the order the driver takes them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO runs_run (id, job_id, trigger, state, attempt, task_type, args, queue,
                priority, created_at, queued_at, worker, error, traceback)
            SELECT gen_random_uuid(), (%s::bigint[])[1 + n %% %s], 'manual', 'queued', 1,
                'dts.noop', '{}', 'default', 5, now(), now(), '', '', ''
            FROM generate_series(0, %s - 1) AS n ORDER BY n
            RETURNING id
            """,
            [job_ids, len(job_ids), count],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def wait_for(condition: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout} s")
        time.sleep(0.2)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def layer_round(layer: str, options: argparse.Namespace, world: dict[str, Any]) -> dict[str, Any]:
    import redis

    redis.Redis.from_url(ENV["DTS_LIVE_REDIS_URL"]).flushdb()
    env = os.environ | ENV | {"DTS_CHANNEL_LAYER": LAYERS[layer]}
    changes = options.rate * options.seconds
    runs = runs_create(world["jobs"], changes // 2 + 1)
    port = free_port()
    logs = Path(tempfile.gettempdir())
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--no-access-log",
        ],
        cwd=REPO,
        env=env,
        stdout=(logs / f"bench-live-{layer}-uvicorn.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    clients = None
    try:
        web = psutil.Process(server.pid)
        wait_for(lambda: bool(web.net_connections(kind="tcp")), "uvicorn did not listen", 60)
        out = logs / f"bench-live-{layer}-clients.json"
        clients = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.live",
                "clients",
                "--port",
                str(port),
                "--token",
                world["token"],
                "--clients",
                str(options.clients),
                "--out",
                str(out),
                "--jobs",
                ",".join(map(str, world["jobs"])),
                "--watch",
                options.watch,
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if clients.stdout is None or clients.stdin is None:
            raise RuntimeError("the client process has no pipes")
        if clients.stdout.readline().strip() != "connected":
            raise RuntimeError("the clients did not all connect")
        time.sleep(2)  # connections settled

        idle_cpu, idle_wall = cpu_seconds(web), time.monotonic()
        time.sleep(options.idle_seconds)
        idle = (cpu_seconds(web) - idle_cpu) / (time.monotonic() - idle_wall)

        load_cpu, load_wall = cpu_seconds(web), time.monotonic()
        driver = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.live",
                "drive",
                "--rate",
                str(options.rate),
                "--changes",
                str(changes),
                "--runs",
                ",".join(runs),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=options.seconds + 120,
            check=True,
        )
        time.sleep(2)  # the last deliveries
        load = (cpu_seconds(web) - load_cpu) / (time.monotonic() - load_wall)
        drove = json.loads(driver.stdout.strip().splitlines()[-1])

        clients.stdin.write("stop\n")
        clients.stdin.flush()
        clients.wait(60)
        received = json.loads(out.read_text())
    finally:
        for process in (clients, server):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
    per_change = options.clients if options.watch == "dashboard" else options.clients // JOBS
    expected = drove["changes"] * per_change
    latencies = sorted(received["latencies_ms"])
    return {
        "layer": LAYERS[layer],
        "changes": drove["changes"],
        "driver_lag_max_ms": drove["lag_max_ms"],
        "deliveries_expected": expected,
        "deliveries_received": len(latencies),
        "lost": expected - len(latencies),
        "gaps": received["gaps"],
        "repeats": received["repeats"],
        "clients_dropped": received["clients_dropped"],
        "drop_reasons": received["drop_reasons"],
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
        "max_ms": latencies[-1] if latencies else None,
        "idle_cores": idle,
        "load_cores": load,
    }


# The client process -------------------------------------------------------------------------------


async def clients_run(options: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    jobs = options.jobs.split(",")
    base = f"127.0.0.1:{options.port}"
    headers = {"Authorization": f"Bearer {options.token}"}
    latencies: list[float] = []
    counts = {"gaps": 0, "repeats": 0}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connected = 0
    all_connected = asyncio.Event()

    async def client(number: int) -> None:
        nonlocal connected
        path = (
            "/ws/runs/" if options.watch == "dashboard" else f"/ws/jobs/{jobs[number % len(jobs)]}/"
        )
        url = f"ws://{base}{path}"
        async with gate:
            socket = await connect(
                url, additional_headers=headers, origin=Origin(f"http://{base}"), open_timeout=60
            )
        connected += 1
        if connected == options.clients:
            all_connected.set()
        last: dict[str, int] = {}
        async with socket:
            async for frame in socket:
                now = time.time()
                message = json.loads(frame)
                stream, seq = message["stream"], message["seq"]
                if message["type"] == "sync":
                    last[stream] = seq
                    continue
                if seq <= last.get(stream, 0):
                    counts["repeats"] += 1
                    continue
                counts["gaps"] += seq - last.get(stream, 0) - 1
                last[stream] = seq
                sent = datetime.fromisoformat(message["event"]["time"]).timestamp()
                latencies.append((now - sent) * 1000)

    tasks = [asyncio.create_task(client(number)) for number in range(options.clients)]
    await asyncio.wait_for(all_connected.wait(), 300)
    print("connected", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    failed = [task for task in tasks if task.done() and not task.cancelled() and task.exception()]
    Path(options.out).write_text(
        json.dumps(
            {
                "latencies_ms": latencies,
                **counts,
                "clients_dropped": len(failed),
                "drop_reasons": sorted({repr(task.exception()) for task in failed}),
            }
        )
    )


# The driver process -----------------------------------------------------------------------------


def drive(options: argparse.Namespace) -> None:
    """Make `changes` run state changes at `rate` a second, as a worker does."""
    import django

    django.setup()
    from apps.live.broadcast import live_sender
    from apps.runs.services.moves import run_attempt_end, run_start
    from apps.runs.states import RunState

    runs = options.runs.split(",")
    interval = 1 / options.rate
    lag = 0.0
    start = time.monotonic()
    for change in range(options.changes):
        due = start + change * interval
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        else:
            lag = max(lag, now - due)
        run_id = runs[change // 2]
        if change % 2 == 0:
            run_start(run_id=run_id, attempt=1, worker="bench-driver", limited=False)
        else:
            run_attempt_end(run_id=run_id, attempt=1, outcome=RunState.SUCCEEDED)
    live_sender().wait_idle(60)
    print(json.dumps({"changes": options.changes, "lag_max_ms": lag * 1000}))


def clients_said(options: dict[str, Any]) -> str:
    clients, rate = options["clients"], options["rate"]
    if options["watch"] == "dashboard":
        return (
            f"- {clients} clients on the team's dashboard stream; {rate} changes a second, each "
            f"to every client: {rate * clients} deliveries a second"
        )
    return (
        f"- {clients} clients over {JOBS} job streams ({clients // JOBS} each); {rate} changes a "
        f"second round-robin over the jobs: {rate * (clients // JOBS)} deliveries a second"
    )


def report(results: dict[str, Any]) -> str:
    options = results["options"]
    lines = [
        "# Live benchmark: WebSocket delivery with each channels-redis layer",
        "",
        f"- Date: {results['date']}; command `python -m bench.live --clients {options['clients']} "
        f"--rate {options['rate']} --seconds {options['seconds']} "
        f"--idle-seconds {options['idle_seconds']} --watch {options['watch']}`",
        f"- Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        "web: uvicorn, one process, production settings; clients: one asyncio process; "
        "changes: a driver process running the worker's start and success code; PostgreSQL and "
        "Redis on loopback, everything on the same machine",
        clients_said(options),
        "",
        "| layer | changes | deliveries (expected / received) | lost | gaps | repeats | "
        "clients dropped | p50 (ms) | p99 (ms) | max (ms) | web CPU idle (cores) "
        "| web CPU under load (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, one in results["layers"].items():
        lines.append(
            f"| {name} | {one['changes']} | {one['deliveries_expected']} / "
            f"{one['deliveries_received']} | {one['lost']} | {one['gaps']} | {one['repeats']} | "
            f"{one['clients_dropped']} | {one['p50_ms']:.1f} | {one['p99_ms']:.1f} | "
            f"{one['max_ms']:.1f} | {one['idle_cores']:.3f} | {one['load_cores']:.2f} |"
        )
    lines.append("")
    for name, one in results["layers"].items():
        met = [
            f"p99 {one['p99_ms']:.0f} ms (≤ {TARGET_P99_MS}: "
            f"{'met' if one['p99_ms'] <= TARGET_P99_MS else 'missed'})",
            f"lost {one['lost']} (0: {'met' if one['lost'] == 0 else 'missed'})",
            f"load {one['load_cores']:.2f} cores (≤ {TARGET_LOAD_CORES}: "
            f"{'met' if one['load_cores'] <= TARGET_LOAD_CORES else 'missed'})",
            f"idle {one['idle_cores'] * 100:.1f}% of a core (< {TARGET_IDLE_CORES * 100:.0f}%: "
            f"{'met' if one['idle_cores'] < TARGET_IDLE_CORES else 'missed'})",
        ]
        lines.append(f"- {name}: " + "; ".join(met))
        if one["drop_reasons"]:
            lines.append(f"  - clients dropped by the server: {', '.join(one['drop_reasons'])}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", choices=["clients", "drive"])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--idle-seconds", type=int, default=15)
    parser.add_argument("--watch", choices=["jobs", "dashboard"], default="jobs")
    # The roles' own options.
    parser.add_argument("--port", type=int)
    parser.add_argument("--token")
    parser.add_argument("--jobs")
    parser.add_argument("--out")
    parser.add_argument("--changes", type=int)
    parser.add_argument("--runs")
    options = parser.parse_args()
    if options.role == "clients":
        asyncio.run(clients_run(options))
        return
    if options.role == "drive":
        drive(options)
        return
    if not (
        JOBS <= options.clients <= 5000
        and 1 <= options.rate <= 1000
        and 1 <= options.seconds <= 300
        and 1 <= options.idle_seconds <= 300
    ):
        parser.error("--clients 100..5000, --rate 1..1000, --seconds and --idle-seconds 1..300")
    os.environ.update(ENV)
    RESULTS.mkdir(parents=True, exist_ok=True)
    database_recreate(DATABASE, ENV)
    world = setup()
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "clients": options.clients,
            "rate": options.rate,
            "seconds": options.seconds,
            "idle_seconds": options.idle_seconds,
            "watch": options.watch,
        },
        "layers": {layer: layer_round(layer, options, world) for layer in LAYERS},
    }
    name = "live" if options.watch == "jobs" else f"live-{options.watch}"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
