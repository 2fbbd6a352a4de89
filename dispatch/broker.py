"""What the broker holds: the only module that looks inside kombu's Redis layout."""

import json
from collections.abc import Iterable, Iterator
from typing import Any

from dispatch.celery import app


def broker_waiting_task_ids(queues: Iterable[str]) -> set[str]:
    """The task ids of every message waiting in `queues`, at every priority level (not those a
    worker has received: the workers' heartbeats report those)."""
    ids: set[str] = set()
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel  # kombu's Redis channel
        for key in _priority_lists(channel, queues):
            ids.update(
                str(json.loads(raw)["headers"]["id"]) for raw in channel.client.lrange(key, 0, -1)
            )
    return ids


def broker_queue_depths(queues: Iterable[str]) -> dict[str, int]:
    """How many messages wait in each queue, over its priority levels: kombu's count, so the
    in-memory broker of `make dev` answers too."""
    depths = {}
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel  # a kombu virtual transport's channel
        for queue in queues:
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except connection.channel_errors:  # never declared: nothing was ever sent to it
                depths[queue] = 0
    return depths


def _priority_lists(channel: Any, queues: Iterable[str]) -> Iterator[str]:
    """The Redis list of each priority level of each queue (kombu keeps one list per level)."""
    for queue in queues:
        for priority in channel.priority_steps:
            yield channel._q_for_pri(queue, priority)
