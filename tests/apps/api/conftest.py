import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.runs.states import RunState
from tests.factories import (
    JobFactory,
    MembershipFactory,
    RunFactory,
    ScheduleFactory,
    TeamFactory,
    UserFactory,
)

ACTORS = ["anonymous", "viewer", "operator", "admin", "other_team", "superuser"]


@pytest.fixture
def world(db):
    """Team "red" with a job and its runs, team "blue" with its own, and a user per role."""
    red, blue = TeamFactory(name="red"), TeamFactory(name="blue")
    users = {
        role: MembershipFactory(team=red, user=UserFactory(username=role), role=role).user
        for role in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
    }
    users["other_team"] = MembershipFactory(
        team=blue, user=UserFactory(username="other_team"), role=Role.ADMIN
    ).user
    users["superuser"] = UserFactory(username="root", is_superuser=True, is_staff=True)
    job = JobFactory(team=red, name="red job", task_type="dts.noop", args={})
    blue_job = JobFactory(team=blue, name="blue job", task_type="dts.noop", args={})

    class World:
        pass

    world = World()
    world.red, world.blue, world.users = red, blue, users
    world.job, world.blue_job = job, blue_job
    world.queued_run = RunFactory(job=job, task_type="dts.noop", args={})
    world.failed_run = RunFactory(job=job, task_type="dts.noop", args={}, state=RunState.FAILED)
    world.blue_run = RunFactory(job=blue_job, task_type="dts.noop", args={})
    world.schedule = ScheduleFactory(job=job)
    return world


@pytest.fixture
def client_as(world):
    def client(actor: str) -> APIClient:
        api = APIClient()
        if actor != "anonymous":
            api.force_login(world.users[actor])
        return api

    return client


@pytest.fixture(autouse=True)
def throttle_counts_cleared():
    """Throttling counts requests in the (Redis) cache, which outlives a test."""
    cache.clear()
