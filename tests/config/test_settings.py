"""Production settings refuse unsafe values and pass Django's deployment checks."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from config.settings.base import process_name
from tests.conftest import REPO

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "k" * 30 + "-production-secret-for-the-deploy-check",
    "DJANGO_ALLOWED_HOSTS": "dts.example.com",
    "DATABASE_URL": "postgres://dts:dts@127.0.0.1:55432/dts",
    "CELERY_BROKER_URL": "redis://127.0.0.1:56379/0",
    "DTS_CACHE_URL": "redis://127.0.0.1:56379/3",
    "DTS_LIVE_REDIS_URL": "redis://127.0.0.1:56379/7",
}


def manage(*args, **env):
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "DTS_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=clean | {key: value for key, value in env.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "DTS_CACHE_URL",
        "DTS_LIVE_REDIS_URL",
    ],
)
def test_production_refuses_to_start_without_a_required_setting(missing):
    result = manage("check", **(PRODUCTION_ENV | {missing: None}))

    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_refuses_to_start_with_debug_on():
    result = manage("check", **(PRODUCTION_ENV | {"DJANGO_DEBUG": "true"}))

    assert result.returncode != 0
    assert "DJANGO_DEBUG must be off in production" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = manage("check", **(PRODUCTION_ENV | {"DJANGO_SECRET_KEY": "short"}))

    assert result.returncode != 0
    assert "at least 50 characters" in result.stderr


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("x" * 60, "has fewer than 5 different characters"),
        ("abcd" * 20, "has fewer than 5 different characters"),
        ("django-insecure-" + "k" * 30 + "-a-generated-development-key", "starts with"),
        ("x" * 49, "is shorter than 50 characters and has fewer than 5 different characters"),
    ],
)
def test_production_refuses_a_secret_key_the_deploy_check_would_warn_about(key, reason):
    result = manage("check", **(PRODUCTION_ENV | {"DJANGO_SECRET_KEY": key}))

    assert result.returncode != 0
    assert f"ImproperlyConfigured: DJANGO_SECRET_KEY {reason}" in result.stderr


def test_production_accepts_a_key_of_five_different_characters_as_the_deploy_check_does():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **(PRODUCTION_ENV | {"DJANGO_SECRET_KEY": "abcde" * 10}),
    )

    assert result.returncode == 0, result.stderr


def printing(*values: str) -> str:
    return f"from django.conf import settings; print({', '.join(values)})"


@pytest.mark.parametrize("module", ["local", "test", "production"])
def test_every_settings_module_trusts_no_proxy_unless_told(module):
    show = printing(
        "settings.DTS_TRUSTED_PROXIES",
        "settings.SECURE_PROXY_SSL_HEADER",
        "settings.AXES_CLIENT_IP_CALLABLE",
        "'NUM_PROXIES' in settings.REST_FRAMEWORK",
    )
    env = PRODUCTION_ENV | {"DJANGO_SETTINGS_MODULE": f"config.settings.{module}"}
    default = manage("shell", "-v", "0", "-c", show, **env)
    two = manage("shell", "-v", "0", "-c", show, **(env | {"DTS_TRUSTED_PROXIES": "2"}))

    # X-Forwarded-Proto is trusted with X-Forwarded-For, only from proxies (in production only).
    proto = "('HTTP_X_FORWARDED_PROTO', 'https')" if module == "production" else "None"
    assert default.stdout.splitlines() == ["0 None apps.core.client.client_address False"]
    assert two.stdout.splitlines() == [f"2 {proto} apps.core.client.client_address False"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DTS_TRUSTED_PROXIES", "-1"),
        ("DTS_API_THROTTLE_LOGIN", "ten/minute"),
        ("DTS_API_THROTTLE_LOGIN", "10/fortnight"),
        ("DTS_API_THROTTLE_USER", "0/minute"),
    ],
)
def test_bad_client_limits_refuse_to_start(variable, value):
    result = manage("check", **(PRODUCTION_ENV | {variable: value}))

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable} must be" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DTS_JOB_HEALTH_GRACE_SECONDS", "0"),
        ("DTS_JOB_FAILING_RUNS", "0"),
        ("DTS_JOB_FAILING_RUNS", "21"),
        ("DTS_LOG_FORMAT", "xml"),
        ("DTS_LOG_INDEX_PREFIX", "Upper"),
        ("DTS_LOG_RETENTION_DAYS", "-1"),
        ("DTS_INDEXER_BATCH_SIZE", "0"),
        ("DTS_INDEXER_METRICS_PORT", "70000"),
        ("DTS_INDEXER_SESSION_TIMEOUT_SECONDS", "5"),
    ],
)
def test_bad_job_health_and_log_settings_refuse_to_start(variable, value):
    result = manage("check", **(PRODUCTION_ENV | {variable: value}))

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable} must be" in result.stderr


LOG_IN_AND_OUT_OF_A_RUN = """
import logging
from apps.tasktypes.context import run_context
logging.getLogger("dts.test").warning("outside")
with run_context("0b6f7c1e-0000-4000-8000-000000000001", job_id=7):
    logging.getLogger("dts.test").error("inside %s", 3)
