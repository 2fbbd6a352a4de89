import factory

from apps.jobs.models import Job
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    name = factory.Sequence(lambda number: f"job {number}")
    task_type = "dts.echo"
    args = factory.LazyFunction(lambda: {"greeting": "hello"})


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    job = factory.SubFactory(JobFactory)
    trigger = RunTrigger.MANUAL
    state = RunState.PENDING
    task_type = factory.SelfAttribute("job.task_type")
    args = factory.SelfAttribute("job.args")
