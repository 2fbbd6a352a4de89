"""The scheduler's hot path alone, in this process: `--in-process N` fires N schedules all due
through `schedules_fire_due`, batch after batch as a beat's tick does, and measures the CPU this
process spends per fire (the scheduler's own cost, without the beat's start, wake-up and sleep),
the wall time, and PostgreSQL's and Redis's CPU over the same seconds. Quieter than a burst
through a real beat: several rounds, each on a fresh copy of the database; the median is reported.

Messages go to the peer's own Redis database, which is emptied before each round.
"""

import json
import statistics
import time
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.utils import timezone

from apps.runs.models import Run
from apps.schedules.firing import schedules_fire_due
from bench.scheduler import infra
from bench.scheduler.peers import DtsPeer
from bench.scheduler.stats import Shape

# A round of up to MAX_SIZE fires (set-up included) takes less than MINUTE_LEFT_S seconds.
MAX_SIZE = 20_000
MINUTE_LEFT_S = 35


def run(size: int, rounds: int, results: Path) -> int:
    if size > MAX_SIZE:
        raise SystemExit(f"--in-process: at most {MAX_SIZE:,} schedules (a round fits in a minute)")
    peer = DtsPeer()
    peer.prepare_template()
    measured = [_round(peer, size) for _ in range(rounds)]
    peer.drop()
    summary = {
        "size": size,
        "rounds": measured,
        "batch_size": settings.DTS_SCHEDULER_BATCH_SIZE,
        **{
            f"median_{key}": round(statistics.median(r[key] for r in measured), 1)
            for key in ("cpu_us_per_fire", "fires_per_s", "postgres_cpu_us_per_fire")
        },
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{size:,} fires, {rounds} rounds, batch {summary['batch_size']}: "
        f"scheduler CPU {summary['median_cpu_us_per_fire']} µs/fire, "
        f"{summary['median_fires_per_s']} fires/s, "
        f"PostgreSQL CPU {summary['median_postgres_cpu_us_per_fire']} µs/fire (medians); "
        f"wrote {results}"
    )
    return 0


def _round(peer: DtsPeer, size: int) -> dict[str, Any]:
    peer.reset()
    # Due at the last whole minute, inside the misfire grace (a minute): each fires once, unless
    # the round reaches the next minute, when each would fire twice: then wait for it.
    if timezone.now().second > 60 - MINUTE_LEFT_S:
        time.sleep(60 - timezone.now().second + 0.5)
    peer.create(Shape("every_minute", size, timezone.now().replace(second=0, microsecond=0)))
    peer.analyze()
    batch = settings.DTS_SCHEDULER_BATCH_SIZE
    servers = infra.server_cpu_seconds()
    cpu, wall = infra.own_cpu_seconds(), time.perf_counter()
    fired = 0
    while True:
        report = schedules_fire_due(now=timezone.now(), batch_size=batch)
        fired += len(report.fired)
        if report.claimed < batch:
            break
    wall = time.perf_counter() - wall
    cpu = infra.own_cpu_seconds() - cpu
    server = infra.server_cpu_delta(servers, infra.server_cpu_seconds())
    published = _messages(peer.redis_db)
    runs = Run.objects.count()
    if not fired == runs == published == size:
        raise SystemExit(f"expected {size} fires: fired {fired}, {runs} runs, {published} messages")
    result = {
        "cpu_us_per_fire": round(cpu / size * 1e6, 1),
        "fires_per_s": round(size / wall, 1),
        "postgres_cpu_us_per_fire": round(server["postgres"] / size * 1e6, 1),
        "redis_cpu_us_per_fire": round(server["redis"] / size * 1e6, 1),
    }
    print(f"  round: {result}", flush=True)
    return result


def _messages(db: int) -> int:
    client = redis.Redis.from_url(infra.redis_url(db))
    return sum(int(client.llen(name)) for name in infra.queue_lists(infra.QUEUE))
