"""The peer of the execution benchmark: bare Celery with dts's broker settings and no state
tracking. Its one task records when it started, for the latency figure, and nothing else."""

import os
import time

import redis
from celery import Celery

app = Celery("bare")
app.conf.update(
    broker_url=os.environ["CELERY_BROKER_URL"],
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_default_queue="default",
)
probe = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])


@app.task(name="bench.noop")
def noop(published_at: float) -> None:
    probe.rpush("bench:started", f"{published_at} {time.time()}")
