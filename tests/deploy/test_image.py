"""The dts image (compose/Dockerfile), built by platform/docker/build.sh on its private engine:
linted, inspected, and each process's command run in it against the services of `make services`.

Containers use host networking only (bridge networks are forbidden on these machines), a database
of this session's own, and Redis databases no other test uses. The first build takes a few
minutes (base image, wheelhouse, docker build); later ones reuse the caches."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest
import redis

from tests.deploy.docker import ELASTICSEARCH, REDIS, docker, indices_remove, scratch_database
from tests.processes import REPO, free_port

HADOLINT = Path(sys.executable).parent / "hadolint"
CONTAINER_PREFIX = f"dts-image-test-{os.getpid()}"
# What /app holds: the code the processes run (.dockerignore lets in nothing else), and the static
# files collected at build.
APP_ENTRIES = {
    "apps",
    "compose",
    "config",
    "dispatch",
    "manage.py",
    "standalone",
    "staticfiles",
    "workers",
}

# The indexer's Elasticsearch (of `make services`), with indices, a consumer group and an events
# topic of this session's own.
INDEXER_ENV = {
    "ELASTICSEARCH_URL": ELASTICSEARCH,
    "DTS_LOG_INDEX_PREFIX": CONTAINER_PREFIX,
    "DTS_INDEXER_GROUP": CONTAINER_PREFIX,
    "DTS_EVENTS_TOPIC": CONTAINER_PREFIX,
}

RunContainer = Callable[..., str]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of this session's own on the PostgreSQL of `make services`."""
    with scratch_database(f"dts_image_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="session")
def redis_urls() -> Iterator[dict[str, str]]:
    """The containers' broker, cache and live Redis: database 9, the one number no other test or
    benchmark uses (their keys do not meet: kombu's, the cache's and Channels' each have their
    own prefix); emptied at the end."""
    url = f"{REDIS}/9"
    yield {"CELERY_BROKER_URL": url, "DTS_CACHE_URL": url, "DTS_LIVE_REDIS_URL": url}
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="session")
def container_env(database_url: str, redis_urls: dict[str, str]) -> list[str]:
    """`--env` options: production settings on loopback over plain HTTP, no metrics ports (the
    host's are shared), secrets made up for the test as an operator would give them."""
    settings = redis_urls | {
        "DJANGO_SECRET_KEY": "image-test-only-" + "0123456789abcdefghijklmnopqrstuvwxyz",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:59092",
        "DTS_WORKER_METRICS_PORT": "0",
        "DTS_SCHEDULER_METRICS_PORT": "0",
        "DTS_RELAY_METRICS_PORT": "0",
        "DTS_INDEXER_METRICS_PORT": "0",
    }
    return [option for key, value in settings.items() for option in ("--env", f"{key}={value}")]


@pytest.fixture
def indices_removed() -> Iterator[None]:
    """At the end, the index templates (and any index) an indexer of INDEXER_ENV made."""
    yield
    indices_remove(INDEXER_ENV["DTS_LOG_INDEX_PREFIX"])


@pytest.fixture(scope="session")
def migrated(docker_env: dict[str, str], image: str, container_env: list[str]) -> str:
    """The migrate one-shot's output; it must have exited 0."""
    result = docker(
        docker_env,
        *("run", "--rm", "--network=host", *container_env, image),
        "/app/compose/start/migrate",
        timeout=300,
    )
    return result.stdout


@pytest.fixture(scope="session")
def run_container(
    docker_env: dict[str, str], image: str, container_env: list[str], migrated: str
) -> Iterator[RunContainer]:
    """Start a detached container of the image running a command; all are removed at the end."""
    names: list[str] = []

    def run(process: str, *arguments: str, env: dict[str, str] | None = None) -> str:
        """Run `process`'s start script with `arguments` after its own, and `env` besides."""
        name = f"{CONTAINER_PREFIX}-{process}"
        names.append(name)
        extra_env = [
            option for key, value in (env or {}).items() for option in ("--env", f"{key}={value}")
        ]
        docker(
            docker_env,
            *("run", "--detach", "--name", name, "--network=host", *container_env, *extra_env),
            # The image's HEALTHCHECK command, run more often than its 15 s for a quicker test.
            "--health-interval=2s",
            *(image, f"/app/compose/start/{process}", *arguments),
        )
        return name

    yield run
    for name in names:
        docker(docker_env, "rm", "--force", name, check=False)


