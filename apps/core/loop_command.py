"""What the long-running processes run by a management command share (the event relay, the log
indexer): a `--batch-size` and a `--metrics-port`, checked; their metrics served; and a stop on
SIGTERM or SIGINT that ends their loop between batches."""

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.metrics import metrics_serve


class LoopCommand(BaseCommand):
    # The settings of the batch size's default, and of the metrics port and address.
    batch_size_setting: str
    metrics_port_setting: str
    metrics_address_setting: str
    max_batch_size = 10_000

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=getattr(settings, self.batch_size_setting)
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=getattr(settings, self.metrics_port_setting),
            help="Serve Prometheus metrics on this port; 0 serves none.",
        )

    def loop_start(self, options: dict[str, Any]) -> threading.Event:
        """Check the options, serve the metrics, and return the event SIGTERM or SIGINT sets."""
        if not 1 <= options["batch_size"] <= self.max_batch_size:
            raise CommandError(f"--batch-size must be between 1 and {self.max_batch_size}.")
        if not 0 <= options["metrics_port"] <= 65535:
            raise CommandError("--metrics-port must be between 0 and 65535.")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        metrics_serve(
            port=options["metrics_port"],
            address=getattr(settings, self.metrics_address_setting),
            setting=f"--metrics-port ({self.metrics_port_setting})",
        )
        return stop
