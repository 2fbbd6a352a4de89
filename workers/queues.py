from django.db import models


class Queue(models.TextChoices):
    """The broker queues that jobs may be routed to; a worker consumes those named by its -Q."""

    DEFAULT = "default", "default"
