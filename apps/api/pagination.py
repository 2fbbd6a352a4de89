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
