import logging

import pytest
from django.db import OperationalError, connection
from django.test import override_settings

from config.settings.base import cache_settings, channel_layer_settings
from tests.backing_services.control import free_port

ALL_REACHABLE = {"database": True, "broker": True, "cache": True, "live": True}


def closed_redis_url(credentials: str = "") -> str:
    return f"redis://{credentials}127.0.0.1:{free_port()}/0"


def address_of(url: str) -> str:
    return url.rsplit("@", 1)[-1].split("redis://")[-1].rsplit("/", 1)[0]


def test_healthz_answers_without_authentication(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_and_each_redis(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == ALL_REACHABLE
    assert response.json()["failed"] == []


@pytest.mark.django_db
def test_readyz_names_what_failed_with_its_address_but_not_its_credentials(client):
    url = closed_redis_url(credentials="dts:secret-password@")
    with override_settings(CELERY_BROKER_URL=url):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == [
        {"check": "broker", "service": "Redis", "address": address_of(url)}
    ]
    assert "secret-password" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_checks_the_channel_layer_redis_when_it_is_not_the_live_redis(client):
    url = closed_redis_url()
    with override_settings(CHANNEL_LAYERS=channel_layer_settings(url)):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["live"] is False
    assert response.json()["failed"] == [
        {"check": "live", "service": "Redis", "address": address_of(url)}
    ]


@pytest.mark.django_db
def test_readyz_names_every_check_that_shares_an_unreachable_server(client):
    url = closed_redis_url()
    with override_settings(CELERY_BROKER_URL=url, CACHES=cache_settings(url.replace("/0", "/1"))):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert [failure["check"] for failure in response.json()["failed"]] == ["broker", "cache"]


@pytest.mark.django_db
def test_readyz_skips_what_is_not_redis_as_in_make_dev(client):
    in_memory = {
        "CELERY_BROKER_URL": "memory://",
        "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        "DTS_LIVE_REDIS_URL": None,
        "CHANNEL_LAYERS": {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    }
    with override_settings(**in_memory):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["failed"] == []


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_unreachable(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", unreachable)
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] is False
    assert response.json()["failed"][0]["check"] == "database"
    assert response.json()["failed"][0]["service"] == "PostgreSQL"


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
    assert probes[0].json()["checks"] == ALL_REACHABLE | {"cache": False}
    port = url.split(":")[2].split("/")[0]
    outage_lines = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_lines) == 1, outage_lines  # once, however often it is probed
    assert outage_lines[0].startswith(f"Redis at 127.0.0.1:{port} unreachable: ")


@pytest.mark.django_db
def test_readyz_names_the_live_redis_when_only_it_is_unreachable(client):
    with override_settings(DTS_LIVE_REDIS_URL=closed_redis_url()):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == ALL_REACHABLE | {"live": False}


@pytest.mark.django_db
def test_a_failing_probe_writes_no_django_request_line_but_other_errors_do(client, caplog):
    with override_settings(CELERY_BROKER_URL=closed_redis_url()), caplog.at_level(logging.INFO):
        for _ in range(3):
            assert client.get("/readyz").status_code == 503
        assert client.get("/no-such-page/").status_code == 404

    assert [
        record.getMessage() for record in caplog.records if record.name == "django.request"
    ] == ["Not Found: /no-such-page/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
@override_settings(ALLOWED_HOSTS=["dts.example.com"], SECURE_SSL_REDIRECT=True)
def test_probes_and_scrapes_by_a_pod_address_over_plain_http_are_answered(client, path):
    # A kubelet probe or a Prometheus scrape: the pod's address as Host, plain HTTP.
    response = client.get(path, HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200


@override_settings(ALLOWED_HOSTS=["dts.example.com"], SECURE_SSL_REDIRECT=True)
def test_other_paths_still_need_an_allowed_host_and_https(client):
    assert client.get("/api/v1/jobs/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    assert client.get("/api/v1/jobs/", HTTP_HOST="dts.example.com").status_code == 301
    assert client.post("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status"), [("/healthz", 200), ("/readyz", 404), ("/metrics", 404)]
)
def test_only_healthz_answers_requests_a_proxy_forwarded(client, path, status):
    # Through the ingress, from the internet: /readyz names the backing servers, /metrics is
    # for Prometheus inside the cluster.
    assert client.get(path, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == status
