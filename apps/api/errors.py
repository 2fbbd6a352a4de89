"""One JSON error shape for every API error:

    {"error": {"status": 400, "code": "validation_failed", "message": "…", "field": "args",
               "errors": {"args": ["…"]}}}

`field` names the input at fault (or is null), `errors` lists every field's problems when there
are several. Bad input is always a 4xx: ApplicationError (apps.core.exceptions) is mapped here.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.exceptions import ApplicationError, InvalidTransition, NotFound, ValidationFailed

APPLICATION_STATUS = {
    ValidationFailed: status.HTTP_400_BAD_REQUEST,
    NotFound: status.HTTP_400_BAD_REQUEST,  # a name in the input that does not exist
    InvalidTransition: status.HTTP_409_CONFLICT,
}


ErrorSerializer = inline_serializer(
    "Error",
    fields={
        "error": inline_serializer(
            "ErrorDetail",
            fields={
                "status": serializers.IntegerField(),
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "field": serializers.CharField(allow_null=True),
                "errors": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField())
                ),
            },
        )
    },
)


# The errors any endpoint may answer, for the OpenAPI schema.
ERROR_RESPONSES = {
    code: OpenApiResponse(ErrorSerializer, description=description)
    for code, description in {
        400: "Bad input: `field` names it, `message` says why.",
        401: "Not signed in, or the token is unknown, expired or revoked.",
        403: "Signed in, but the role in the object's team (or a read-only token) forbids it.",
        404: "No such object among those of the user's teams.",
        409: "The object's state does not allow it.",
        413: "The request body is too large.",
        429: "Too many requests: wait as `Retry-After` says.",
    }.items()
}


TOO_LARGE = "too_large"


def body_too_large_message() -> str:
    return f"The request body is too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


def body_too_large_error() -> dict[str, Any]:
    """The 413 answered under /api/, the same whether config/body_limit.py refuses the body as it
    arrives or Django's own check does (for a body that came in without the middleware, as the
    test client's do)."""
    return error_body(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, TOO_LARGE, body_too_large_message())


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = TOO_LARGE

    def __init__(self) -> None:
        super().__init__(body_too_large_message())


def error_body(
    status_code: int, code: str, message: str, field: str | None = None, errors: Any = None
) -> dict[str, Any]:
    return {
        "error": {
            "status": status_code,
            "code": code,
            "message": message,
            "field": field,
            "errors": errors or {},
        }
    }


@csrf_exempt  # it changes nothing, whatever the method
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any /api/ address no endpoint has: the error shape, not Django's HTML page."""
    return JsonResponse(error_body(404, "not_found", f"No endpoint at {request.path}."), status=404)


def api_server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(500, "server_error", "The server failed."), status=500)
    return defaults.server_error(request)


def api_exception_handler(error: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(error, ApplicationError):
        code = APPLICATION_STATUS.get(type(error), status.HTTP_400_BAD_REQUEST)
        errors = _application_errors(error)
        name = "invalid_transition" if isinstance(error, InvalidTransition) else "validation_failed"
        return Response(error_body(code, name, error.message, error.field, errors), status=code)
    if isinstance(error, RequestDataTooBig):
        error = BodyTooLarge()
    if isinstance(error, Http404):
        error = exceptions.NotFound()
    response = exception_handler(error, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(error, exceptions.ValidationError) and isinstance(detail, dict):
        errors = {field: _messages(value) for field, value in detail.items()}
        field = next(iter(errors), None)
        message = f"{field}: {errors[field][0]}" if field else "Invalid input."
        if field == "non_field_errors":
            field, message = None, errors["non_field_errors"][0]
        response.data = error_body(response.status_code, "invalid", message, field, errors)
    else:
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
        kind = "error"
        if isinstance(error, exceptions.APIException):
            codes = error.get_codes()
            kind = str(codes.get("detail", kind) if isinstance(codes, dict) else codes)
        response.data = error_body(response.status_code, kind, message)
    return response


def _application_errors(error: ApplicationError) -> dict[str, list[str]]:
    """Every problem by field, each a list of messages (extra["errors"] may hold a mapping of
    field to message, or a list of messages about `error.field`)."""
    found = error.extra.get("errors")
    if isinstance(found, dict):
        return {field: _messages(problems) for field, problems in found.items()}
    if isinstance(found, list):
        return {error.field or "non_field_errors": [str(problem) for problem in found]}
    return {error.field: [error.message]} if error.field else {}


def _messages(value: Any) -> list[str]:
    if isinstance(value, list):
        return [
            item if isinstance(item, str) else "; ".join(_messages(item)) for item in value
        ] or ["Invalid."]
    if isinstance(value, dict):
        return [f"{key}: {'; '.join(_messages(item))}" for key, item in value.items()]
    return [str(value)]
