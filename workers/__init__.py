"""Celery side of dts: `celery -A workers worker` and `celery -A workers beat` find `app` here."""

from workers.multiprocess import multiprocess_folder_ensure

# Before anything imports prometheus_client (Django's apps, Celery's app): it chooses its mode then.
multiprocess_folder_ensure()

from dispatch.celery import app  # noqa: E402

__all__ = ["app"]
