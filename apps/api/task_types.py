from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import ERROR_RESPONSES
from apps.tasktypes.registry import task_type_list


class TaskTypeSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    description = serializers.CharField()
    schema = serializers.JSONField(help_text="The JSON Schema of the task type's arguments.")
    rate_limit_per_minute = serializers.IntegerField(allow_null=True)


class TaskTypeListView(APIView):
    @extend_schema(
        operation_id="task_types_list",
        responses={200: TaskTypeSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        return Response(TaskTypeSerializer(task_type_list(), many=True).data)
