from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class LimitPage(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class NewestFirstCursor(CursorPagination):
    """Runs newest first, by an opaque cursor: stable while new runs arrive."""

    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


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
    offset = serializers.IntegerField(required=False, min_value=0)

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
    cursor = serializers.CharField(required=False, max_length=1000, help_text="From `next`.")
