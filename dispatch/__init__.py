"""The Celery adapter: the Celery app, the broker queues, what the broker holds, and the message
contract between the platform and its workers. It imports no dts app; the apps and the process
layer (workers/) import it."""
