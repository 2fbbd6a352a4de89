"""Celery side of dts: `celery -A workers worker` and `celery -A workers beat` find `app` here."""

from dispatch.celery import app

__all__ = ["app"]
