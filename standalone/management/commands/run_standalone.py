"""`make dev`: web, a worker and the scheduler in one process, on SQLite and an in-memory broker.

For trying dts on one machine; production runs each process on its own (see the README). This
command checks its options, migrates and loads the demo; standalone/serve.py is the process.
"""

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from standalone.demo import demo_load
from standalone.serve import standalone_serve


class Command(BaseCommand):
    help = "Run web, a worker and the scheduler in this one process (the `make dev` platform)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument(
            "--shutdown-wait",
            type=float,
            default=10.0,
            help="Seconds to wait, when stopping, for the runs still executing (default 10).",
        )
        parser.add_argument("--demo-username", default="admin")
        parser.add_argument("--demo-password", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        if not options["shutdown_wait"] >= 0:
            raise CommandError("--shutdown-wait must be 0 or more seconds.")
        if not settings.CELERY_BROKER_URL.startswith("memory://"):
            raise CommandError(
                "run_standalone embeds its worker with the in-memory broker; "
                "use config.settings.local (CELERY_BROKER_URL=memory://)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        demo_load(username=options["demo_username"], password=options["demo_password"])
        url = f"http://{options['host']}:{options['port']}"
        self.stdout.write(
            self.style.SUCCESS(
                f"dts is starting at {url}/ (live runs; the admin at {url}/admin/) — log in as "
                f"{options['demo_username']} / {options['demo_password']}"
            )
        )
        standalone_serve(
            host=options["host"],
            port=options["port"],
            concurrency=options["concurrency"],
            shutdown_wait=options["shutdown_wait"],
        )
