import pytest
from django.test import override_settings


def test_healthz_answers_without_authentication(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_and_redis(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "redis": True}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_readyz_says_unavailable_when_redis_is_unreachable(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"] is False
