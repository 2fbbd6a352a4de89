import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_a_browser_session_reads_but_changes_nothing_without_its_csrf_token(world):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.users["operator"])

    read = browser.get(f"/api/v1/jobs/{world.job.id}/")
    change = browser.post(f"/api/v1/jobs/{world.job.id}/pause/")

    assert read.status_code == 200
    assert change.status_code == 403
    assert "CSRF" in change.json()["error"]["message"]
    world.job.refresh_from_db()
    assert world.job.enabled
