"""What the Redis broker holds: the only module that looks inside kombu's Redis layout."""

import json
from collections.abc import Iterable

from workers.celery import app


def broker_task_ids(queues: Iterable[str]) -> set[str]:
    """The task ids of every message waiting in `queues` (all priority levels) or delivered to a
    worker and not yet acknowledged."""
    ids: set[str] = set()
    with app.connection_for_read() as connection:
        client = connection.default_channel.client  # type: ignore[attr-defined]  # Redis channel
        for queue in queues:
            for key in client.scan_iter(match=f"{queue}*", _type="list"):
                ids.update(_task_id(raw) for raw in client.lrange(key, 0, -1))
        for raw in client.hvals("unacked"):
            payload, _exchange, _routing_key = json.loads(raw)
            ids.add(_task_id(json.dumps(payload)))
    return ids


def _task_id(raw: bytes | str) -> str:
    return str(json.loads(raw).get("headers", {}).get("id", ""))
