"""What the Redis broker holds: the only module that looks inside kombu's Redis layout."""

import json
from collections.abc import Iterable

from workers.celery import app


def broker_waiting_task_ids(queues: Iterable[str]) -> set[str]:
    """The task ids of every message waiting in `queues`, at every priority level (not those a
    worker has received: the workers' heartbeats report those)."""
    ids: set[str] = set()
    with app.connection_for_read() as connection:
        client = connection.default_channel.client  # type: ignore[attr-defined]  # Redis channel
        for queue in queues:
            for key in client.scan_iter(match=f"{queue}*", _type="list"):
                ids.update(
                    str(json.loads(raw)["headers"]["id"]) for raw in client.lrange(key, 0, -1)
                )
    return ids
