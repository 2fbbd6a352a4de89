import logging

import pytest
from django.test import override_settings

from config.settings.base import cache_settings
from tests.backing_services.control import free_port


def closed_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_healthz_answers_without_authentication(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_and_each_redis(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": True,
        "broker": True,
        "cache": True,
        "live": True,
    }


@pytest.mark.django_db
def test_readyz_says_unavailable_when_the_broker_is_unreachable(client):
    with override_settings(CELERY_BROKER_URL=closed_redis_url()):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] is False


@pytest.mark.django_db
def test_readyz_names_the_cache_redis_when_only_it_is_unreachable(client, caplog):
    url = closed_redis_url()
    with override_settings(CACHES=cache_settings(url)), caplog.at_level(logging.INFO):
        probes = [client.get("/readyz") for _ in range(3)]

    assert {probe.status_code for probe in probes} == {503}
    assert probes[0].json()["checks"] == {
        "database": True,
        "broker": True,
        "cache": False,
        "live": True,
    }
    port = url.split(":")[2].split("/")[0]
    outage_lines = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_lines) == 1, outage_lines  # once, however often it is probed
    assert outage_lines[0].startswith(f"Redis at 127.0.0.1:{port} unreachable: ")


@pytest.mark.django_db
def test_readyz_names_the_live_redis_when_only_it_is_unreachable(client):
    with override_settings(DTS_LIVE_REDIS_URL=closed_redis_url()):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": True,
        "broker": True,
        "cache": True,
        "live": False,
    }


@pytest.mark.django_db
def test_a_failing_probe_writes_no_django_request_line_but_other_errors_do(client, caplog):
    with override_settings(CELERY_BROKER_URL=closed_redis_url()), caplog.at_level(logging.INFO):
        for _ in range(3):
            assert client.get("/readyz").status_code == 503
        assert client.get("/no-such-page/").status_code == 404

    assert [
        record.getMessage() for record in caplog.records if record.name == "django.request"
    ] == ["Not Found: /no-such-page/"]
