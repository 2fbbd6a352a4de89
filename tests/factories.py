import factory
from django.contrib.auth.models import User
from django.utils import timezone

from apps.accounts.models import Membership, Role, Team
from apps.jobs.models import Job
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState
from apps.schedules.models import Schedule, ScheduleKind


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda number: f"user{number}")
    password = factory.django.Password("password")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda number: f"team{number}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda number: f"job {number}")
    task_type = "dts.echo"
    args = factory.LazyFunction(lambda: {"greeting": "hello"})


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    job = factory.SubFactory(JobFactory)
    trigger = RunTrigger.MANUAL
    state = RunState.QUEUED
    queued_at = factory.LazyFunction(timezone.now)
    task_type = factory.SelfAttribute("job.task_type")
    args = factory.SelfAttribute("job.args")


class ScheduleFactory(factory.django.DjangoModelFactory):
    """A schedule row as stored; tests that need validation go through schedule_create."""

    class Meta:
        model = Schedule

    job = factory.SubFactory(JobFactory)
    kind = ScheduleKind.INTERVAL
    interval_seconds = 60
