"""The execution benchmark's peer that keeps a record: Celery with django-celery-results on
PostgreSQL (bench.settings_celery_results), running bare Celery's task (bench.bare_celery). Its
worker sets Django up through Celery's Django fix-up, as a Django project's worker does."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_celery_results")

from celery import Celery

from bench.bare_celery import started_note

app = Celery("results")
app.config_from_object("django.conf:settings", namespace="CELERY")
noop = app.task(name="bench.noop")(started_note)
