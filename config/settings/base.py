"""Settings shared by every environment; each value comes from the environment."""

import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# Django ------------------------------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
# Former keys, comma-separated, still accepted for what they signed (sessions, cursors) while a new
# DJANGO_SECRET_KEY takes over; dropped once those have expired.
SECRET_KEY_FALLBACKS: list[str] = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
]
LOCAL_APPS = [
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.tasktypes",
    "apps.jobs",
    "apps.runs",
    "apps.schedules",
    "apps.workflows",
    "apps.notifications",
    "apps.events",
    "apps.logs",
    "apps.live",
    "apps.api",
    # make dev's one-process platform: its command and demo data (run_standalone).
    "standalone",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Probes and scrapes by a pod's address over plain HTTP (apps.api.health says why).
    "apps.api.health.ProbesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_settings(config: dict[str, Any]) -> dict[str, Any]:
    """`config` (parsed from a database URL) with how dts keeps its connections.

    A process keeps each thread's connection for DATABASE_CONN_MAX_AGE seconds. The web process
    sets DTS_DATABASE_POOL (config/asgi.py): Django's ASGI handler runs every request in a new
    thread, which would open a new PostgreSQL connection per request; there, connections come from
    a pool per process (django-db-connection-pool), checked with a ping when taken."""
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    if env.bool("DTS_DATABASE_POOL", default=False) and config["ENGINE"].endswith("postgresql"):
        config["ENGINE"] = "dj_db_conn_pool.backends.postgresql"
        config["CONN_MAX_AGE"] = 0  # a request's end returns its connection to the pool
        config["POOL_OPTIONS"] = {
            "POOL_SIZE": env.int("DATABASE_POOL_SIZE", default=10),
            "MAX_OVERFLOW": env.int("DATABASE_POOL_OVERFLOW", default=10),
        }
    return config


DATABASES = {
    "default": database_settings(
        env.db("DATABASE_URL", default="postgres://dts:dts@127.0.0.1:55432/dts")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out sign-in before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"


def process_name(argv: list[str]) -> str:
    """Which dts process this is, from its command line: web, worker, scheduler, relay, indexer,
    standalone (make dev), or the command's name."""
    words = {part for word in argv for part in Path(word).parts}
    for word, name in (
        ("worker", "worker"),
        ("beat", "scheduler"),
        ("relay_events", "relay"),
        ("index_logs", "indexer"),
        ("run_standalone", "standalone"),
        ("uvicorn", "web"),
    ):
        if word in words:
            return name
    return Path(argv[0]).name if argv else "dts"


# Process logs go to stderr, plain or (DTS_LOG_FORMAT=json) one JSON object per record, with the
# process (DTS_PROCESS_NAME, or the command's) and the run and job a task logs for: a cluster's log
# shipper sends them to Elasticsearch (docs/logs.md, "Process logs").
DTS_LOG_FORMAT = env("DTS_LOG_FORMAT", default="plain")
if DTS_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"DTS_LOG_FORMAT must be plain or json, not {DTS_LOG_FORMAT!r}.")
DTS_PROCESS_NAME = env("DTS_PROCESS_NAME", default="") or process_name(sys.argv)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(run_id)s %(job_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "static_fields": {"process": DTS_PROCESS_NAME},
            "timestamp": "time",  # ISO 8601, UTC
        },
    },
    "filters": {"run": {"()": "apps.tasktypes.context.RunContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": DTS_LOG_FORMAT,
            "filters": ["run"],
        }
    },
    "root": {"handlers": ["console"], "level": env("DTS_LOG_LEVEL", default="INFO")},
    # The Elasticsearch client logs every request at INFO; its failures are logged by dts.
    "loggers": {"elastic_transport.transport": {"level": "WARNING"}},
}

# Client addresses and sign-in limits ---------------------------------------------------------

