"""compose/compose.yaml: validated by docker compose and the compose-spec schema, and really run:
dts's own image brought up with compose and compose.host.yaml (these machines allow host networking
only) against the services of `make services`, one service alone and then the whole stack; a job
triggered through the API runs, succeeds, and its event reaches Kafka; the indexer copies runs and
their log lines into Elasticsearch, where the search API finds them.

The stack is a compose project of this session's own, with its own database, Redis database
(14, which no other test uses), events topic, Elasticsearch indices, indexer consumer group and
ports."""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from confluent_kafka import Consumer

from tests.deploy.docker import ELASTICSEARCH, REDIS, indices_remove, scratch_database
from tests.processes import REPO, free_port

COMPOSE_DIR = REPO / "compose"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
KAFKA = "127.0.0.1:59092"
REDIS_DB = 14
DTS_PROCESSES = {"migrate", "web", "worker", "scheduler", "relay", "indexer"}
BUNDLED = {"postgres", "redis", "kafka", "elasticsearch", "prometheus", "grafana"}
SECRETS = {
    "DJANGO_SECRET_KEY": "compose-test-only-" + "0123456789abcdefghijklmnopqrstuvwxyz",
    "POSTGRES_PASSWORD": "compose-test-postgres",
    "GRAFANA_ADMIN_PASSWORD": "compose-test-grafana",
}

# Run in the web container by `manage.py shell`: a team, an admin of it and an API token of that
# admin, printed. (An operator would use createsuperuser and the admin pages.)
MAKE_ADMIN = """
from django.contrib.auth.models import User
from apps.accounts.models import Membership, Role, Team
from apps.accounts.services import token_create
team = Team.objects.create(name="compose")
user = User.objects.create_user(username="compose-admin", password="unused-password-7")
Membership.objects.create(team=team, user=user, role=Role.ADMIN)
print(token_create(user=user, name="compose test")[1])
"""


