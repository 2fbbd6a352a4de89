import pytest


@pytest.mark.django_db
def test_metrics_are_exposed_for_prometheus(client):
    client.get("/admin/login/")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content
