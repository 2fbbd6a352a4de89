"""The execution benchmark's peer that keeps a record: Celery with django-celery-results on
PostgreSQL (bench.settings_celery_results), running bare Celery's task (bench.bare_celery). Its
worker sets Django up through Celery's Django fix-up, as a Django project's worker does."""

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_celery_results")

from celery import Celery

from bench.bare_celery import probe, started_note

app = Celery("results")
app.config_from_object("django.conf:settings", namespace="CELERY")
noop = app.task(name="bench.noop")(started_note)


@app.task(name="bench.chord_done")
def chord_done(results: list[object]) -> None:
    """A chord's callback (bench.workflows): notes when it ran."""
    probe.rpush("bench:chord", time.time())
