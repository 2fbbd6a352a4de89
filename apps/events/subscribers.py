"""Who hears of what is recorded, once it is committed: the events of the outbox
(apps.events.outbox, and the run's hot path in apps.runs.services.moves) and the lines of run logs
(apps.runs.logs). The recording side announces them here and knows nothing of who listens;
apps.live subscribes in its ready(), to stream them to browsers."""

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.db import transaction

from apps.events.models import OutboxEvent

logger = logging.getLogger(__name__)

EventsSubscriber = Callable[[list[OutboxEvent]], None]
LogLinesSubscriber = Callable[[str, list[dict[str, Any]]], None]

_events_subscribers: list[EventsSubscriber] = []
_log_lines_subscribers: list[LogLinesSubscriber] = []


def events_subscribe(subscriber: EventsSubscriber) -> None:
    """Have `subscriber` called with the events of each commit that records some."""
    if subscriber not in _events_subscribers:
        _events_subscribers.append(subscriber)


def log_lines_subscribe(subscriber: LogLinesSubscriber) -> None:
    """Have `subscriber` called with (run id, lines) as each batch of a run's log is written."""
    if subscriber not in _log_lines_subscribers:
        _log_lines_subscribers.append(subscriber)


def events_announce(events: Iterable[OutboxEvent]) -> None:
    """Tell the subscribers of `events` once the current transaction commits (at once, outside
    one). A failing subscriber is logged: what was recorded stays recorded."""
    events = list(events)
    if events and _events_subscribers:
        transaction.on_commit(partial(_tell, _events_subscribers, events), robust=True)


def log_lines_announce(*, run_id: Any, lines: list[dict[str, Any]]) -> None:
    """Tell the subscribers of lines just written to a run's log (API representation)."""
    if lines:
        _tell(_log_lines_subscribers, str(run_id), lines)


def _tell(subscribers: list[Callable[..., None]], *args: Any) -> None:
    for subscriber in subscribers:
        try:
            subscriber(*args)
        except Exception:
            logger.exception("A subscriber of recorded events failed: %r", subscriber)
