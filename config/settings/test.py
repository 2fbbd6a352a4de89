"""pytest: the real PostgreSQL and Redis that `make services` starts."""

import os

from .base import *  # noqa: F403
from .base import cache_settings, channel_layer_settings, env

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dts-test-only-not-secret")
# Serve static files from the apps' folders, as in development: tests do not run collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# pytest-xdist runs the tests in lanes, its workers gw0, gw1, ..., and the processes they start
# inherit the lane: lane n has Redis databases 16n to 16n + 15 (tests.processes.redis_url).
# PostgreSQL's test database is per lane already (pytest-django), as are each test's Kafka topics
# and Elasticsearch indices.
TEST_REDIS_SERVER = "redis://127.0.0.1:56379"
TEST_REDIS_LANE_BASE = 16 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def _lane_redis_url(number: int) -> str:
    return f"{TEST_REDIS_SERVER}/{TEST_REDIS_LANE_BASE + number}"


CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_lane_redis_url(1))
CACHES = cache_settings(env("DTS_CACHE_URL", default=_lane_redis_url(4)))
DTS_LIVE_REDIS_URL = env("DTS_LIVE_REDIS_URL", default=_lane_redis_url(8))
CHANNEL_LAYERS = channel_layer_settings(DTS_LIVE_REDIS_URL)

# "faults" is the queue of the fault tests' own workers, which they kill and restart.
DTS_QUEUES = ["default", "faults"]
DTS_TASK_MODULES = ["tests.workers.operator_tasks"]

KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:59092")
ELASTICSEARCH_URL = env("ELASTICSEARCH_URL", default="http://127.0.0.1:59200")
PROMETHEUS_URL = env("PROMETHEUS_URL", default="http://127.0.0.1:59090")

# Test workers and schedulers serve no metrics unless a test gives them a port.
DTS_WORKER_METRICS_PORT = env.int("DTS_WORKER_METRICS_PORT", default=0)
DTS_SCHEDULER_METRICS_PORT = env.int("DTS_SCHEDULER_METRICS_PORT", default=0)

# Log search: the test Elasticsearch is one node.
DTS_LOG_INDEX_REPLICAS = 0
