"""Searching run log lines (docs/logs.md, "Search"), scoped to the user's teams inside the query:
a team's filter is part of what Elasticsearch (or PostgreSQL) is asked, so no line, count or
highlight of another team is ever computed, let alone filtered out afterwards.

With Elasticsearch: `simple_query_string` over the message only (it cannot reach other fields, and
never fails on syntax), newest first, highlighted, paged with `search_after` in a point in time
(whose id stays in the cache: a cursor only names it). Without (ELASTICSEARCH_URL empty, make
dev): the same shape from PostgreSQL, every word of the query in the line (case-insensitive),
labelled `database`."""

import html
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Q
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, Elasticsearch, NotFoundError

from apps.logs.client import elasticsearch_client, elasticsearch_configured, elasticsearch_outage
from apps.logs.documents import LINES
from apps.runs.models import RunLogLine

MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 16
MAX_PAGE_SIZE = 200
# Operators a query may use: no fuzziness, slop or near-by matching, which can run away.
QUERY_FLAGS = "AND|OR|NOT|PHRASE|PREFIX|PRECEDENCE|WHITESPACE|ESCAPE"
POINT_IN_TIME_KEEP_ALIVE_SECONDS = 120
HIGHLIGHT_TAGS = ("<mark>", "</mark>")
EXPIRED = "This page's search has expired: search again."
DATABASE_FIELDS = (
    *("id", "run_id", "attempt", "sequence", "logged_at", "level", "logger", "message"),
    *("run__job_id", "run__job__name", "run__job__team_id", "run__task_type", "run__queue"),
    "run__worker",
)
LINE_FIELDS = (
    *("run", "attempt", "sequence", "logged_at", "level", "logger", "message"),
    *("job", "job_name", "team", "task_type", "queue", "worker"),
)


class QueryRefused(ValueError):
    """A search that cannot be asked: `field` names the parameter, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class SearchUnavailable(RuntimeError):
    """Elasticsearch cannot answer now."""


@dataclass(frozen=True)
class LogQuery:
    """A search of log lines. `team_ids` None: every team's (a superuser)."""

    team_ids: list[int] | None
    q: str = ""
    job: int | None = None
    run: uuid.UUID | None = None
    level: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def words(self) -> list[str]:
        return self.q.split()

    def check(self) -> None:
        if len(self.q) > MAX_QUERY_CHARS:
            raise QueryRefused("q", f"At most {MAX_QUERY_CHARS} characters.")
        if len(self.words()) > MAX_QUERY_WORDS:
            raise QueryRefused("q", f"At most {MAX_QUERY_WORDS} words.")
        if self.q and not re.search(r"\w", self.q):
            raise QueryRefused("q", "Needs a word to look for: operators alone match nothing.")
        if self.since and self.until and self.since >= self.until:
            raise QueryRefused("until", "Must be after `since`.")

    def key(self) -> str:
        """What a cursor is bound to: the same query, by the same scope."""
        return repr((self.team_ids, self.q, self.job, self.run, self.level, self.since, self.until))


@dataclass
class LogPage:
    lines: list[dict[str, Any]]
    total: int
    total_is_lower_bound: bool
    # What the next page starts after (None: this is the last page).
    after: dict[str, Any] | None
    backend: str
    extra: dict[str, Any] = field(default_factory=dict)


def logs_search(query: LogQuery, *, size: int, after: dict[str, Any] | None) -> LogPage:
    """A page of the lines `query` finds, newest first. Raises QueryRefused, SearchUnavailable."""
    query.check()
    if not elasticsearch_configured():
        return _database_search(query, size=size, after=after)
    client = elasticsearch_client()
    outage = elasticsearch_outage()
    try:
        page = _elasticsearch_search(client, query, size=size, after=after)
    except (TransportConnectionError, ConnectionTimeout) as problem:
        outage.failed(problem)
        raise SearchUnavailable(
            "Log search is unavailable: Elasticsearch cannot be reached."
        ) from None
    except NotFoundError:  # the point in time is gone
        raise QueryRefused("cursor", EXPIRED) from None
    except (ApiError, TransportError) as problem:
        if getattr(problem, "status_code", 0) == 400 or getattr(problem, "status", 0) == 400:
            raise QueryRefused("q", f"Elasticsearch refused the query: {problem}") from None
        raise SearchUnavailable(f"Log search is unavailable: {problem}") from None
    finally:
        client.close()
    outage.succeeded()
    return page


def _filters(query: LogQuery) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if query.team_ids is not None:
        filters.append({"terms": {"team": query.team_ids}})
    if query.job is not None:
        filters.append({"term": {"job": query.job}})
    if query.run is not None:
        filters.append({"term": {"run": str(query.run)}})
    if query.level:
        filters.append({"term": {"level": query.level}})
    if query.since or query.until:
        bounds = {"gte": query.since, "lt": query.until}
        filters.append({"range": {"logged_at": {k: v.isoformat() for k, v in bounds.items() if v}}})
    return filters


