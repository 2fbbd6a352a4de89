"""A live server for the CLI (tests/conftest.py's api_server), and `dts` logged in to it."""

import json

import pytest
from django.core.cache import cache
from typer.testing import CliRunner

from apps.accounts.models import Role
from apps.accounts.services import token_create
from cli.main import app
from tests.factories import MembershipFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _throttle_counts_cleared():
    """Logins are throttled per client address, counted in Redis across tests."""
    cache.clear()


@pytest.fixture
def team():
    return TeamFactory(name="ops")


@pytest.fixture
def dts(api_server, tmp_path, monkeypatch, team):
    """Run `dts` as an admin of team "ops", logged in to the live server."""
    user = MembershipFactory(team=team, user=UserFactory(username="ana"), role=Role.ADMIN).user
    _, secret = token_create(user=user, name="cli")
    monkeypatch.setenv("DTS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DTS_URL", api_server)
    monkeypatch.setenv("DTS_TOKEN", secret)
    runner = CliRunner()

    def run(*args: str, expect: int = 0, input: str | None = None):
        result = runner.invoke(app, list(args), input=input)
        assert result.exit_code == expect, result.output
        return result

    return run


def as_json(result):
    return json.loads(result.stdout)
