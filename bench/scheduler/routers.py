"""Database routing for the harness (bench/scheduler/settings_harness.py)."""

from typing import Any

from django.db.models import Model

CELERY_BEAT_ALIAS = "celery_beat"


class CeleryBeatRouter:
    """django-celery-beat's models live in the "celery_beat" database, the rest in default."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return CELERY_BEAT_ALIAS if model._meta.app_label == "django_celery_beat" else None

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return self.db_for_read(model, **hints)
