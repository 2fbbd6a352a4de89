"""Execute-run messages: each run's is Celery's own message for it, and a worker decodes it."""

import uuid

import pytest
from celery.worker.request import Request
from kombu import Queue

from dispatch.celery import app
from dispatch.messages import EXECUTE_RUN_TASK, ExecuteRun, MessageTemplate, execute_run_send
from workers.tasks import execute_run as execute_run_task

pytestmark = pytest.mark.integration


def execute_run(**options) -> ExecuteRun:
    defaults = {
        "run_id": str(uuid.uuid4()),
        "attempt": 1,
        "limited": False,
        "queue": "default",
        "priority": 5,
        "soft_time_limit": 300,
        "time_limit": 360,
    }
    return ExecuteRun(**(defaults | options))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"attempt": 3, "limited": True},
        {"queue": "faults", "priority": 9, "soft_time_limit": 5, "time_limit": 8},
    ],
)
def test_a_filled_template_is_the_message_celery_builds_for_that_run(options):
    message = execute_run(**options)
    other = execute_run(**(options | {"attempt": 2}))
    with app.producer_or_acquire() as producer:
        expected = MessageTemplate.built(message, producer)
        filled = MessageTemplate.built(other, producer).filled(message)
    assert filled == (expected.body, expected.options)


def test_a_published_message_is_decoded_by_celery_into_its_run_attempt_and_limits():
    queue = f"test-decode-{uuid.uuid4().hex[:8]}"
    messages = [
        execute_run(queue=queue, attempt=2, limited=True, priority=9, time_limit=8),
        execute_run(queue=queue, soft_time_limit=7, time_limit=9),
    ]
    execute_run_send(messages)

    with app.connection_for_read() as connection:
        bound = Queue(queue, routing_key=queue)(connection.default_channel)
        received = [bound.get(no_ack=True) for _ in messages]
    # The higher priority comes first; each is what a worker makes of it.
    requests = [Request(one, app=app, task=execute_run_task) for one in received]
    assert [(r.id, r.task_name, r.args, r.kwargs) for r in requests] == [
        (messages[0].run_id, EXECUTE_RUN_TASK, [messages[0].run_id, 2], {"limited": True}),
        (messages[1].run_id, EXECUTE_RUN_TASK, [messages[1].run_id, 1], {"limited": False}),
    ]
    assert [r.time_limits for r in requests] == [[8, 300], [9, 7]]
    assert [r.root_id for r in requests] == [m.run_id for m in messages]
    assert [one.properties["correlation_id"] for one in received] == [m.run_id for m in messages]
