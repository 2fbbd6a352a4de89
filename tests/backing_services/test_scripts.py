"""platform/local/*.sh start and stop only their own instance: the one of their folder
(DTS_SERVICES_DIR, by default the checkout's .services) on their ports. Tests find the instance
they use by its port, whichever folder started it (tests.backing_services.control)."""

import pytest
import redis

from tests.backing_services.control import (
    PORTS_DIR,
    LocalService,
    free_port,
    private_service,
    service_in_use,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def private_redis():
    with private_service("redis", start=True) as service:
        yield service


def pong(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


def test_a_private_instance_runs_in_its_folder_on_its_port(private_redis):
    assert pong(private_redis.port)
    assert (private_redis.folder / "redis.pid").is_file()

    private_redis.stop()

    assert not pong(private_redis.port)
    assert not (private_redis.folder / "redis.pid").exists()


def test_another_folders_instance_is_neither_stopped_nor_doubled(private_redis, tmp_path):
    other = tmp_path / "other"
    stop = LocalService("redis", other, {"DTS_REDIS_PORT": private_redis.port}).run("stop")
    # A broker on a port already served: no second one is launched (kafka.sh used to try).
    kafka = LocalService(
        "kafka",
        other,
        {"DTS_KAFKA_PORT": private_redis.port, "DTS_KAFKA_CONTROLLER_PORT": free_port()},
    ).run("start", timeout=30)

    for refused in (stop, kafka):
        assert refused.returncode == 1, refused
        assert "is served by pid" in refused.stderr
        assert f"from {private_redis.folder}" in refused.stderr
    assert "not stopping it" in stop.stderr
    assert "not starting it" in kafka.stderr
    assert pong(private_redis.port)
    assert not (other / "kafka" / "kafka.pid").exists()


def test_stopping_what_does_not_run_succeeds(tmp_path):
    idle = LocalService("redis", tmp_path, {"DTS_REDIS_PORT": free_port()}).run("stop")
    assert idle.returncode == 0
    assert "not running" in idle.stdout


def test_tests_find_the_instance_serving_their_port(private_redis, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{private_redis.port}/3"

    assert service_in_use("redis") == private_redis


def test_tests_find_the_shared_services_they_use():
    for name in ("postgres", "redis", "kafka"):
        instance = service_in_use(name)
        done = instance.run("status")
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        assert "up at" in done.stdout


def test_the_scripts_record_which_folder_serves_a_port(private_redis):
    record = (PORTS_DIR / str(private_redis.port)).read_text().splitlines()

    assert record == [str(private_redis.folder), str(private_redis.folder / "redis.pid")]
