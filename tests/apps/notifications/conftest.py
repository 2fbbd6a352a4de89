import pytest

from tests.webhooks import receiver_running


@pytest.fixture
def receiver():
    with receiver_running() as running:
        yield running
