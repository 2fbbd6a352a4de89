"""Searching run log lines (docs/logs.md, "Search"), scoped to the user's teams inside the query:
a team's filter is part of what Elasticsearch (or PostgreSQL) is asked, so no line, count or
highlight of another team is ever computed, let alone filtered out afterwards.

With Elasticsearch: `simple_query_string` over the message only (it cannot reach other fields, and
never fails on syntax), newest first, highlighted, paged with `search_after` in a point in time
(whose id stays in the cache: a cursor only names it). Without (ELASTICSEARCH_URL empty, make
dev): the same shape from PostgreSQL, every word of the query in the line (case-insensitive),
labelled `database`."""

import hashlib
import html
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Q, QuerySet
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, Elasticsearch, NotFoundError

from apps.logs.client import elasticsearch_client, elasticsearch_configured, elasticsearch_outage
from apps.logs.documents import LINES, RUNS
from apps.runs.models import Run, RunLogLine

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


def _text_check(q: str) -> None:
    if len(q) > MAX_QUERY_CHARS:
        raise QueryRefused("q", f"At most {MAX_QUERY_CHARS} characters.")
    if len(q.split()) > MAX_QUERY_WORDS:
        raise QueryRefused("q", f"At most {MAX_QUERY_WORDS} words.")
    if q and not re.search(r"\w", q):
        raise QueryRefused("q", "Needs a word to look for: operators alone match nothing.")


def _period_check(since: tuple[str, datetime | None], until: tuple[str, datetime | None]) -> None:
    if since[1] and until[1] and since[1] >= until[1]:
        raise QueryRefused(until[0], f"Must be after `{since[0]}`.")


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


@dataclass(frozen=True)
class RunQuery:
    """A search of runs by their error text (and traceback), with the run list's filters."""

    team_ids: list[int] | None
    q: str
    job_id: int | None = None
    trigger: str | None = None
    state: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def query_key(query: LogQuery | RunQuery) -> str:
    """What a cursor is bound to: the same query, by the same scope."""
    return hashlib.sha256(repr(query).encode()).hexdigest()[:32]


@dataclass
class Page:
    """A page of results, newest first: log lines, or run ids."""

    results: list[Any]
    total: int
    total_is_lower_bound: bool
    # What the next page starts after (None: this is the last page).
    after: dict[str, Any] | None
    backend: str


@dataclass(frozen=True)
class _Search:
    """One Elasticsearch search: the query text over `fields`, the filters, the order."""

    pattern: str
    text: str
    fields: tuple[str, ...]
    filters: list[dict[str, Any]]
    sort: list[dict[str, str]]
    source: tuple[str, ...]
    highlight: str | None = None


def logs_search(query: LogQuery, *, size: int, after: dict[str, Any] | None) -> Page:
    """A page of the lines `query` finds, newest first. Raises QueryRefused, SearchUnavailable."""
    _text_check(query.q)
    _period_check(("since", query.since), ("until", query.until))
    if not elasticsearch_configured():
        return _database_lines(query, size=size, after=after)
    filters = _team_filter(query.team_ids)
    for name, value in (("job", query.job), ("run", query.run), ("level", query.level)):
        if value is not None:
            filters.append({"term": {name: str(value)}})
    filters += _range_filter("logged_at", query.since, query.until)
    page = _elasticsearch_page(
        _Search(
            pattern=LINES.search_pattern(),
            text=query.q,
            fields=("message",),
            filters=filters,
            sort=[{"logged_at": "desc"}, {"sequence": "desc"}],
            source=LINE_FIELDS,
            highlight="message" if query.q else None,
        ),
        size=size,
        after=after,
    )
    page.results = [
        hit["_source"] | {"highlight": (hit.get("highlight") or {}).get("message", [None])[0]}
        for hit in page.results
    ]
    return page


def runs_search(query: RunQuery, *, size: int, after: dict[str, Any] | None) -> Page:
    """A page of the ids of the runs whose error or traceback holds `query.q`, newest first."""
    _text_check(query.q)
    _period_check(("created_after", query.created_after), ("created_before", query.created_before))
    if not elasticsearch_configured():
        return _database_runs(query, size=size, after=after)
    filters = _team_filter(query.team_ids)
    for name, value in (("job", query.job_id), ("trigger", query.trigger), ("state", query.state)):
        if value is not None:
            filters.append({"term": {name: str(value)}})
    filters += _range_filter("created_at", query.created_after, query.created_before)
    page = _elasticsearch_page(
        _Search(
            pattern=RUNS.search_pattern(),
            text=query.q,
            fields=("error", "traceback"),
            filters=filters,
            sort=[{"created_at": "desc"}],
            source=("run",),
        ),
        size=size,
        after=after,
    )
    page.results = [uuid.UUID(hit["_source"]["run"]) for hit in page.results]
    return page


def _team_filter(team_ids: list[int] | None) -> list[dict[str, Any]]:
    return [] if team_ids is None else [{"terms": {"team": team_ids}}]


