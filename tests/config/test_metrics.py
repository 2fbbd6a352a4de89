"""The web process's /metrics (the production ASGI server on config.asgi): django-prometheus's
series and dts's own, in an exposition Prometheus's linter accepts."""

import pytest
import requests
from django.conf import settings

from tests.conftest import web_start, web_url
from tests.metrics import promtool_check, samples_of, scrape
from tests.processes import stop_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_the_webs_metrics_pass_promtool(tmp_path):
    process = web_start(broker_url=settings.CELERY_BROKER_URL, log=tmp_path / "uvicorn.log")
    try:
        requests.get(f"{web_url(process)}/api/v1/jobs/", timeout=10)  # a request (401)
        text = scrape(f"{web_url(process)}/metrics")
    finally:
        stop_process(process)

    promtool_check(text)
    names = {name for name, _ in samples_of(text)}
    assert "dts_live_connections" in names
    assert "django_http_requests_total_by_method_total" in names
