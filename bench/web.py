"""What the API and live benchmarks' web servers share: a free loopback port, and the environment
of a server with production-like settings on a benchmark database.

Nothing here imports Django, so a harness can use it before Django is set up.
"""

import socket

from bench.databases import database_url

SECRET_KEY = "bench-only-" + "k" * 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def web_server_env(*, settings_module: str, database: str) -> dict[str, str]:
    """Settings `settings_module` on loopback over plain HTTP, on the database `database`."""
    return {
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url(database),
    }