def _range_filter(
    name: str, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    bounds = {key: moment.isoformat() for key, moment in (("gte", since), ("lt", until)) if moment}
    return [{"range": {name: bounds}}] if bounds else []


def _elasticsearch_page(search: _Search, *, size: int, after: dict[str, Any] | None) -> Page:
    """A page of hits; Elasticsearch away is SearchUnavailable, an expired page QueryRefused."""
    client = elasticsearch_client()
    outage = elasticsearch_outage()
    try:
        page = _hits(client, search, size=size, after=after)
    except (TransportConnectionError, ConnectionTimeout) as problem:
        outage.failed(problem)
        raise SearchUnavailable("Search is unavailable: Elasticsearch cannot be reached.") from None
    except NotFoundError:  # the point in time is gone
        raise QueryRefused("cursor", EXPIRED) from None
    except (ApiError, TransportError) as problem:
        raise SearchUnavailable(
            f"Search is unavailable: Elasticsearch answered {problem}"
        ) from None
    finally:
        client.close()
    outage.succeeded()
    return page


def _hits(
    client: Elasticsearch, search: _Search, *, size: int, after: dict[str, Any] | None
) -> Page:
    keep_alive = f"{POINT_IN_TIME_KEEP_ALIVE_SECONDS}s"
    if after is None:
        opened = client.open_point_in_time(
            index=search.pattern, keep_alive=keep_alive, ignore_unavailable=True
        )
        pit = opened["id"]
    else:
        pit = cache.get(_pit_key(after["pit"]))
        if pit is None:
            raise QueryRefused("cursor", EXPIRED)
    must: list[dict[str, Any]] = [{"match_all": {}}]
    if search.text:
        must = [
            {
                "simple_query_string": {
                    "query": search.text,
                    "fields": list(search.fields),
                    "default_operator": "and",
                    "flags": QUERY_FLAGS,
                    "lenient": True,
                }
            }
        ]
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"must": must, "filter": search.filters}},
        "sort": [*search.sort, {"_shard_doc": "desc"}],
        "pit": {"id": pit, "keep_alive": keep_alive},
        "track_total_hits": 10_000,
        "_source": list(search.source),
    }
    if search.highlight:
        body["highlight"] = {
            "fields": {search.highlight: {"number_of_fragments": 0}},
            "pre_tags": [HIGHLIGHT_TAGS[0]],
            "post_tags": [HIGHLIGHT_TAGS[1]],
            "encoder": "html",
        }
    if after is not None:
        body["search_after"] = after["sort"]
    found = client.search(**body)
    hits = found["hits"]["hits"]
    token = after["pit"] if after else secrets.token_urlsafe(16)
    cache.set(_pit_key(token), found.get("pit_id", pit), POINT_IN_TIME_KEEP_ALIVE_SECONDS)
    total = found["hits"]["total"]
    return Page(
        results=hits,
        total=int(total["value"]),
        total_is_lower_bound=total["relation"] == "gte",
        after={"pit": token, "sort": hits[-1]["sort"]} if len(hits) == size else None,
        backend="elasticsearch",
    )


def _pit_key(token: str) -> str:
    return f"dts:logs:pit:{token}"


def _database_lines(query: LogQuery, *, size: int, after: dict[str, Any] | None) -> Page:
    lines = RunLogLine.objects.all()
    if query.team_ids is not None:
        lines = lines.filter(run__job__team_id__in=query.team_ids)
    for word in query.q.split():
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
    page, rows = _database_page(lines, "logged_at", size=size, after=after, fields=DATABASE_FIELDS)
    page.results = [
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
            "highlight": _highlighted(row["message"], query.q.split()) if query.q else None,
        }
        for row in rows
    ]
    return page


def _database_runs(query: RunQuery, *, size: int, after: dict[str, Any] | None) -> Page:
    runs = Run.objects.all()
    if query.team_ids is not None:
        runs = runs.filter(job__team_id__in=query.team_ids)
    for word in query.q.split():
        runs = runs.filter(Q(error__icontains=word) | Q(traceback__icontains=word))
    for name in ("job_id", "trigger", "state"):
        if getattr(query, name) is not None:
            runs = runs.filter(**{name: getattr(query, name)})
    if query.created_after:
        runs = runs.filter(created_at__gte=query.created_after)
    if query.created_before:
        runs = runs.filter(created_at__lt=query.created_before)
    page, rows = _database_page(runs, "created_at", size=size, after=after, fields=("id",))
    page.results = [row["id"] for row in rows]
    return page


def _database_page(
    rows: QuerySet[Any], moment: str, *, size: int, after: dict[str, Any] | None, fields: Any
) -> tuple[Page, list[dict[str, Any]]]:
    """A page of `rows`, newest `moment` first, keyed by (moment, id) after `after`."""
    total = rows.count()
    if after is not None:
        at, last_id = datetime.fromisoformat(after["sort"][0]), after["sort"][1]
        rows = rows.filter(Q(**{f"{moment}__lt": at}) | Q(**{moment: at, "id__lt": last_id}))
    found = list(rows.order_by(f"-{moment}", "-id").values(moment, *fields)[:size])
    last = found[-1] if len(found) == size else None
    following = {"sort": [last[moment].isoformat(), str(last["id"])]} if last else None
    return Page([], total, False, following, "database"), found


def _highlighted(message: str, words: list[str]) -> str:
    """The message, HTML-escaped, with each word of the query marked, as Elasticsearch does."""
    escaped = html.escape(message)
    pattern = "|".join(
        re.escape(html.escape(word)) for word in sorted(words, key=len, reverse=True)
    )
    return re.sub(
        f"({pattern})", rf"{HIGHLIGHT_TAGS[0]}\1{HIGHLIGHT_TAGS[1]}", escaped, flags=re.IGNORECASE
    )
