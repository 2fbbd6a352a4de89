from django.contrib.auth.models import User
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.models import ApiToken
from apps.accounts.services import token_authenticate
from apps.core.client import bearer_secret


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer dts_…`, an API token (apps.accounts.models.ApiToken); the scheme in
    any case, as on WebSockets (apps.core.client.bearer_secret)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        secret = bearer_secret(authentication.get_authorization_header(request))
        if secret is None:
            return None
        token = token_authenticate(secret=secret)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is unknown, expired or revoked.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer", "description": "An API token: dts_…"}