# How many reverse proxies in front of the web process append the address they received a request
# from to X-Forwarded-For; the client is then the N-th entry from the right, the one the outermost
# proxy wrote (apps.core.client.client_address). 0 ignores the header, which anyone can write.
DTS_TRUSTED_PROXIES = env.int("DTS_TRUSTED_PROXIES", default=0)
if DTS_TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("DTS_TRUSTED_PROXIES must be 0 or more.")


def parse_rate(name: str, rate: str) -> tuple[int, int]:
    """`rate` in DRF's syntax ("10/minute": 10 per 60 seconds) as (count, seconds)."""
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(period[:1])
    if not count.isdigit() or int(count) < 1 or seconds is None:
        raise ImproperlyConfigured(
            f"{name} must be a count per second, minute, hour or day, such as 10/minute; "
            f"not {rate!r}."
        )
    return int(count), seconds


DTS_API_THROTTLE_USER = env("DTS_API_THROTTLE_USER", default="1200/minute")
DTS_API_THROTTLE_LOGIN = env("DTS_API_THROTTLE_LOGIN", default="10/minute")
parse_rate("DTS_API_THROTTLE_USER", DTS_API_THROTTLE_USER)
_login_failures, _login_seconds = parse_rate("DTS_API_THROTTLE_LOGIN", DTS_API_THROTTLE_LOGIN)

# Sign-in lockout (django-axes) at /live/login/, /admin/login/ and the API's token login: after
# DTS_API_THROTTLE_LOGIN's count of failed sign-ins for one user name, or from one client address,
# sign-ins for it are refused (429) for the rate's period, the right password included.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = _login_failures
AXES_COOLOFF_TIME = timedelta(seconds=_login_seconds)
# Refused sign-ins do not extend the lockout: it ends one period after the failure that began it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not clear the failures: else signing in to one's own account between guesses
# would reset the count of the address.
AXES_RESET_ON_SUCCESS = False
_period = {1: "a second", 60: "a minute", 3600: "an hour", 86400: "a day"}[_login_seconds]
AXES_COOLOFF_MESSAGE = (
    f"Too many failed sign-ins for this user name or from this address: try again in {_period}."
)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# No table of every successful sign-in, which nothing would ever trim.
AXES_DISABLE_ACCESS_LOG = True
AXES_CLIENT_IP_CALLABLE = "apps.core.client.client_address"
AXES_LOCKOUT_CALLABLE = "apps.live.views.login_locked_out"
AXES_VERBOSE = False

# The REST API (apps/api) -----------------------------------------------------------------------

# A request body larger than this is refused (413).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DTS_API_MAX_BODY_BYTES", default=1024 * 1024)
REST_FRAMEWORK = {
    # The first one's scheme is what a 401 asks for (WWW-Authenticate: Bearer).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.BearerTokenAuthentication",  # the CLI and scripts
        "rest_framework.authentication.SessionAuthentication",  # browsers, with CSRF
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "apps.api.permissions.ReadOnlyTokenPermission",
    ],
    "DEFAULT_PARSER_CLASSES": ["apps.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["apps.api.renderers.FastJSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": DTS_API_THROTTLE_USER, "login": DTS_API_THROTTLE_LOGIN},
    "EXCEPTION_HANDLER": "apps.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "dts API",
    "DESCRIPTION": "Jobs, schedules and runs of dts, the distributed task scheduler.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A run's state and an attempt's outcome are the same set of states; fields named `kind` differ.
    "ENUM_NAME_OVERRIDES": {
        "RunStateEnum": "apps.runs.states.RunState.choices",
        "ScheduleKindEnum": "apps.schedules.models.ScheduleKind.choices",
        "JobDocumentKindEnum": "apps.api.manifests.JOB_DOCUMENT_KINDS",
        "WorkflowDocumentKindEnum": "apps.api.manifests.WORKFLOW_DOCUMENT_KINDS",
        "ChangeKindEnum": "apps.api.manifests.CHANGE_KINDS",
    },
}