@pytest.fixture(scope="module")
def compose_tool() -> str:
    result = subprocess.run(
        [REPO / "platform" / "tools" / "compose.sh"],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def env_file(folder: Path, values: dict[str, str]) -> Path:
    """compose/.env.example with `values` set (replacing its lines, or added)."""
    lines = []
    for line in (COMPOSE_DIR / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values[name]}" if name in values else line)
    example_names = {line.split("=", 1)[0] for line in lines}
    lines += [f"{name}={value}" for name, value in values.items() if name not in example_names]
    path = folder / "compose.env"
    path.write_text("\n".join(lines) + "\n")
    return path


class Stack:
    def __init__(self, tool: str, env: dict[str, str], env_path: Path, project: str) -> None:
        self.tool, self.env, self.env_path, self.project = tool, env, env_path, project

    def compose(
        self, *args: str, files: tuple[str, ...] = ("compose.yaml", "compose.host.yaml")
    ) -> subprocess.CompletedProcess:
        file_options = [option for name in files for option in ("-f", str(COMPOSE_DIR / name))]
        return subprocess.run(
            [
                *(self.tool, "--project-name", self.project, "--env-file", str(self.env_path)),
                *file_options,
                *args,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def states(self) -> dict[str, str]:
        """Each service's container state, with its health when it has one."""
        listed = self.compose("ps", "--all", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        containers = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        return {
            container["Service"]: container["Health"] or container["State"]
            for container in containers
        }


@pytest.fixture(scope="module")
def stack(
    compose_tool: str, docker_env: dict[str, str], image: str, tmp_path_factory
) -> Iterator[Stack]:
    """The compose project of this module: its settings, database and Redis database; brought
    down, with its volumes, at the end."""
    project = f"dts-compose-test-{os.getpid()}"
    index_prefix = f"dts-compose-test-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("compose")
    web_port = free_port()
    values = SECRETS | {
        "DTS_IMAGE": image,
        "DTS_WEB_PUBLISHED_PORT": str(web_port),
        "DTS_HOST_DATABASE": f"dts_compose_test_{os.getpid()}",
        "DTS_HOST_REDIS_DB": str(REDIS_DB),
        "DTS_HOST_WORKER_METRICS_PORT": str(free_port()),
        "DTS_HOST_SCHEDULER_METRICS_PORT": str(free_port()),
        "DTS_HOST_RELAY_METRICS_PORT": str(free_port()),
        "DTS_HOST_INDEXER_METRICS_PORT": str(free_port()),
        "DTS_HOST_LOG_INDEX_PREFIX": index_prefix,
        "DTS_HOST_INDEXER_GROUP": index_prefix,
        "DTS_EVENTS_TOPIC": f"dts.compose-test.{uuid.uuid4().hex[:8]}",
    }
    path = env_file(folder, values)
    # The containers read the same file (compose.yaml's env_file).
    path.write_text(path.read_text() + f"DTS_ENV_FILE={path}\n")
    with scratch_database(values["DTS_HOST_DATABASE"]):
        stack = Stack(compose_tool, docker_env, path, project)
        stack.web_url = f"http://127.0.0.1:{web_port}"  # type: ignore[attr-defined]
        stack.topic = values["DTS_EVENTS_TOPIC"]  # type: ignore[attr-defined]
        stack.index_prefix = index_prefix  # type: ignore[attr-defined]
        try:
            yield stack
        finally:
            stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
            redis.Redis.from_url(f"{REDIS}/{REDIS_DB}").flushdb()
            indices_remove(index_prefix)


def test_the_files_pass_docker_compose_config_and_the_compose_spec(stack: Stack, tmp_path: Path):
    resolved = {}
    for files in [("compose.yaml",), ("compose.yaml", "compose.host.yaml")]:
        result = stack.compose("config", files=files)
        assert result.returncode == 0, result.stderr
        resolved[files] = tmp_path / f"{len(files)}.yaml"
        resolved[files].write_text(result.stdout)
    # compose.host.yaml's `!reset` and `!override` are compose's own YAML tags: the schema checks
    # what they resolve to.
    checked = subprocess.run(
        [
            *(CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec"),
            *(COMPOSE_DIR / "compose.yaml", *resolved.values()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_host_file_runs_the_dts_processes_only(stack: Stack):
    result = stack.compose("config", "--services")
    assert set(result.stdout.split()) == DTS_PROCESSES
    result = stack.compose("config", "--services", files=("compose.yaml",))
    assert set(result.stdout.split()) == DTS_PROCESSES | BUNDLED


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_a_missing_secret_stops_compose_naming_it(stack: Stack, secret: str, tmp_path: Path):
    values = SECRETS | {secret: ""}
    path = env_file(tmp_path, values)
    broken = Stack(stack.tool, stack.env, path, stack.project)
    result = broken.compose("config", "--quiet", files=("compose.yaml",))
    assert result.returncode != 0
    assert f"set {secret} in compose/.env" in result.stderr


def test_one_service_comes_up_alone_after_the_migrations(stack: Stack):
    result = stack.compose("up", "--detach", "--wait", "--wait-timeout", "180", "web")
    assert result.returncode == 0, result.stderr
    assert stack.states() == {"migrate": "exited", "web": "healthy"}
    response = httpx.get(f"{stack.web_url}/readyz", timeout=10)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout} s")


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    """The whole stack brought up, and a client of its API as the admin of a team, compose."""
    result = stack.compose("up", "--detach", "--wait", "--wait-timeout", "180")
    assert result.returncode == 0, result.stderr
    made = stack.compose("exec", "-T", "web", "python", "manage.py", "shell", "-c", MAKE_ADMIN)
    assert made.returncode == 0, made.stderr
    with httpx.Client(
        base_url=f"{stack.web_url}/api/v1",  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"},
        timeout=10,
    ) as client:
        yield client


def run_of_new_job(api: httpx.Client, task_type: str, args: dict | None = None) -> str:
    """Create a job of the team compose and trigger it; the run's id."""
    job = {"team": "compose", "name": f"{task_type} {uuid.uuid4().hex[:6]}", "task_type": task_type}
    created = api.post("/jobs/", json=job | {"args": args or {}})
    assert created.status_code == 201, created.text
    triggered = api.post(f"/jobs/{created.json()['id']}/trigger/", json={})
    assert triggered.status_code == 201, triggered.text
    return triggered.json()["id"]


def run_outcome(api: httpx.Client, run_id: str) -> str:
    def finished() -> str | None:
        state = api.get(f"/runs/{run_id}/").json()["state"]
        return state if state in {"succeeded", "failed", "lost", "timed_out"} else None

    return wait_for(finished, 60, f"run {run_id} did not finish")


def test_the_whole_stack_comes_up_healthy_and_logs_json(stack: Stack, api: httpx.Client):
    assert stack.states() == {"migrate": "exited"} | dict.fromkeys(
        DTS_PROCESSES - {"migrate"}, "healthy"
    )
    # Healthy by a check that looks: behind compose's init, the worker's and the indexer's find
    # their heartbeat file (the image's), and fail on one that is never touched.
    for service in ("worker", "indexer"):
        for env, exit_code in (
            ((), 0),
            (("--env", "DTS_HEARTBEAT_FILE=/nonexistent/heartbeat"), 1),
        ):
            checked = stack.compose(
                *("exec", "-T", *env, service, "python", "/app/compose/healthcheck.py")
            )
            assert checked.returncode == exit_code, (service, checked.stderr)
    # DTS_LOG_FORMAT=json: each record one JSON object, naming its process.
    logs = stack.compose("logs", "--no-log-prefix", "indexer")
    started = [line for line in logs.stdout.splitlines() if "Indexer started" in line]
    assert started, logs.stdout[-3000:]
    record = json.loads(started[0])
    assert (record["process"], record["level"]) == ("indexer", "WARNING")


def test_the_stack_runs_a_job_triggered_through_the_api_and_publishes_its_event(
    stack: Stack, api: httpx.Client
):
    run_id = run_of_new_job(api, "dts.noop")
    assert run_outcome(api, run_id) == "succeeded"

    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": stack.topic,  # type: ignore[attr-defined]
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([stack.topic])  # type: ignore[attr-defined]

    def succeeded_event() -> dict | None:
        message = consumer.poll(1.0)
        if message is None or message.error():
            return None
        event = json.loads(message.value())
        if event["type"] == "dts.run.succeeded" and event["data"]["run_id"] == run_id:
            return event
        return None

    try:
        event = wait_for(succeeded_event, 60, "no dts.run.succeeded event of the run on Kafka")
    finally:
        consumer.close()
    assert event["subject"] == f"runs/{run_id}"


def test_the_indexer_makes_runs_and_their_log_lines_searchable(stack: Stack, api: httpx.Client):
    word = f"compose{uuid.uuid4().hex[:8]}"
    run_id = run_of_new_job(api, "dts.fail", {"message": f"{word} failed on purpose"})
    assert run_outcome(api, run_id) == "failed"

    # The run, by the words of its error: the runs index, since Elasticsearch is configured.
    # (503: Elasticsearch is away for a moment, which the indexer waits out; so does the test.)
    def run_found() -> list[str]:
        response = api.get("/runs/", params={"q": word})
        if response.status_code == 503:
            return []
        assert response.status_code == 200, response.text
        return [run["id"] for run in response.json()["results"]]

    assert wait_for(run_found, 90, "the failed run was not found by its error") == [run_id]

    # The lines a task logged, captured by the worker, published by the relay and indexed.
    logging_run = run_of_new_job(api, "dts.log", {"lines": 3, "message": f"{word} left a line"})
    assert run_outcome(api, logging_run) == "succeeded"

    def lines_found() -> list[dict]:
        response = api.get("/logs/", params={"run": logging_run})
        if response.status_code == 503:
            return []
        assert response.status_code == 200, response.text
        assert response.json()["backend"] == "elasticsearch"
        found = [line for line in response.json()["results"] if word in line["message"]]
        return found if len(found) == 3 else []

    lines = wait_for(lines_found, 90, "the run's log lines were not all found in Elasticsearch")
    assert [line["message"] for line in lines] == [f"{word} left a line {n}" for n in (3, 2, 1)]
    assert {line["run"] for line in lines} == {logging_run}
    # In the stack's own indices (DTS_HOST_LOG_INDEX_PREFIX), which the fixture removes.
    prefix = stack.index_prefix  # type: ignore[attr-defined]
    listed = httpx.get(
        f"{ELASTICSEARCH}/_cat/indices/{prefix}-*", params={"format": "json"}, timeout=10
    )
    names = [entry["index"] for entry in listed.json()]
    # <prefix>-<kind>-v<mapping version>-<day or month>
    kinds = {re.sub(r"-v\d+-[0-9.]+$", "", name) for name in names}
    assert kinds == {f"{prefix}-logs", f"{prefix}-runs"}, names


def test_the_prometheus_configuration_passes_promtool():
    checked = subprocess.run(
        [
            "promtool",
            "check",
            "config",
            "--syntax-only",
            COMPOSE_DIR / "prometheus" / "prometheus.yml",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
