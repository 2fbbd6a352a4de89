"""Real headless Chromium (Debian's, driven by Playwright) against the real web server (uvicorn).
Screenshots are saved under test-artifacts/e2e/."""

import os

import pytest
from django.conf import settings
from playwright.sync_api import sync_playwright

from tests.conftest import REPO, stop_process, web_start, web_url

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "e2e"
TIMEOUT_MS = 20_000


class Web:
    """The web server, which a test may stop and start again at the same address. It searches
    the log indices of the test's prefix (the `es` fixture, when a test asks for it first)."""

    def __init__(self, log):
        self.log = log
        self.env = {"DTS_LOG_INDEX_PREFIX": settings.DTS_LOG_INDEX_PREFIX}
        self.process = web_start(broker_url=settings.CELERY_BROKER_URL, log=log, env=self.env)
        self.url = web_url(self.process)

    def stop(self):
        stop_process(self.process)

    def start(self):
        port = int(self.url.rsplit(":", 1)[1])
        self.process = web_start(
            broker_url=settings.CELERY_BROKER_URL, log=self.log, port=port, env=self.env
        )


@pytest.fixture
def web(celery_worker_process, tmp_path):
    server = Web(tmp_path / "uvicorn.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    # Playwright's synchronous API runs an event loop in this thread; the ORM calls of these tests
    # are synchronous all the same.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
