"""The CloudEvents envelope of an event: what the relay publishes to Kafka and the WebSockets
relay to browsers."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from apps.events.models import WORKFLOW_EVENT_PREFIX, OutboxEvent

SOURCE = "/dts"
SPEC_VERSION = "1.0"
# The version of the `data` of every event type; a breaking change of one bumps it.
SCHEMA_VERSION = 1


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode JSON object. Its `data` holds the job's id,
    which is also the Kafka key; a workflow run's event, its workflow's."""
    key = "workflow_id" if event.type.startswith(WORKFLOW_EVENT_PREFIX) else "job_id"
    return {
        "specversion": SPEC_VERSION,
        "id": str(event.event_id),
        "source": SOURCE,
        "type": str(event.type),
        "subject": event.subject,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "schemaversion": SCHEMA_VERSION,
        "data": {**event.data, key: event.job_id},
    }


def envelope_bytes(event: OutboxEvent) -> bytes:
    return json.dumps(envelope(event), cls=DjangoJSONEncoder, separators=(",", ":")).encode()
