"""For consumers of dts's events: follow the topic and get each event once.

The relay delivers at least once (a relay killed mid-batch sends that batch again), so events may
arrive twice; `EventStream` drops the repeats by CloudEvents id. It remembers the last
`remember` ids in memory: across its own restarts, make the handling idempotent too.
"""

import json
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer

from apps.events.kafka import consumer_new, events_topic


class EventStream:
    def __init__(
        self,
        *,
        group_id: str,
        from_beginning: bool = False,
        remember: int = 100_000,
        consumer: Consumer | None = None,
    ) -> None:
        self.consumer = consumer or consumer_new(group_id=group_id, from_beginning=from_beginning)
        self.remember = remember
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def events(self, *, idle_timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield events in order, each once; its offset is committed when the caller asks for the
        next one. Ends after `idle_timeout` seconds without a message (None: never)."""
        self.consumer.subscribe([events_topic()])
        idle = 0.0
        try:
            while idle_timeout is None or idle < idle_timeout:
                message = self.consumer.poll(1.0)
                if message is None:
                    idle += 1.0
                    continue
                idle = 0.0
                if message.error():
                    raise RuntimeError(f"Kafka: {message.error()}")
                event = json.loads(message.value() or b"{}")
                if "id" in event and self._first_time(event["id"]):
                    yield event
                self.consumer.commit(message=message, asynchronous=True)
        finally:
            self.consumer.close()

    def _first_time(self, event_id: str) -> bool:
        if event_id in self.seen:
            self.duplicates += 1
            return False
        self.seen[event_id] = None
        if len(self.seen) > self.remember:
            self.seen.popitem(last=False)
        return True
