"""API tokens: /api/v1/tokens/ — `dts login` trades a user name and password for a token here;
signed-in users list and revoke their own."""

from collections.abc import Sequence
from typing import Any, cast

from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.services import MAX_TOKEN_DAYS, token_create, token_revoke
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import BooleanValue, TextField
from apps.api.throttling import LoginThrottle, login_failed_lockout_check, login_lockout_check


class TokenSerializer(serializers.ModelSerializer[ApiToken]):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "read_only", "created_at", "expires_at", "revoked_at"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer[Any]):
    username = TextField(max_length=150)
    password = TextField(max_length=4096, trim_whitespace=False)
    name = TextField(max_length=100)
    days = serializers.IntegerField(min_value=1, max_value=MAX_TOKEN_DAYS, default=90)
    # Declared fields leave the class (DRF's metaclass), so this shadows no Field attribute.
    read_only = BooleanValue(default=False)  # type: ignore[assignment]


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The secret: shown this once, never again.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenListView(APIView):
    def get_permissions(self) -> Sequence[Any]:
        return [AllowAny()] if self.request.method == "POST" else super().get_permissions()

    def get_throttles(self) -> list[BaseThrottle]:
        return [LoginThrottle()] if self.request.method == "POST" else super().get_throttles()

    @extend_schema(
        operation_id="tokens_list", responses={200: TokenSerializer(many=True), **ERROR_RESPONSES}
    )
    def get(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(user=cast(User, request.user)).order_by("-created_at")
        return Response(TokenSerializer(tokens, many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer, **ERROR_RESPONSES},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        login_lockout_check(request, username=data["username"])
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None:
            login_failed_lockout_check(request)
            raise exceptions.AuthenticationFailed("Wrong user name or password.")
        token, secret = token_create(
            user=user, name=data["name"], days=data["days"], read_only=data["read_only"]
        )
        return Response(
            {**TokenSerializer(token).data, "token": secret}, status=status.HTTP_201_CREATED
        )


class TokenDetailView(APIView):
    @extend_schema(
        operation_id="tokens_revoke", responses={200: TokenSerializer, **ERROR_RESPONSES}
    )
    def delete(self, request: Request, token_id: int) -> Response:
        token = get_object_or_404(ApiToken, id=token_id, user=cast(User, request.user))
        return Response(TokenSerializer(token_revoke(token=token)).data)
