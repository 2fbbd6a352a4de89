import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("dts", include=["workers.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
# A worker waits out a broker outage however long it lasts, at start and later (Celery's default
# gives up after 100 attempts, about 50 minutes): a supervisor restarting it would change nothing.
app.conf.broker_connection_max_retries = None
