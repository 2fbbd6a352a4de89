"""The settings of the execution benchmark's peer that keeps a record: dts's test settings (the
same broker, transport options, time limits, JSON, acks_late and prefetch) with
django-celery-results recording each task's start and end in PostgreSQL, as a Celery user gets
the record dts keeps.

Its worker (`-A bench.celery_results`) runs on a database of its own, given by the harness through
DATABASE_URL."""

from config.settings.test import *  # noqa: F403
from config.settings.test import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_results"]
CELERY_RESULT_BACKEND = "django-db"  # type: ignore[assignment]  # dts: None
CELERY_TASK_IGNORE_RESULT = False
CELERY_TASK_TRACK_STARTED = True  # a STARTED row when the task starts, then its SUCCESS
CELERY_RESULT_EXTENDED = True  # the task's name, arguments and worker in its row