"""


def test_json_process_logs_name_the_process_and_the_run_and_job():
    result = manage(
        "shell", "-v", "0", "-c", LOG_IN_AND_OUT_OF_A_RUN,
        **(PRODUCTION_ENV | {"DTS_LOG_FORMAT": "json", "DTS_PROCESS_NAME": "worker"}),
    )  # fmt: skip

    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [{**record, "time": None} for record in records] == [
        {"level": "WARNING", "logger": "dts.test", "message": "outside", "run_id": None,
         "job_id": None, "process": "worker", "time": None},
        {"level": "ERROR", "logger": "dts.test", "message": "inside 3",
         "run_id": "0b6f7c1e-0000-4000-8000-000000000001", "job_id": 7, "process": "worker",
         "time": None},
    ]  # fmt: skip
    assert datetime.fromisoformat(records[0]["time"]).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["/venv/bin/celery", "-A", "workers", "worker", "--concurrency", "2"], "worker"),
        (["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "workers", "beat"],
         "scheduler"),
        (["manage.py", "relay_events"], "relay"),
        (["manage.py", "index_logs", "--batch-size", "10"], "indexer"),
        (["manage.py", "run_standalone"], "standalone"),
        (["/venv/bin/uvicorn", "config.asgi:application"], "web"),
        (["manage.py", "migrate"], "manage.py"),
        ([], "dts"),
    ],
)  # fmt: skip
def test_a_process_is_named_after_its_command(argv, name):
    assert process_name(argv) == name


def test_the_sign_in_lockout_takes_the_token_login_rate():
    show = printing("settings.AXES_FAILURE_LIMIT", "settings.AXES_COOLOFF_TIME.total_seconds()")
    result = manage(
        "shell", "-v", "0", "-c", show, **(PRODUCTION_ENV | {"DTS_API_THROTTLE_LOGIN": "5/hour"})
    )

    assert result.stdout.split() == ["5", "3600.0"]


# A thread per request, as Django's ASGI handler runs them: each takes a connection, runs a query
# and closes it at its end, as Django does when a request finishes.
THREAD_PER_REQUEST = """
import threading
{setup}
from django.db import connection, connections

backends = []

def request():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backends.append(cursor.fetchone()[0])
    connections.close_all()

for _ in range(5):
    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
print(len(set(backends)))
"""


@pytest.mark.parametrize(
    ("setup", "sessions"),
    [
        ("import config.asgi", 1),  # the web process: one pooled session serves them all
        ("import django; django.setup()", 5),  # a worker: a session per thread, kept by it
    ],
)
def test_the_web_process_reuses_database_sessions_across_its_request_threads(setup, sessions):
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DTS_")}
    result = subprocess.run(
        [sys.executable, "-c", THREAD_PER_REQUEST.format(setup=setup)],
        cwd=REPO,
        env=clean | PRODUCTION_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(sessions)]


def test_former_secret_keys_are_read_from_the_environment():
    show = printing("settings.SECRET_KEY_FALLBACKS")
    env = PRODUCTION_ENV | {"DJANGO_SECRET_KEY_FALLBACKS": "old-key-one,old-key-two"}

    none = manage("shell", "-v", "0", "-c", show, **PRODUCTION_ENV)
    two = manage("shell", "-v", "0", "-c", show, **env)

    assert none.stdout.strip() == "[]"
    assert two.stdout.strip() == "['old-key-one', 'old-key-two']"
