"""The peer of the execution benchmark: bare Celery with dts's Celery settings (the same broker,
transport options, time limits, JSON, acks_late, prefetch) and no state tracking. Its one task
records when it started, for the latency figure, and nothing else.

The settings are read from dts's Django settings module without setting Django up, and Celery's
Django fix-up is left out: nothing of Django runs in this worker."""

import os
import time

import redis
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

app = Celery("bare", fixups=[])
app.config_from_object("django.conf:settings", namespace="CELERY")
probe = redis.Redis.from_url(app.conf.broker_url)


def started_note(published_at: float) -> None:
    """The no-op task of both Celery peers: it notes when it was published and started."""
    probe.rpush("bench:started", f"{published_at} {time.time()}")


noop = app.task(name="bench.noop")(started_note)
