import pytest

from apps.core.exceptions import ApplicationError, ValidationFailed
from apps.jobs import services
from apps.jobs.models import Job
from apps.jobs.services import NAME_TAKEN, job_create, job_update
from tests.factories import JobFactory, TeamFactory

pytestmark = pytest.mark.django_db


def test_create_stores_a_valid_job():
    job = job_create(
        team=TeamFactory(), name="nightly report", task_type="dts.sleep", args={"seconds": 1}
    )

    assert Job.objects.get(id=job.id).args == {"seconds": 1}


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"task_type": "os.system"}, "task_type", "not a registered task type"),
        ({"task_type": "dts.sleep", "args": {"seconds": "x"}}, "args", "is not of type 'number'"),
        ({"task_type": "dts.noop", "args": {"unexpected": 1}}, "args", "Additional properties"),
        ({"task_type": "dts.noop", "queue": "nowhere"}, "queue", "is not a valid choice"),
        ({"task_type": "dts.noop", "name": ""}, "name", "cannot be blank"),
        (
            {"task_type": "dts.noop", "soft_timeout_seconds": 10, "hard_timeout_seconds": 5},
            None,
            "soft timeout must be shorter",
        ),
        ({"task_type": "dts.noop", "hard_timeout_seconds": 0}, None, "at least 1 second"),
    ],
)
def test_create_refuses_bad_input_with_the_field_and_writes_nothing(fields, field, reason):
    with pytest.raises(ApplicationError) as raised:
        job_create(team=TeamFactory(), **{"name": "job", **fields})

    assert raised.value.field == field
    assert reason in raised.value.message
    assert Job.objects.count() == 0


def test_create_refuses_a_name_the_team_has_already():
    team = TeamFactory()
    JobFactory(team=team, name="taken")

    with pytest.raises(ValidationFailed) as raised:
        job_create(team=team, name="taken", task_type="dts.noop")

    assert (raised.value.field, raised.value.message) == ("name", NAME_TAKEN)


def test_another_teams_job_names_neither_clash_nor_show():
    JobFactory(team=TeamFactory(name="blue"), name="nightly")
    red = TeamFactory(name="red")
    renamed = JobFactory(team=red, name="weekly")

    created = job_create(team=red, name="nightly", task_type="dts.noop")
    job_update(job=renamed, data={"name": "daily"})

    assert sorted(Job.objects.filter(name="nightly").values_list("team__name", flat=True)) == [
        "blue",
        "red",
    ]
    assert created.team == red
    with pytest.raises(ValidationFailed) as raised:
        job_update(job=renamed, data={"name": "nightly"})  # red's own "nightly" is in the way
    assert (raised.value.field, raised.value.message) == ("name", NAME_TAKEN)


def test_a_name_taken_between_the_check_and_the_insert_is_refused_as_taken(monkeypatch):
    team = TeamFactory()
    JobFactory(team=team, name="taken")
    checks = []
    real_check = services._name_check

    def late_check(job):
        # The first check misses the other job, as if it had committed just after.
        checks.append(job.name)
        if len(checks) > 1:
            real_check(job)

    monkeypatch.setattr(services, "_name_check", late_check)
    monkeypatch.setattr(Job, "validate_constraints", lambda job, exclude=None: None)

    with pytest.raises(ValidationFailed) as raised:
        job_create(team=team, name="taken", task_type="dts.noop")

    assert (raised.value.field, raised.value.message) == ("name", NAME_TAKEN)
    assert Job.objects.filter(name="taken").count() == 1


def test_update_changes_the_given_fields():
    job = JobFactory(task_type="dts.echo", args={"a": 1})

    job_update(job=job, data={"args": {"a": 2}, "enabled": False})

    job.refresh_from_db()
    assert (job.args, job.enabled) == ({"a": 2}, False)


def test_update_validates_args_against_the_new_task_type_and_writes_nothing_when_bad():
    job = JobFactory(task_type="dts.echo", args={"a": 1})

    with pytest.raises(ValidationFailed) as raised:
        job_update(job=job, data={"task_type": "dts.sleep"})

    assert raised.value.field == "args"
    job.refresh_from_db()
    assert job.task_type == "dts.echo"


def test_update_refuses_fields_that_are_not_editable():
    job = JobFactory()

    with pytest.raises(ValidationFailed) as raised:
        job_update(job=job, data={"created_at": None})

    assert raised.value.field == "created_at"


@pytest.mark.parametrize(
    ("soft", "hard", "limits"),
    [
        (None, None, (300, 360)),
        (10, 20, (10, 20)),
        (None, 30, (30, 30)),
        (None, 1000, (300, 1000)),
        (10, None, (10, 360)),
        (600, None, (600, 660)),
    ],
)
def test_time_limits_never_put_the_soft_limit_past_the_hard_one(soft, hard, limits, settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT = 300, 360
    job = JobFactory.build(soft_timeout_seconds=soft, hard_timeout_seconds=hard)

    assert job.time_limits() == limits
