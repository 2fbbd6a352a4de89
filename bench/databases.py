"""The benchmarks' PostgreSQL databases on the loopback server of `make services`: fresh and
migrated, or copies of a migrated template.

Nothing here imports Django, so a harness can use it before Django is set up.
"""

import hashlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgres://dts:dts@127.0.0.1:55432"


def database_url(name: str) -> str:
    return f"{POSTGRES_URL}/{name}"


def _admin(statement: sql.Composable, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement on the maintenance database, outside any transaction."""
    connection = psycopg2.connect(database_url("postgres"))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def database_drop(name: str) -> None:
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_recreate(name: str, env: dict[str, str] | None = None) -> None:
    """An empty database `name`, migrated by `manage.py migrate` in this environment plus `env`."""
    database_drop(name)
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate_env = os.environ | (env or {})
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=migrate_env, check=True
    )


def database_copy(template: str, name: str) -> None:
    """A fresh database `name`, a copy of the migrated `template` (much faster than migrating)."""
    database_drop(name)
    _admin(
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    )


def template_ensure(template: str, settings_module: str) -> bool:
    """Migrate `template` with `settings_module` unless it already holds these migrations.

    Returns whether it had to migrate.
    """
    fingerprint = _migrations_fingerprint(settings_module)
    rows = _admin(
        sql.SQL("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s"),
        (template,),
    )
    if rows and rows[0][0] == fingerprint:
        return False
    database_drop(template)
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    env = {"DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": database_url(template)}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate {template} failed:\n{result.stdout}\n{result.stderr}")
    _admin(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(template), sql.Literal(fingerprint)
        )
    )
    return True


def _migrations_fingerprint(settings_module: str) -> str:
    digest = hashlib.sha256(settings_module.encode())
    for package in ("django", "django-celery-beat"):
        digest.update(f"{package}=={importlib.metadata.version(package)}".encode())
    for path in sorted(REPO.glob("apps/*/migrations/*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def postgres_version() -> str:
    return str(_admin(sql.SQL("SHOW server_version"))[0][0])


def postgres_started_at() -> str:
    """When the server started: it changes when PostgreSQL restarts."""
    return str(_admin(sql.SQL("SELECT pg_postmaster_start_time()"))[0][0])