def cache_settings(location: str) -> dict[str, Any]:
    """The cache on Redis at `location`, values in JSON. django-redis keeps one connection pool per
    process; Django's own Redis cache keeps one per thread, so per request under ASGI."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
        }
    }


# Throttling counts requests in this cache: shared by every web process through Redis.
CACHES = cache_settings(env("DTS_CACHE_URL", default="redis://127.0.0.1:56379/3"))

# Live updates over WebSockets (apps.live) --------------------------------------------------------

ASGI_APPLICATION = "config.asgi.application"
# The live pages' own sign-in: team members need not be staff, as the admin's would have them.
LOGIN_URL = "live:login"
LOGIN_REDIRECT_URL = "live:dashboard"
# Redis for the Channels layer and the streams' backlogs; every web and worker process shares it.
DTS_LIVE_REDIS_URL = env("DTS_LIVE_REDIS_URL", default="redis://127.0.0.1:56379/7")


def channel_layer_settings(url: str) -> dict[str, Any]:
    """The Channels layer on Redis at `url` (channels-redis's pub/sub layer unless
    DTS_CHANNEL_LAYER names another), messages in JSON."""
    backend = env("DTS_CHANNEL_LAYER", default="channels_redis.pubsub.RedisPubSubChannelLayer")
    config = {"hosts": [url], "serializer_format": "json"}
    return {"default": {"BACKEND": backend, "CONFIG": config}}


CHANNEL_LAYERS = channel_layer_settings(DTS_LIVE_REDIS_URL)
# How long a stream keeps its last messages after its last one, for clients that reconnect.
DTS_LIVE_BACKLOG_SECONDS = env.int("DTS_LIVE_BACKLOG_SECONDS", default=3600)

# Celery (read by dispatch/celery.py through the CELERY_ namespace) -------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:56379/0")
# Runs record their own outcome in the database; Celery's result backend would be a second copy.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# JSON only: a pickle payload from the broker would be code execution.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_EVENT_SERIALIZER = "json"
# A message is acknowledged only once its run has finished, so a killed worker's run is redelivered
# (and then refused by the run's state guard unless it never started).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SOFT_TIME_LIMIT = env.int("DTS_DEFAULT_SOFT_TIMEOUT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("DTS_DEFAULT_HARD_TIMEOUT", default=360)
if not 1 <= CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "DTS_DEFAULT_SOFT_TIMEOUT must be at least 1 and below DTS_DEFAULT_HARD_TIMEOUT."
    )
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection around every task unless told to reuse it:
# reconnecting is most of a short run's cost. Reuse it for this many tasks (CONN_MAX_AGE applies).
CELERY_DB_REUSE_MAX = env.int("DTS_WORKER_DB_REUSE_MAX", default=1000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than any hard time limit, so a long run is not redelivered while it still runs.
    "visibility_timeout": env.int("DTS_BROKER_VISIBILITY_TIMEOUT", default=3600),
    # Ten priority levels, served highest first (kombu's Redis: 0 is the highest).
    "priority_steps": list(range(10)),
    "queue_order_strategy": "priority",
}

# dts -------------------------------------------------------------------------------------------

# The scheduler (`celery -A workers beat -S workers.scheduler:DatabaseScheduler`).
# A fire later than this is missed (its schedule's misfire policy applies), not merely late.
DTS_SCHEDULER_MISFIRE_GRACE_SECONDS = env.int("DTS_SCHEDULER_MISFIRE_GRACE_SECONDS", default=60)
# Schedules claimed per transaction; more due than this are fired in further batches at once.
DTS_SCHEDULER_BATCH_SIZE = env.int("DTS_SCHEDULER_BATCH_SIZE", default=500)
# The longest a scheduler sleeps without a change notification before looking again.
DTS_SCHEDULER_MAX_SLEEP_SECONDS = env.float("DTS_SCHEDULER_MAX_SLEEP_SECONDS", default=5.0)
# Workers report every DTS_WORKER_HEARTBEAT_SECONDS which runs they execute; a run not reported
# for DTS_WORKER_HEARTBEAT_TIMEOUT seconds (its worker died, or its pool process) is lost.
DTS_WORKER_HEARTBEAT_SECONDS = env.float("DTS_WORKER_HEARTBEAT_SECONDS", default=5.0)
DTS_WORKER_HEARTBEAT_TIMEOUT = env.int("DTS_WORKER_HEARTBEAT_TIMEOUT", default=30)
# A file the worker, scheduler and relay touch while they live, for their container's health check
# (apps.core.liveness); empty: none. The image sets /tmp/dts/heartbeat.
DTS_HEARTBEAT_FILE = env("DTS_HEARTBEAT_FILE", default="")
# Finished runs (with attempts and logs) are removed this many days after they ended; 0 keeps all.
DTS_RUN_RETENTION_DAYS = env.int("DTS_RUN_RETENTION_DAYS", default=30)
# Run logs: what a task logs and prints, per run.
DTS_RUN_LOG_MAX_LINES = env.int("DTS_RUN_LOG_MAX_LINES", default=10_000)
DTS_RUN_LOG_MAX_LINE_CHARS = env.int("DTS_RUN_LOG_MAX_LINE_CHARS", default=4_000)
# A running run being cancelled gets this long to stop by itself before its process is killed.
DTS_CANCEL_GRACE_SECONDS = env.float("DTS_CANCEL_GRACE_SECONDS", default=10.0)
# Queued runs queued longer ago than this are checked against the broker every
# DTS_BROKER_CHECK_EVERY_SECONDS, and published again if no broker or worker holds them (their
# publisher died before sending, the broker was down, or Redis restarted without its data).
DTS_QUEUED_CHECK_AFTER_SECONDS = env.int("DTS_QUEUED_CHECK_AFTER_SECONDS", default=60)
DTS_BROKER_CHECK_EVERY_SECONDS = env.int("DTS_BROKER_CHECK_EVERY_SECONDS", default=60)

# Job health (apps.jobs.health, docs/metrics.md): a schedule's due time whose run has not started
# this long after it (plus the schedule's jitter) is late; a job whose latest this many finished
# runs all failed is failing.
DTS_JOB_HEALTH_GRACE_SECONDS = env.int(
    "DTS_JOB_HEALTH_GRACE_SECONDS", default=DTS_SCHEDULER_MISFIRE_GRACE_SECONDS
)
DTS_JOB_FAILING_RUNS = env.int("DTS_JOB_FAILING_RUNS", default=3)
if DTS_JOB_HEALTH_GRACE_SECONDS < 1:
    raise ImproperlyConfigured("DTS_JOB_HEALTH_GRACE_SECONDS must be at least 1.")
if not 1 <= DTS_JOB_FAILING_RUNS <= 20:
    raise ImproperlyConfigured("DTS_JOB_FAILING_RUNS must be between 1 and 20.")

# Webhooks (apps/notifications, docs/notifications.md): each attempt waits this long for the
# receiver; a failed one is tried again after DTS_WEBHOOK_RETRY_BASE_SECONDS, doubling (up to an
# hour), DTS_WEBHOOK_MAX_ATTEMPTS times in all. Webhooks are sent to public addresses only unless
# DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES (receivers inside your network; it lets a team admin reach
# them, and this machine's own ports).
DTS_WEBHOOK_TIMEOUT_SECONDS = env.float("DTS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
DTS_WEBHOOK_RETRY_BASE_SECONDS = env.float("DTS_WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
DTS_WEBHOOK_MAX_ATTEMPTS = env.int("DTS_WEBHOOK_MAX_ATTEMPTS", default=8)
DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("DTS_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
if not 0 < DTS_WEBHOOK_TIMEOUT_SECONDS <= 60:
    raise ImproperlyConfigured("DTS_WEBHOOK_TIMEOUT_SECONDS must be above 0 and at most 60.")
if DTS_WEBHOOK_RETRY_BASE_SECONDS <= 0:
    raise ImproperlyConfigured("DTS_WEBHOOK_RETRY_BASE_SECONDS must be above 0.")
if not 1 <= DTS_WEBHOOK_MAX_ATTEMPTS <= 50:
    raise ImproperlyConfigured("DTS_WEBHOOK_MAX_ATTEMPTS must be between 1 and 50.")

# A team has at most this many active (enabled, unpaused) schedules unless its own cap says
# otherwise (Team.max_active_schedules).
DTS_TEAM_MAX_ACTIVE_SCHEDULES = env.int("DTS_TEAM_MAX_ACTIVE_SCHEDULES", default=1000)

# The broker queues jobs may be routed to (start workers with --queues for each).
DTS_QUEUES: list[str] = env.list("DTS_QUEUES", default=["default"])
if "default" not in DTS_QUEUES:
    raise ImproperlyConfigured("DTS_QUEUES must include 'default'.")

# Modules that register operators' own task types with @task_type; the built-ins always load.
DTS_TASK_MODULES: list[str] = env.list("DTS_TASK_MODULES", default=[])

# Events (apps/events): every change is written to an outbox in its own transaction, and the relay
# (`manage.py relay_events`) publishes the outbox to Kafka. Off, nothing is written to the outbox.
DTS_EVENTS_ENABLED = env.bool("DTS_EVENTS_ENABLED", default=True)
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:9092")
DTS_EVENTS_TOPIC = env("DTS_EVENTS_TOPIC", default="dts.events")
# Created with these by the relay when missing; an existing topic is left as it is.
DTS_EVENTS_TOPIC_PARTITIONS = env.int("DTS_EVENTS_TOPIC_PARTITIONS", default=6)
DTS_EVENTS_TOPIC_REPLICATION = env.int("DTS_EVENTS_TOPIC_REPLICATION", default=1)
DTS_EVENTS_TOPIC_RETENTION_HOURS = env.int("DTS_EVENTS_TOPIC_RETENTION_HOURS", default=168)
# Published outbox rows are removed this many hours after they happened.
DTS_EVENTS_KEEP_HOURS = env.int("DTS_EVENTS_KEEP_HOURS", default=24)
DTS_RELAY_BATCH_SIZE = env.int("DTS_RELAY_BATCH_SIZE", default=2000)
# An event Kafka has not acknowledged this long after it was sent is sent again later.
DTS_RELAY_DELIVERY_TIMEOUT_SECONDS = env.float("DTS_RELAY_DELIVERY_TIMEOUT_SECONDS", default=10.0)
# While Kafka or the database is away the relay retries, waiting at most this long in between.
DTS_RELAY_MAX_BACKOFF_SECONDS = env.float("DTS_RELAY_MAX_BACKOFF_SECONDS", default=5.0)
# Without a notification of new events the relay looks again after this long.
DTS_RELAY_IDLE_SECONDS = env.float("DTS_RELAY_IDLE_SECONDS", default=5.0)
# After a batch smaller than DTS_RELAY_BATCH_SIZE the relay waits this long for more (0: none).
DTS_RELAY_LINGER_SECONDS = env.float("DTS_RELAY_LINGER_SECONDS", default=0.05)
if DTS_RELAY_LINGER_SECONDS < 0:
    raise ImproperlyConfigured("DTS_RELAY_LINGER_SECONDS must be 0 or more.")
DTS_RELAY_METRICS_PORT = env.int("DTS_RELAY_METRICS_PORT", default=9108)
DTS_RELAY_METRICS_ADDRESS = env("DTS_RELAY_METRICS_ADDRESS", default="127.0.0.1")
# Off, workers and schedulers record none of their run and scheduler series (docs/metrics.md): the
# cost of metrics on a worker's hot path can then be measured (bench/metrics.py). Their ports still
# serve what remains (dts_dependency_up).
DTS_METRICS_ENABLED = env.bool("DTS_METRICS_ENABLED", default=True)
# Prometheus metrics of a worker's main process and of the scheduler (apps.core.metrics), as the
# relay's: 0 serves none; a port already taken (two workers on one host) is logged, not fatal.
DTS_WORKER_METRICS_PORT = env.int("DTS_WORKER_METRICS_PORT", default=9109)
DTS_WORKER_METRICS_ADDRESS = env("DTS_WORKER_METRICS_ADDRESS", default="127.0.0.1")
DTS_SCHEDULER_METRICS_PORT = env.int("DTS_SCHEDULER_METRICS_PORT", default=9110)
DTS_SCHEDULER_METRICS_ADDRESS = env("DTS_SCHEDULER_METRICS_ADDRESS", default="127.0.0.1")

# Log search (apps/logs, docs/logs.md): the indexer (`manage.py index_logs`) copies run logs and
# runs into Elasticsearch. Empty: no indexing, and search reads PostgreSQL instead.
ELASTICSEARCH_URL = env("ELASTICSEARCH_URL", default="")
DTS_LOG_INDEX_PREFIX = env("DTS_LOG_INDEX_PREFIX", default="dts")
DTS_LOG_INDEX_SHARDS = env.int("DTS_LOG_INDEX_SHARDS", default=1)
DTS_LOG_INDEX_REPLICAS = env.int("DTS_LOG_INDEX_REPLICAS", default=1)
# Indices whose day (lines) or month (runs) ended longer ago than this are deleted (0: never).
DTS_LOG_RETENTION_DAYS = env.int("DTS_LOG_RETENTION_DAYS", default=30)
DTS_INDEXER_GROUP = env("DTS_INDEXER_GROUP", default="dts-log-indexer")
DTS_INDEXER_BATCH_SIZE = env.int("DTS_INDEXER_BATCH_SIZE", default=2000)
DTS_INDEXER_MAX_BACKOFF_SECONDS = env.float("DTS_INDEXER_MAX_BACKOFF_SECONDS", default=30.0)
# An indexer killed without leaving its consumer group: its partitions go to the other indexers
# (or its restart) this long after its last heartbeat. Kafka's brokers accept 6 to 300 s.
DTS_INDEXER_SESSION_TIMEOUT_SECONDS = env.float("DTS_INDEXER_SESSION_TIMEOUT_SECONDS", default=10.0)
DTS_INDEXER_METRICS_PORT = env.int("DTS_INDEXER_METRICS_PORT", default=9111)
DTS_INDEXER_METRICS_ADDRESS = env("DTS_INDEXER_METRICS_ADDRESS", default="127.0.0.1")
if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,50}", DTS_LOG_INDEX_PREFIX):
    raise ImproperlyConfigured(
        "DTS_LOG_INDEX_PREFIX must be 1 to 51 lowercase letters, digits, '_', '.' or '-', "
        "starting with a letter or digit (Elasticsearch's index names)."
    )
if not 6 <= DTS_INDEXER_SESSION_TIMEOUT_SECONDS <= 300:
    raise ImproperlyConfigured("DTS_INDEXER_SESSION_TIMEOUT_SECONDS must be between 6 and 300.")
for _name in ("DTS_LOG_INDEX_REPLICAS", "DTS_LOG_RETENTION_DAYS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 or more.")

for _name in (
    "DTS_RELAY_METRICS_PORT",
    "DTS_WORKER_METRICS_PORT",
    "DTS_SCHEDULER_METRICS_PORT",
    "DTS_INDEXER_METRICS_PORT",
):
    if not 0 <= globals()[_name] <= 65535:
        raise ImproperlyConfigured(f"{_name} must be between 0 and 65535.")
for _name in (
    "DTS_EVENTS_TOPIC_PARTITIONS",
    "DTS_EVENTS_TOPIC_REPLICATION",
    "DTS_LOG_INDEX_SHARDS",
    "DTS_INDEXER_BATCH_SIZE",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")
for _name in (
    "DTS_EVENTS_TOPIC_RETENTION_HOURS",
    "DTS_EVENTS_KEEP_HOURS",
    "DTS_RELAY_BATCH_SIZE",
    "DTS_RELAY_DELIVERY_TIMEOUT_SECONDS",
    "DTS_RELAY_MAX_BACKOFF_SECONDS",
    "DTS_RELAY_IDLE_SECONDS",
    "DTS_INDEXER_MAX_BACKOFF_SECONDS",
):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be above 0.")
