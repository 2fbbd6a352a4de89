import secrets

import pytest
from django.conf import settings

from apps.live.streams import RedisBacklog


@pytest.fixture
def redis_backlog():
    """The real Redis backlog with a pending list and a bell of this test's own: what other tests
    or other test runs on the same Redis push, and the relays they run, neither add to them, ring
    the bell nor take from them."""
    backlog = RedisBacklog(settings.DTS_LIVE_REDIS_URL)
    suffix = f"test-{secrets.token_hex(8)}"
    backlog.PENDING = f"{RedisBacklog.PENDING}:{suffix}"
    backlog.BELL = f"{RedisBacklog.BELL}:{suffix}"
    yield backlog
    backlog.redis.delete(backlog.PENDING, backlog.BELL)
