"""The harness's own settings: dts's benchmark database as "default" and django-celery-beat's as
"celery_beat" (its models are routed there), so one process can set up and edit both peers."""

from bench.scheduler.settings_celery_beat import *  # noqa: F403
from bench.scheduler.settings_celery_beat import DATABASES, env

DATABASES = {
    **DATABASES,
    "celery_beat": {**DATABASES["default"], **env.db("BENCH_CELERY_BEAT_DATABASE_URL")},
}
DATABASE_ROUTERS = ["bench.scheduler.routers.CeleryBeatRouter"]
