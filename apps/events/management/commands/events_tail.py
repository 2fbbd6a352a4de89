"""`manage.py events_tail`: follow dts's events on Kafka and print each as a line of JSON."""

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.events.consumer import EventStream
from apps.events.models import EventType


class Command(BaseCommand):
    help = "Print dts's events from Kafka as JSON lines, each once, until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from-beginning", action="store_true", help="Start at the oldest event kept."
        )
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            dest="types",
            help="Only events of this type (repeatable), e.g. dts.run.failed.",
        )
        parser.add_argument("--max-events", type=int, help="Stop after printing this many.")
        parser.add_argument("--idle-timeout", type=float, help="Stop after this long without one.")

    def handle(self, *args: Any, **options: Any) -> None:
        unknown = sorted(set(options["types"]) - set(EventType.values))
        if unknown:
            raise CommandError(
                f"--type: unknown event type {unknown[0]!r}; one of {', '.join(EventType.values)}."
            )
        if options["max_events"] is not None and options["max_events"] < 1:
            raise CommandError("--max-events must be at least 1.")
        if options["idle_timeout"] is not None and options["idle_timeout"] <= 0:
            raise CommandError("--idle-timeout must be above 0.")
        # Its own consumer group: tailing never takes events from another consumer.
        stream = EventStream(
            group_id=f"dts-tail-{uuid.uuid4().hex}", from_beginning=options["from_beginning"]
        )
        printed = 0
        for event in stream.events(idle_timeout=options["idle_timeout"]):
            if options["types"] and event["type"] not in options["types"]:
                continue
            self.stdout.write(json.dumps(event, sort_keys=True))
            self.stdout.flush()
            printed += 1
            if printed == options["max_events"]:
                break
