"""Workers and queues: /api/v1/workers/ and /api/v1/queues/. A user sees the queues their teams'
jobs use and the workers that consume one of them; staff and superusers see every one
(docs/api.md, "Who may do what")."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import ERROR_RESPONSES
from apps.runs.models import Worker
from apps.runs.selectors import queues_visible, run_ids_visible, workers_visible
from dispatch.broker import broker_queue_depths


class WorkerSerializer(serializers.ModelSerializer[Worker]):
    alive = serializers.SerializerMethodField(
        help_text="Its last heartbeat is within the heartbeat timeout and it has not stopped."
    )
    active_run_ids = serializers.SerializerMethodField(
        help_text="The runs it executes, among those the user may see."
    )

    class Meta:
        model = Worker
        fields = [
            "hostname",
            "pid",
            "queues",
            "concurrency",
            "started_at",
            "last_heartbeat_at",
            "stopped_at",
            "alive",
            "active_run_ids",
        ]
        read_only_fields = fields

    def get_alive(self, worker: Worker) -> bool:
        timeout = timedelta(seconds=settings.DTS_WORKER_HEARTBEAT_TIMEOUT)
        return worker.stopped_at is None and timezone.now() - worker.last_heartbeat_at < timeout

    def get_active_run_ids(self, worker: Worker) -> list[str]:
        visible: set[str] = self.context["visible_run_ids"]
        return [run_id for run_id in worker.active_run_ids if run_id in visible]


class QueueSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    depth = serializers.IntegerField(help_text="Messages waiting, over every priority.")


class WorkerListView(APIView):
    @extend_schema(
        operation_id="workers_list",
        responses={200: WorkerSerializer(many=True), **ERROR_RESPONSES},
        description="The workers consuming a queue of the user's teams' jobs (every worker for "
        "staff and superusers).",
    )
    def get(self, request: Request) -> Response:
        workers = workers_visible(user=request.user)
        active = {run_id for worker in workers for run_id in worker.active_run_ids}
        context = {"visible_run_ids": run_ids_visible(user=request.user, run_ids=active)}
        return Response(WorkerSerializer(workers, many=True, context=context).data)


class QueueListView(APIView):
    @extend_schema(
        operation_id="queues_list",
        responses={200: QueueSerializer(many=True), **ERROR_RESPONSES},
        description="The queues the user's teams' jobs use (every queue for staff and "
        "superusers), with the messages waiting in each.",
    )
    def get(self, request: Request) -> Response:
        depths = broker_queue_depths(queues_visible(user=request.user))
        rows = [{"name": name, "depth": depth} for name, depth in depths.items()]
        return Response(QueueSerializer(rows, many=True).data)
