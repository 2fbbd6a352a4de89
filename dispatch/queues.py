"""The broker queues jobs may be routed to, from the DTS_QUEUES setting; a worker consumes the
queues named by its --queues."""

from django.conf import settings

DEFAULT_QUEUE = "default"


def queue_names() -> list[str]:
    return list(settings.DTS_QUEUES)


def queue_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in queue_names()]
