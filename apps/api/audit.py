from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import QueryText
from apps.api.pagination import LimitPage, LimitPageQuery, limit_page_of
from apps.audit.models import AuditAction, AuditEntry
from apps.audit.selectors import audit_entries_visible


class AuditEntrySerializer(serializers.ModelSerializer[AuditEntry]):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "team_id",
            "changes",
        ]
        read_only_fields = fields


class AuditFilterSerializer(LimitPageQuery):
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    object_type = QueryText(required=False, max_length=50)
    object_id = QueryText(required=False, max_length=64)


class AuditListView(APIView):
    @extend_schema(
        operation_id="audit_list",
        parameters=[AuditFilterSerializer],
        responses={
            200: limit_page_of("AuditEntry", AuditEntrySerializer(many=True)),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        filters = AuditFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        entries = audit_entries_visible(user=request.user).filter(**filters.without_paging())
        page = LimitPage()
        rows = page.paginate_queryset(entries, request, self)
        return page.get_paginated_response(AuditEntrySerializer(rows, many=True).data)
