"""django-celery-beat's settings in the benchmark: dts's test settings plus the peer's app.

Its beat runs the same Celery app (`-A workers`) on its own database and Redis database, both given
by the harness through DATABASE_URL and CELERY_BROKER_URL.
"""

from config.settings.test import *  # noqa: F403
from config.settings.test import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]