def wait_for_log(env: dict[str, str], name: str, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = docker(env, "logs", name)
        output = logs.stdout + logs.stderr
        if text in output:
            return
        if docker(env, "inspect", "--format", "{{.State.Running}}", name).stdout.strip() != "true":
            break
        time.sleep(0.5)
    pytest.fail(f"{name} did not log {text!r} within {timeout} s:\n{output[-3000:]}")


def wait_healthy(env: dict[str, str], name: str, timeout: float = 60) -> None:
    """Docker's own check of the container (the image's HEALTHCHECK, compose/healthcheck.py)
    reports it healthy."""
    deadline = time.monotonic() + timeout
    health = ""
    while time.monotonic() < deadline and health != "healthy":
        time.sleep(1)
        health = docker(env, "inspect", "--format", "{{.State.Health.Status}}", name).stdout
        health = health.strip()
    assert health == "healthy"


def stop_within_grace(env: dict[str, str], name: str, grace: int) -> tuple[float, int, str]:
    """`docker stop` (SIGTERM, SIGKILL after `grace` seconds): its duration, the exit code, the
    container's log."""
    started = time.monotonic()
    docker(env, "stop", "--time", str(grace), name, timeout=grace + 30)
    elapsed = time.monotonic() - started
    exit_code = int(docker(env, "inspect", "--format", "{{.State.ExitCode}}", name).stdout)
    logs = docker(env, "logs", name)
    return elapsed, exit_code, logs.stdout + logs.stderr


def get(url: str) -> tuple[int, dict]:
    response = httpx.get(url, timeout=5)
    return response.status_code, response.json()


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [HADOLINT, "compose/Dockerfile"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_non_root_with_python_settings_and_no_secret(
    docker_env: dict[str, str], image: str
):
    config = json.loads(docker(docker_env, "image", "inspect", image).stdout)[0]["Config"]
    env = dict(entry.split("=", 1) for entry in config["Env"])
    assert config["User"] == "10001:10001"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert not {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} & env.keys()
    assert config["Cmd"] == ["/app/compose/start/web"]  # exec form: the script execs the process
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python"]
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    assert config["Labels"]["org.opencontainers.image.revision"] == revision
    assert config["Labels"]["org.opencontainers.image.version"]
    uid = docker(docker_env, "run", "--rm", "--network=none", image, "id", "-u").stdout
    assert uid.strip() == "10001"
    # collectstatic's made-up settings stayed in the builder stage: not in the image's history.
    history = docker(docker_env, "history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    assert "DJANGO_SECRET_KEY" not in history.stdout


def test_image_has_no_compiler_no_pip_cache_only_the_code_and_time_zones(
    docker_env: dict[str, str], image: str
):
    # As root, to see into every home folder.
    probe = """
import glob, json, os, shutil, zoneinfo
print(json.dumps({
    "compilers": [c for c in ("gcc", "cc", "c++", "clang") if shutil.which(c)],
    "pip_caches": glob.glob("/root/.cache/pip") + glob.glob("/home/*/.cache/pip")
        + glob.glob("/app/.cache/pip") + glob.glob("/tmp/pip-*"),
    "wheelhouse": glob.glob("/wheels") + glob.glob("/app/.wheelhouse"),
    "static_manifest": bool(glob.glob("/app/staticfiles/staticfiles.json")),
    "app": sorted(os.listdir("/app")),
    "paris": str(zoneinfo.ZoneInfo("Europe/Paris")),
}))
"""
    facts = json.loads(
        docker(
            docker_env, "run", "--rm", "--network=none", "--user", "0", image, "python", "-c", probe
        ).stdout
    )
    assert facts == {
        "compilers": [],
        "pip_caches": [],
        "wheelhouse": [],
        "static_manifest": True,
        "app": sorted(APP_ENTRIES),
        "paris": "Europe/Paris",
    }


def test_migrate_one_shot_exits_zero(migrated: str):
    assert "Applying runs.0001_initial... OK" in migrated


def test_web_answers_healthz_readyz_its_healthcheck_and_stops_on_docker_stop(
    docker_env: dict[str, str], run_container: RunContainer
):
    port = free_port()
    name = run_container("web", env={"DTS_WEB_HOST": "127.0.0.1", "DTS_WEB_PORT": str(port)})
    wait_for_log(docker_env, name, "Application startup complete")
    assert get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})
    status, body = get(f"http://127.0.0.1:{port}/readyz")
    assert (status, body["failed"]) == (200, []), body
    wait_healthy(docker_env, name)  # its check finds uvicorn's port and asks /healthz
    elapsed, exit_code, log = stop_within_grace(docker_env, name, grace=30)
    assert exit_code == 0, log[-3000:]
    assert elapsed < 30


# Run in the image by `manage.py shell`: a job of the built-in dts.sleep and one run of it,
# published to the worker's queue once committed; prints the run's id.
TRIGGER_SLEEP_RUN = """
from apps.accounts.models import Team
from apps.jobs.services import job_create
from apps.runs.services.build import run_trigger
team, _ = Team.objects.get_or_create(name="image test")
name = f"sleep {team.jobs.count()}"
job = job_create(team=team, name=name, task_type="dts.sleep", args={"seconds": 6})
print(run_trigger(job=job).id)
"""


def run_state(database_url: str, run_id: str) -> str:
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT state FROM runs_run WHERE id = %s", [run_id])
        return cursor.fetchone()[0]


def test_worker_finishes_its_run_and_shuts_down_warm_on_docker_stop(
    docker_env: dict[str, str],
    image: str,
    container_env: list[str],
    database_url: str,
    run_container: RunContainer,
):
    name = run_container("worker", "--loglevel", "INFO", "--hostname", f"{CONTAINER_PREFIX}@%h")
    wait_for_log(docker_env, name, "ready.")
    wait_healthy(docker_env, name)  # its heartbeat touches the heartbeat file
    stale = docker(
        docker_env,
        *("exec", "--env", "DTS_HEARTBEAT_FILE=/nonexistent/heartbeat", name),
        *("python", "/app/compose/healthcheck.py"),
        check=False,
    )
    assert (stale.returncode, stale.stderr) == (
        1,
        "/nonexistent/heartbeat not touched in the last 60 s\n",
    )
    triggered = docker(
        docker_env,
        *("run", "--rm", "--network=host", *container_env, image),
        *("python", "manage.py", "shell", "--command", TRIGGER_SLEEP_RUN),
    )
    run_id = triggered.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 30
    while run_state(database_url, run_id) != "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_state(database_url, run_id) == "running"

    elapsed, exit_code, log = stop_within_grace(docker_env, name, grace=30)

    assert "Warm shutdown" in log, log[-3000:]
    assert run_state(database_url, run_id) == "succeeded", log[-3000:]
    assert exit_code == 0, log[-3000:]
    assert elapsed < 30


@pytest.mark.parametrize(
    ("process", "arguments", "env", "started"),
    [
        ("scheduler", ("--loglevel", "INFO"), {}, "beat: Starting..."),
        ("relay", (), {}, "Relay started"),
        ("indexer", (), INDEXER_ENV, "Indexer started"),
    ],
    ids=["scheduler", "relay", "indexer"],
)
@pytest.mark.usefixtures("indices_removed")
def test_process_starts_is_healthy_and_stops_on_docker_stop(
    docker_env: dict[str, str],
    run_container: RunContainer,
    process: str,
    arguments: tuple[str, ...],
    env: dict[str, str],
    started: str,
):
    name = run_container(process, *arguments, env=env)
    wait_for_log(docker_env, name, started)
    wait_healthy(docker_env, name)  # its loop touches the heartbeat file
    elapsed, exit_code, log = stop_within_grace(docker_env, name, grace=30)
    assert exit_code == 0, log[-3000:]
    assert elapsed < 30