def _elasticsearch_search(
    client: Elasticsearch, query: LogQuery, *, size: int, after: dict[str, Any] | None
) -> LogPage:
    keep_alive = f"{POINT_IN_TIME_KEEP_ALIVE_SECONDS}s"
    if after is None:
        opened = client.open_point_in_time(
            index=LINES.search_pattern(), keep_alive=keep_alive, ignore_unavailable=True
        )
        pit = opened["id"]
    else:
        pit = cache.get(_pit_key(after["pit"]))
        if pit is None:
            raise QueryRefused("cursor", EXPIRED)
    must: list[dict[str, Any]] = []
    if query.q:
        must.append(
            {
                "simple_query_string": {
                    "query": query.q,
                    "fields": ["message"],
                    "default_operator": "and",
                    "flags": QUERY_FLAGS,
                    "lenient": True,
                }
            }
        )
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"must": must or [{"match_all": {}}], "filter": _filters(query)}},
        "sort": [{"logged_at": "desc"}, {"sequence": "desc"}, {"_shard_doc": "desc"}],
        "pit": {"id": pit, "keep_alive": keep_alive},
        "track_total_hits": 10_000,
        "_source": list(LINE_FIELDS),
    }
    if query.q:
        body["highlight"] = {
            "fields": {"message": {"number_of_fragments": 0}},
            "pre_tags": [HIGHLIGHT_TAGS[0]],
            "post_tags": [HIGHLIGHT_TAGS[1]],
            "encoder": "html",
        }
    if after is not None:
        body["search_after"] = after["sort"]
    found = client.search(**body)
    hits = found["hits"]["hits"]
    lines = [
        hit["_source"] | {"highlight": (hit.get("highlight") or {}).get("message", [None])[0]}
        for hit in hits
    ]
    token = after["pit"] if after else secrets.token_urlsafe(16)
    cache.set(_pit_key(token), found.get("pit_id", pit), POINT_IN_TIME_KEEP_ALIVE_SECONDS)
    total = found["hits"]["total"]
    return LogPage(
        lines=lines,
        total=int(total["value"]),
        total_is_lower_bound=total["relation"] == "gte",
        after={"pit": token, "sort": hits[-1]["sort"]} if len(hits) == size else None,
        backend="elasticsearch",
    )


def _pit_key(token: str) -> str:
    return f"dts:logs:pit:{token}"


def _database_search(query: LogQuery, *, size: int, after: dict[str, Any] | None) -> LogPage:
    lines = RunLogLine.objects.all()
    if query.team_ids is not None:
        lines = lines.filter(run__job__team_id__in=query.team_ids)
    for word in query.words():
        lines = lines.filter(message__icontains=word)
    if query.job is not None:
        lines = lines.filter(run__job_id=query.job)
    if query.run is not None:
        lines = lines.filter(run_id=query.run)
    if query.level:
        lines = lines.filter(level=query.level)
    if query.since:
        lines = lines.filter(logged_at__gte=query.since)
    if query.until:
        lines = lines.filter(logged_at__lt=query.until)
    total = lines.count()
    if after is not None:
        logged_at, line_id = datetime.fromisoformat(after["sort"][0]), after["sort"][1]
        lines = lines.filter(Q(logged_at__lt=logged_at) | Q(logged_at=logged_at, id__lt=line_id))
    rows = list(lines.order_by("-logged_at", "-id").values(*DATABASE_FIELDS)[:size])
    found = [
        {
            "run": str(row["run_id"]),
            "attempt": row["attempt"],
            "sequence": row["sequence"],
            "logged_at": row["logged_at"].isoformat(),
            "level": row["level"],
            "logger": row["logger"],
            "message": row["message"],
            "job": row["run__job_id"],
            "job_name": row["run__job__name"],
            "team": row["run__job__team_id"],
            "task_type": row["run__task_type"],
            "queue": row["run__queue"],
            "worker": row["run__worker"],
            "highlight": _highlighted(row["message"], query.words()) if query.q else None,
        }
        for row in rows
    ]
    last = rows[-1] if len(rows) == size else None
    return LogPage(
        lines=found,
        total=total,
        total_is_lower_bound=False,
        after={"sort": [last["logged_at"].isoformat(), last["id"]]} if last else None,
        backend="database",
    )


def _highlighted(message: str, words: list[str]) -> str:
    """The message, HTML-escaped, with each word of the query marked, as Elasticsearch does."""
    escaped = html.escape(message)
    pattern = "|".join(
        re.escape(html.escape(word)) for word in sorted(words, key=len, reverse=True)
    )
    return re.sub(
        f"({pattern})", rf"{HIGHLIGHT_TAGS[0]}\1{HIGHLIGHT_TAGS[1]}", escaped, flags=re.IGNORECASE
    )
