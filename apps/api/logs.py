"""Log search: /api/v1/logs/ — run log lines of the user's teams that match a query, newest first,
with highlights, paged by cursor (apps.logs.search; docs/logs.md)."""

from collections.abc import Callable
from typing import Any

from django.core import signing
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from apps.accounts.selectors import user_teams
from apps.api.errors import ERROR_RESPONSES
from apps.api.fields import QueryText
from apps.api.pagination import IdField, QuerySerializer
from apps.logs.search import (
    MAX_PAGE_SIZE,
    MAX_QUERY_CHARS,
    LogQuery,
    Page,
    QueryRefused,
    RunQuery,
    SearchUnavailable,
    logs_search,
    query_key,
)

CURSOR_SALT = "dts.api.search.cursor"
DEFAULT_PAGE_SIZE = 50
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SearchUnavailableError(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "search_unavailable"


class LogSearchQuery(QuerySerializer):
    q = QueryText(
        required=False,
        max_length=MAX_QUERY_CHARS,
        help_text='Words the line\'s message holds (all of them); `"a phrase"`, `a | b`, '
        "`-word`, `prefix*` and parentheses as in Elasticsearch's simple query string.",
    )
    job = IdField(required=False)
    run = serializers.UUIDField(required=False)
    level = serializers.ChoiceField(choices=LEVELS, required=False)
    since = serializers.DateTimeField(required=False, help_text="Lines logged at or after.")
    until = serializers.DateTimeField(required=False, help_text="Lines logged before.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)
    cursor = QueryText(
        required=False, max_length=1000, help_text="From `next`, as given, with the same query."
    )


LogLineHits = inline_serializer(
    "LogLineHit",
    many=True,
    fields={
        "run": serializers.UUIDField(),
        "attempt": serializers.IntegerField(),
        "sequence": serializers.IntegerField(),
        "logged_at": serializers.DateTimeField(),
        "level": serializers.CharField(),
        "logger": serializers.CharField(),
        "message": serializers.CharField(),
        "job": serializers.IntegerField(),
        "job_name": serializers.CharField(),
        "team": serializers.IntegerField(),
        "task_type": serializers.CharField(),
        "queue": serializers.CharField(),
        "worker": serializers.CharField(),
        "highlight": serializers.CharField(
            allow_null=True,
            help_text="The message, HTML-escaped, with the matches in <mark> (null without q).",
        ),
    },
)
LogSearchPage = inline_serializer(
    "LogSearchPage",
    fields={
        "backend": serializers.ChoiceField(
            choices=["elasticsearch", "database"],
            help_text="`database`: no Elasticsearch is configured (make dev); every word of q "
            "is looked for as it is written, operators are not read.",
        ),
        "total": serializers.IntegerField(),
        "total_is_lower_bound": serializers.BooleanField(),
        "next": serializers.URLField(allow_null=True),
        "results": LogLineHits,
    },
)


def user_team_ids(request: Request) -> list[int] | None:
    """The teams whose logs the user may search; None: every team's (a superuser)."""
    if request.user.is_superuser:
        return None
    return list(user_teams(user=request.user).values_list("id", flat=True))


def cursor_decode(given: str | None, key: str) -> dict[str, Any] | None:
    if given is None:
        return None
    try:
        cursor = signing.loads(given, salt=CURSOR_SALT)
    except (signing.BadSignature, ValueError):
        cursor = None
    if not isinstance(cursor, dict) or cursor.get("key") != key:
        raise serializers.ValidationError(
            {"cursor": ["Not a cursor of this search: pass `next` as given, with the same query."]}
        )
    return dict(cursor["after"])


def search_page(
    request: Request,
    search: Callable[..., Page],
    query: LogQuery | RunQuery,
    *,
    size: int,
    cursor: str | None,
) -> tuple[Page, str | None]:
    """A page of `search` for the request, and the URL of the next page (a cursor bound to the
    query); bad input and Elasticsearch away raise the API's errors."""
    key = query_key(query)
    try:
        page = search(query, size=size, after=cursor_decode(cursor, key))
    except QueryRefused as refused:
        raise serializers.ValidationError({refused.field: [refused.message]}) from None
    except SearchUnavailable as unavailable:
        raise SearchUnavailableError(str(unavailable)) from None
    following = None
    if page.after is not None:
        signed = signing.dumps({"key": key, "after": page.after}, salt=CURSOR_SALT)
        following = replace_query_param(request.build_absolute_uri(), "cursor", signed)
    return page, following


class LogSearchView(APIView):
    @extend_schema(
        operation_id="logs_search",
        parameters=[LogSearchQuery],
        responses={200: LogSearchPage, **ERROR_RESPONSES},
        description="Run log lines of your teams' jobs, newest first. 503 while Elasticsearch "
        "cannot be reached (the rest of the API works on).",
    )
    def get(self, request: Request) -> Response:
        params = LogSearchQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = dict(params.validated_data)
        size = values.pop("limit", DEFAULT_PAGE_SIZE)
        cursor = values.pop("cursor", None)
        query = LogQuery(team_ids=user_team_ids(request), **values)
        page, following = search_page(request, logs_search, query, size=size, cursor=cursor)
        return Response(
            {
                "backend": page.backend,
                "total": page.total,
                "total_is_lower_bound": page.total_is_lower_bound,
                "next": following,
                "results": page.results,
            }
        )
