"""Webhooks: /api/v1/webhooks/ — list, create, read, change, delete, ping; and each one's delivery
log, /api/v1/webhooks/{id}/deliveries/, with a failed delivery sent again on demand."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import BooleanValue, QueryText, TextField
from apps.api.pagination import LimitPage, LimitPageQuery, limit_page_of
from apps.api.permissions import role_require, team_administered
from apps.notifications.addresses import MAX_URL_LENGTH
from apps.notifications.models import (
    DELIVERY_LOG_FIELDS,
    Delivery,
    DeliveryState,
    NotifyOn,
    Webhook,
)
from apps.notifications.selectors import webhooks_visible
from apps.notifications.services import (
    MAX_RULES,
    MIN_SECRET_CHARS,
    delivery_redeliver,
    webhook_create,
    webhook_definition,
    webhook_delete,
    webhook_notify_resolved,
    webhook_ping,
    webhook_update,
)


class NotifySerializer(serializers.Serializer[Any]):
    job = TextField(max_length=200, required=False, help_text="A job of the webhook's team.")
    workflow = TextField(
        max_length=200, required=False, help_text="A workflow of the webhook's team."
    )
    on = serializers.ListField(
        child=serializers.ChoiceField(choices=NotifyOn.choices),
        max_length=len(NotifyOn.values),
        help_text="failure and success (a job's or a workflow's runs); late and missed (a "
        "job's health).",
    )


class WebhookDefinitionSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=200)
    url = TextField(
        max_length=MAX_URL_LENGTH,
        help_text="https:// (or http://) on a public address (docs/notifications.md).",
    )
    secret = TextField(
        min_length=MIN_SECRET_CHARS,
        max_length=200,
        write_only=True,
        help_text="The key each delivery is signed with (HMAC-SHA256); never shown again.",
    )
    enabled = BooleanValue(required=False)
    notify = NotifySerializer(  # type: ignore[call-arg]
        many=True, required=False, max_length=MAX_RULES, help_text="What it is told of."
    )


class WebhookCreateSerializer(WebhookDefinitionSerializer):
    team = TextField(max_length=100, help_text="The name of the owning team.")


class WebhookSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    team = serializers.CharField(source="team.name")
    name = serializers.CharField()
    url = serializers.CharField()
    enabled = serializers.BooleanField()
    notify = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(NotifySerializer(many=True))
    def get_notify(self, webhook: Webhook) -> list[dict[str, Any]]:
        notify: list[dict[str, Any]] = webhook_definition(webhook)["notify"]
        return notify


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    class Meta:
        model = Delivery
        fields = ["id", *DELIVERY_LOG_FIELDS]
        read_only_fields = fields


class WebhookFilterSerializer(LimitPageQuery):
    team = QueryText(required=False, max_length=100, help_text="A team's name.")
    name = QueryText(required=False, max_length=200, help_text="The exact name.")


class DeliveryFilterSerializer(LimitPageQuery):
    state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)
    event = QueryText(required=False, max_length=40, help_text="run.failed, job.late, ping, …")


def visible_webhook(request: Request, webhook_id: int, *, role: Role | None = None) -> Webhook:
    webhook = get_object_or_404(webhooks_visible(user=request.user), id=webhook_id)
    if role is not None:
        role_require(request, team_id=webhook.team_id, role=role)
    return webhook


class WebhookListView(APIView):
    @extend_schema(
        operation_id="webhooks_list",
        parameters=[WebhookFilterSerializer],
        responses={200: limit_page_of("Webhook", WebhookSerializer(many=True)), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        filters = WebhookFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        webhooks = webhooks_visible(user=request.user).order_by("name", "id")
        for field, lookup in (("team", "team__name"), ("name", "name")):
            if field in filters.validated_data:
                webhooks = webhooks.filter(**{lookup: filters.validated_data[field]})
        page = LimitPage()
        found = page.paginate_queryset(webhooks, request, self) or []
        return page.get_paginated_response(WebhookSerializer(found, many=True).data)

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookCreateSerializer,
        responses={201: WebhookSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        team = team_administered(request, data.pop("team"))
        data["notify"] = webhook_notify_resolved(team, data.get("notify", []))
        webhook = webhook_create(team=team, actor=request.user, **data)
        return Response(WebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    @extend_schema(
        operation_id="webhooks_retrieve", responses={200: WebhookSerializer, **ERROR_RESPONSES}
    )
    def get(self, request: Request, webhook_id: int) -> Response:
        return Response(WebhookSerializer(visible_webhook(request, webhook_id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        request=WebhookDefinitionSerializer(partial=True),
        responses={200: WebhookSerializer, **ERROR_RESPONSES},
        description="Change its fields; `notify` replaces every entry.",
    )
    def patch(self, request: Request, webhook_id: int) -> Response:
        webhook = visible_webhook(request, webhook_id, role=Role.ADMIN)
        body = WebhookDefinitionSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        if "notify" in data:
            data["notify"] = webhook_notify_resolved(webhook.team, data["notify"])
        webhook = webhook_update(webhook=webhook, data=data, actor=request.user)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(operation_id="webhooks_destroy", responses={204: None, **ERROR_RESPONSES})
    def delete(self, request: Request, webhook_id: int) -> Response:
        webhook_delete(
            webhook=visible_webhook(request, webhook_id, role=Role.ADMIN), actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookPingView(APIView):
    @extend_schema(
        operation_id="webhooks_ping",
        request=None,
        responses={201: DeliverySerializer, **ERROR_RESPONSES},
        description="Send a `ping` delivery, as any other is sent: its log shows how it went.",
    )
    def post(self, request: Request, webhook_id: int) -> Response:
        webhook = visible_webhook(request, webhook_id, role=Role.OPERATOR)
        delivery = webhook_ping(webhook=webhook)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_201_CREATED)


class DeliveryListView(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_list",
        parameters=[DeliveryFilterSerializer],
        responses={
            200: limit_page_of("Delivery", DeliverySerializer(many=True)),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request, webhook_id: int) -> Response:
        webhook = visible_webhook(request, webhook_id)
        filters = DeliveryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deliveries = webhook.deliveries.order_by("-created_at", "-id")
        values = filters.without_paging()
        for field in ("state", "event"):
            if field in values:
                deliveries = deliveries.filter(**{field: values[field]})
        page = LimitPage()
        found = page.paginate_queryset(deliveries, request, self) or []
        return page.get_paginated_response(DeliverySerializer(found, many=True).data)


class DeliveryRedeliverView(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_redeliver",
        request=None,
        responses={200: DeliverySerializer, **ERROR_RESPONSES},
        description="Send a failed delivery again, from its first attempt; 409 unless it failed.",
    )
    def post(self, request: Request, webhook_id: int, delivery_id: str) -> Response:
        webhook = visible_webhook(request, webhook_id, role=Role.OPERATOR)
        delivery = get_object_or_404(webhook.deliveries, id=delivery_id)
        return Response(DeliverySerializer(delivery_redeliver(delivery=delivery)).data)
