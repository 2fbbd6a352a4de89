from datetime import UTC
from typing import Any

from django.core import signing
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.pagination import Cursor, CursorPagination, LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from apps.api.fields import QueryText

# The largest value of a 64-bit signed integer: every id (and every integer a query may compare
# with a column) stays below it, so no database is asked about a number it cannot hold.
MAX_ID = 2**63 - 1
# The deepest offset of a limit/offset page: past it, ask with filters instead.
MAX_OFFSET = 1_000_000


class LimitPage(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class NewestFirstCursor(CursorPagination):
    """Runs newest first, by an opaque cursor: stable while new runs arrive.

    A cursor is signed (django.core.signing, with the secret key): only one this server wrote is
    read, and anything else, forged or mangled, is a 400 naming `cursor`, never a query with a
    position nobody checked."""

    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    signing_salt = "dts.api.cursor"
    refused_message = "Not a cursor of this server: pass `next` or `previous` as it was given."

    def encode_cursor(self, cursor: Cursor) -> str:
        signed = signing.dumps(
            {"o": cursor.offset, "r": cursor.reverse, "p": cursor.position},
            salt=self.signing_salt,
        )
        if self.base_url is None:  # set by paginate_queryset, which alone encodes cursors
            raise RuntimeError("A cursor is encoded only while a page is paginated.")
        return replace_query_param(self.base_url, self.cursor_query_param, signed)

    def decode_cursor(self, request: Request) -> Cursor | None:
        given = request.query_params.get(self.cursor_query_param)
        if given is None:
            return None
        try:
            tokens = signing.loads(given, salt=self.signing_salt)
        except (signing.BadSignature, ValueError):  # ValueError: text no signature could be of
            tokens = None
        cursor = self._checked(tokens)
        if cursor is None:
            raise serializers.ValidationError({self.cursor_query_param: [self.refused_message]})
        return cursor

    def _checked(self, tokens: Any) -> Cursor | None:
        """The cursor `tokens` describe, if each is of its kind (a signed cursor always is; this
        holds even were the secret key to leak)."""
        if not isinstance(tokens, dict) or set(tokens) != {"o", "r", "p"}:
            return None
        offset, reverse, position = tokens["o"], tokens["r"], tokens["p"]
        if type(offset) is not int or not 0 <= offset <= self.offset_cutoff:
            return None
        if type(reverse) is not bool:
            return None
        if position is not None and not _is_aware_datetime(position):
            return None
        return Cursor(offset=offset, reverse=reverse, position=position)


def limit_page_of(name: str, item: serializers.BaseSerializer[Any]) -> Any:
    """The OpenAPI shape of a LimitPage of `item`s."""
    return inline_serializer(
        f"Paginated{name}List",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


def cursor_page_of(name: str, item: serializers.BaseSerializer[Any]) -> Any:
    """The OpenAPI shape of a NewestFirstCursor page of `item`s."""
    return inline_serializer(
        f"Cursor{name}List",
        fields={
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


class QuerySerializer(serializers.Serializer[Any]):
    """Query parameters: a parameter the endpoint does not have, or an empty value, is refused
    like any other bad value (DRF would ignore the one and take the other for an absent one)."""

    def to_internal_value(self, data: Any) -> Any:
        names: list[str] = list(self.fields)
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise serializers.ValidationError({unknown[0]: ["Unknown parameter."]})
        empty = [name for name in names if data.get(name) == ""]
        if empty:
            raise serializers.ValidationError({empty[0]: ["May not be empty."]})
        return super().to_internal_value(data)


class LimitPageQuery(QuerySerializer):
    """The parameters of a LimitPage; the paginator reads them, this documents and checks them."""

    limit = serializers.IntegerField(required=False, min_value=1, max_value=LimitPage.max_limit)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)

    def without_paging(self) -> dict[str, Any]:
        """The validated parameters other than the page's."""
        return {
            name: value
            for name, value in self.validated_data.items()
            if name not in ("limit", "offset", "cursor")
        }


class CursorPageQuery(LimitPageQuery):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=NewestFirstCursor.max_page_size
    )
    offset = None  # type: ignore[assignment]  # a cursor page has no offset
    cursor = QueryText(
        required=False, max_length=1000, help_text="From `next` or `previous`, as given."
    )


class IdField(serializers.IntegerField):
    """An id in a query: a positive 64-bit integer (any other number is a 400 naming the
    parameter, not a question the database cannot answer)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


def _is_aware_datetime(text: Any) -> bool:
    """`text` is a date and time with its offset that UTC can also express."""
    try:
        moment = parse_datetime(text) if isinstance(text, str) else None
        if moment is None or moment.tzinfo is None:
            return False
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return True
