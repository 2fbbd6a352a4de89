"""Events: the relay's throughput to Kafka, what events cost the runs, and commit -> Kafka latency.

    python -m bench.events [--events 50000] [--runs 3000] [--rounds 9] [--rate 500] [--seconds 20]
                           [--pairs 9]

- relay throughput: N events waiting in the outbox, published by one relay process (`manage.py
  relay_events`), timed from its first to its last publication; its peer is a bare confluent-kafka
  producer sending the same N envelopes with the same settings, with nothing to read or mark;
- cost on runs: the execution benchmark's no-op runs/s (bench.execution) with events off, on
  (every state change writes its event to the outbox), and on with a relay publishing them from
  the same two cores, back to back in rounds; each cost is the median over rounds of 1 - on/off.
  The target applies to the second: the relay is a process of its own, on its own cores when
  deployed; the third says what sharing this machine's two cores with it costs. The same costs
  are given in the machine's CPU time per run (bench.execution);
- hot path: what events add to the CPU time of the worker's path through a run (start, the no-op
  task, end), run in this process without Celery, so without contention: this process's CPU time
  and its PostgreSQL backend's per run, events off and on alternated in pairs; the difference is
  also given as a share of the machine's CPU per run in the bursts with events off. It resolves
  far smaller differences than the bursts do;
- latency: events committed one per transaction at a steady rate while a relay runs; from the
  commit to Kafka's append time (a topic with LogAppendTime; one clock, this machine's).

Needs `make services` (PostgreSQL, Redis, Kafka). Writes bench/results/events.json and events.md.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.databases import database_recreate
from bench.execution import (
    BROKER,
    DATABASE,
    LOGS,
    REPO,
    RESULTS,
    bench_dts,
    hot_path_pairs,
    percentile,
    wait_until,
)

os.environ["DTS_EVENTS_TOPIC"] = f"dts-bench-{uuid.uuid4().hex[:8]}"
# Events off; on (written to the outbox); on with a relay publishing them from the same cores.
CONDITIONS = ("off", "on", "relay")


def start_relay(log_name: str, topic: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "manage.py", "relay_events", "--metrics-port", "0"]
    env = os.environ | {"DTS_EVENTS_TOPIC": topic}
    with (LOGS / log_name).open("w") as output:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def outbox_fill(count: int) -> None:
    from apps.events.models import EventType, OutboxEvent
    from apps.events.outbox import event_new

    OutboxEvent.objects.bulk_create(
        (
            event_new(
                type=EventType.RUN_SUCCEEDED,
                subject=f"runs/{uuid.uuid4()}",
                job_id=n % 50 + 1,
                data={"run_id": str(uuid.uuid4()), "attempt": 1, "state": "succeeded"},
            )
            for n in range(count)
        ),
        batch_size=5000,
    )


def bench_relay(count: int) -> dict[str, float]:
    from django.db.models import Max, Min

    from apps.events.models import OutboxEvent

    OutboxEvent.objects.all().delete()
    outbox_fill(count)
    relay = start_relay("events-relay.log", os.environ["DTS_EVENTS_TOPIC"])
    try:
        left = OutboxEvent.objects.filter(published_at__isnull=True)
        wait_until(lambda: not left.exists(), "relay throughput")
    finally:
        stop(relay)
    span = OutboxEvent.objects.aggregate(first=Min("published_at"), last=Max("published_at"))
    # Each batch is marked once sent: from the first batch's mark to the last one's, every later
    # batch was read, sent, acknowledged and marked. (The relay's start-up is left out.)
    later = OutboxEvent.objects.filter(published_at__gt=span["first"]).count()
    return {"events_per_second": later / (span["last"] - span["first"]).total_seconds()}


def bench_bare_producer(count: int) -> dict[str, float]:
    from apps.events.envelope import envelope_bytes
    from apps.events.kafka import events_topic, producer_new
    from apps.events.models import OutboxEvent

    events = list(OutboxEvent.objects.order_by("sequence")[:count])
    payloads = [(str(event.job_id).encode(), envelope_bytes(event)) for event in events]
    producer = producer_new()
    topic = events_topic() + "-bare"
    producer.produce(topic, key=b"warm", value=b"{}")
    producer.flush(30)
    started = time.monotonic()
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(60)
    return {"events_per_second": len(payloads) / (time.monotonic() - started)}


def bench_latency(rate: int, seconds: int) -> dict[str, float]:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
    from confluent_kafka.admin import AdminClient, NewTopic
    from django.conf import settings
    from django.db import transaction

    from apps.events.consumer import EventStream
    from apps.events.models import EventType
    from apps.events.outbox import event_new, events_record

    topic = settings.DTS_EVENTS_TOPIC + "-latency"
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    new = NewTopic(topic, 6, 1, config={"message.timestamp.type": "LogAppendTime"})
    admin.create_topics([new])[topic].result(30)
    settings.DTS_EVENTS_TOPIC = topic
    settings.DTS_EVENTS_ENABLED = True  # whichever condition the cost rounds ended with
    relay = start_relay("events-latency-relay.log", topic)
    committed: dict[str, float] = {}
    try:
        time.sleep(5)  # the relay is up and idle
        interval = 1 / rate
        next_at = time.monotonic()
        for _ in range(rate * seconds):
            event = event_new(type=EventType.JOB_DELETED, subject="jobs/1", job_id=1, data={})
            with transaction.atomic():
                events_record([event])
            committed[str(event.event_id)] = time.time()
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(2)  # the last ones published
    finally:
        stop(relay)
    stream = EventStream(group_id=f"bench-{uuid.uuid4().hex}", from_beginning=True)
    stream.consumer.subscribe([topic])
    latencies: list[float] = []
    deadline = time.monotonic() + 60
    while len(latencies) < len(committed) and time.monotonic() < deadline:
        message = stream.consumer.poll(1)
        if message is None:
            continue
        kind, stamp = message.timestamp()
        event_id = json.loads(message.value() or b"{}").get("id")
        if kind == TIMESTAMP_LOG_APPEND_TIME and event_id in committed:
            latencies.append((stamp / 1000 - committed[event_id]) * 1000)
    stream.consumer.close()
    return {
        "events": len(committed),
        "received": len(latencies),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p99_ms": percentile(latencies, 0.99),
    }


def report(results: dict[str, Any]) -> str:
    relay, bare = results["relay"], results["bare_producer"]
    cost = results["run_cost"]
    latency = results["latency"]
    hot = results["hot_path"]
    off_cpu = statistics.median(one["off cpu"] for one in cost["rounds"])
    hot_share = (hot["process added ms"] + hot["postgres added ms"]) / off_cpu
    rounds = ", ".join(
        " / ".join(f"{one[condition]:.0f}" for condition in CONDITIONS) for one in cost["rounds"]
    )
    lines = [
        "# Events benchmark",
        "",
        f"- Date: {results['date']}; command `python -m bench.events --events {results['events']} "
        f"--runs {results['runs']} --rounds {results['rounds']} --rate {results['rate']} "
        f"--seconds {results['seconds']} --pairs {results['pairs']}`",
        f"- Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        "PostgreSQL, Redis and Kafka (one KRaft node) on loopback",
        "",
        "| figure | dts | peer | target |",
        "|---|---|---|---|",
        f"| relay throughput (events/s) | {relay['events_per_second']:.0f} | bare producer "
        f"{bare['events_per_second']:.0f} | ≥ 5,000: "
        f"{'met' if relay['events_per_second'] >= 5000 else 'missed'} |",
        f"| no-op runs/s, events on vs off (medians) | {cost['on']:.0f} | off "
        f"{cost['off']:.0f} | cost ≤ 5% (median of the rounds' costs): {cost['cost']:.1%}, "
        f"{'met' if cost['cost'] <= 0.05 else 'missed'} |",
        f"| no-op runs/s, events on with the relay on the same 2 cores (medians) | "
        f"{cost['relay']:.0f} | off {cost['off']:.0f} | cost {cost['cost_with_relay']:.1%} |",
        f"| machine CPU per run, events on / on with the relay vs off (medians of the rounds' "
        f"costs) | {cost['cpu_cost']:+.1%} / {cost['cpu_cost_with_relay']:+.1%} | | |",
        f"| worker's hot path, CPU per run added by events (no contention; median of "
        f"{len(hot['pairs'])} pairs): this process + PostgreSQL (ms) | "
        f"{hot['process added ms']:+.3f} + {hot['postgres added ms']:+.3f} | off "
        f"{hot['off ms']:.3f} in all | {hot_share:.1%} of the bursts' machine CPU per run "
        "with events off |",
        f"| commit → on Kafka at {results['rate']} events/s, p50 / p99 (ms) | "
        f"{latency['latency_p50_ms']:.0f} / {latency['latency_p99_ms']:.0f} | | p99 ≤ 200: "
        f"{'met' if latency['latency_p99_ms'] <= 200 else 'missed'} |",
        "",
        f"Runs/s per round, events off / on / on with the relay: {rounds}; the rounds' costs "
        "(on, on with the relay): "
        + ", ".join(
            f"{1 - one['on'] / one['off']:.0%} / {1 - one['relay'] / one['off']:.0%}"
            for one in cost["rounds"]
        )
        + ". Their spread is this machine's noise from one measurement to the next; a cost"
        " smaller than it is not resolved. The relay is a process of its own: deployed, it runs on"
        " other cores than the workers'; here it shares the machine's two with the worker,"
        " PostgreSQL, Redis and Kafka.",
        "",
        "Machine CPU per run (ms), events off / on / on with the relay: "
        + ", ".join(
            " / ".join(f"{one[f'{condition} cpu']:.2f}" for condition in CONDITIONS)
            for one in cost["rounds"]
        )
        + ": the whole machine's busy CPU time over a burst, per run (bench.execution).",
        "",
        f"Latency: {latency['received']} of {latency['events']} events read back.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=9)
    options = parser.parse_args()
    numbers = ("events", "runs", "rounds", "rate", "seconds", "pairs")
    if min(getattr(options, name) for name in numbers) < 1:
        parser.error("every option must be at least 1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    database_recreate(DATABASE)
    import django

    django.setup()
    import redis

    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **{name: getattr(options, name) for name in numbers},
    }
    results["relay"] = bench_relay(options.events)
    results["bare_producer"] = bench_bare_producer(options.events)
    cost_rounds = []
    for number in range(1, options.rounds + 1):
        one = {}
        # Each round starts with another condition: drift of the machine cancels out.
        start = number % len(CONDITIONS)
        for condition in CONDITIONS[start:] + CONDITIONS[:start]:
            redis.Redis.from_url(BROKER).flushdb()
            topic = os.environ["DTS_EVENTS_TOPIC"]
            relay = start_relay("events-cost-relay.log", topic) if condition == "relay" else None
            try:
                figures = bench_dts(options.runs, 0, number, events=condition != "off")
                one[condition] = figures["runs_per_second"]
                one[f"{condition} cpu"] = figures["cpu_ms_per_run"]
            finally:
                if relay is not None:
                    stop(relay)
        cost_rounds.append(one)
    results["run_cost"] = {
        "rounds": cost_rounds,
        **{
            condition: statistics.median(one[condition] for one in cost_rounds)
            for condition in CONDITIONS
        },
        # Each round's runs ran back to back: a cost is the median of the rounds' costs.
        "cost": statistics.median(1 - one["on"] / one["off"] for one in cost_rounds),
        "cost_with_relay": statistics.median(1 - one["relay"] / one["off"] for one in cost_rounds),
        # The same costs in the machine's CPU time per run.
        "cpu_cost": statistics.median(one["on cpu"] / one["off cpu"] - 1 for one in cost_rounds),
        "cpu_cost_with_relay": statistics.median(
            one["relay cpu"] / one["off cpu"] - 1 for one in cost_rounds
        ),
    }
    results["hot_path"] = hot_path_pairs(
        setting="DTS_EVENTS_ENABLED", runs=options.runs, pairs=options.pairs
    )
    results["latency"] = bench_latency(options.rate, options.seconds)
    (RESULTS / "events.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (RESULTS / "events.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
