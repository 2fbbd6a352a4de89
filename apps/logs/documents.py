"""The documents of run logs in Elasticsearch and their index templates (docs/logs.md).

A log line and a run are `elasticsearch.dsl` documents. Each kind lives in time-based indices,
`<prefix>-logs-v<N>-YYYY.MM.DD` by the line's time and `<prefix>-runs-v<N>-YYYY.MM` by the run's
creation, made from an index template of the mapping's version N. A mapping change is a new
MAPPING_VERSION: a new template and new indices, never a conflict with the old ones."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from elasticsearch import Elasticsearch
from elasticsearch.dsl import Date, Document, Float, Integer, Keyword, Long, Text

MAPPING_VERSION = 1
# Exact match and aggregation on a message: the first characters are enough.
KEYWORD_CHARS = 256


def _text_with_keyword() -> Text:
    return Text(fields={"keyword": Keyword(ignore_above=KEYWORD_CHARS)})


class LogLineDocument(Document):
    """One line of a run's log, with what it is searched and scoped by."""

    run = Keyword()
    attempt = Integer()
    sequence = Long()
    logged_at = Date()
    level = Keyword()
    logger = Keyword()
    message = _text_with_keyword()
    job = Long()
    job_name = _text_with_keyword()
    team = Long()
    task_type = Keyword()
    queue = Keyword()
    worker = Keyword()


class RunDocument(Document):
    """A run's state, error and timings: runs are searched by their error text too."""

    run = Keyword()
    job = Long()
    job_name = _text_with_keyword()
    team = Long()
    task_type = Keyword()
    queue = Keyword()
    trigger = Keyword()
    state = Keyword()
    attempt = Integer()
    worker = Keyword()
    error = _text_with_keyword()
    traceback = Text()
    created_at = Date()
    queued_at = Date()
    started_at = Date()
    finished_at = Date()
    duration_seconds = Float()


@dataclass(frozen=True)
class Kind:
    """One kind of document: its name in indices and templates, and how its time names its index."""

    name: str
    document: type[Document]
    date_format: str

    def prefix(self, version: int = MAPPING_VERSION) -> str:
        return f"{settings.DTS_LOG_INDEX_PREFIX}-{self.name}-v{version}-"

    def index_for(self, time: datetime) -> str:
        return self.prefix() + time.strftime(self.date_format)

    def owns(self, index: str) -> bool:
        """Whether `index` is one of this kind's, of any mapping version."""
        return index.startswith(f"{settings.DTS_LOG_INDEX_PREFIX}-{self.name}-v")

    def search_pattern(self) -> str:
        """Every index of this kind, of every mapping version."""
        return f"{settings.DTS_LOG_INDEX_PREFIX}-{self.name}-v*"

    def template_name(self) -> str:
        return f"{settings.DTS_LOG_INDEX_PREFIX}-{self.name}-v{MAPPING_VERSION}"

    def template_body(self) -> dict[str, Any]:
        mappings = {"dynamic": "strict", **self.document._doc_type.mapping.to_dict()}
        # What the mapping says, to tell a template of this version with another mapping.
        digest = hashlib.sha256(json.dumps(mappings, sort_keys=True).encode()).hexdigest()
        return {
            "index_patterns": [self.prefix() + "*"],
            "priority": 100 + MAPPING_VERSION,
            "template": {
                "settings": {
                    "number_of_shards": settings.DTS_LOG_INDEX_SHARDS,
                    "number_of_replicas": settings.DTS_LOG_INDEX_REPLICAS,
                    "refresh_interval": "1s",
                },
                "mappings": mappings,
            },
            "version": MAPPING_VERSION,
            "_meta": {"dts_mapping_digest": digest},
        }


LINES = Kind("logs", LogLineDocument, "%Y.%m.%d")  # apps.logs.source.LINES_DAY_SQL too
RUNS = Kind("runs", RunDocument, "%Y.%m")
KINDS = (LINES, RUNS)


class TemplateConflict(RuntimeError):
    """A template of this mapping version exists with another content."""


def templates_ensure(client: Elasticsearch) -> None:
    """Put the index templates of this mapping version; idempotent. A template of the same name
    with another mapping is refused (TemplateConflict): a changed mapping is a new
    MAPPING_VERSION. Its settings (shards, replicas) follow the settings: they apply to the
    indices created after."""
    for kind in KINDS:
        body = kind.template_body()
        name = kind.template_name()
        if client.indices.exists_index_template(name=name):
            existing = client.indices.get_index_template(name=name)["index_templates"][0]
            digest = (existing["index_template"].get("_meta") or {}).get("dts_mapping_digest")
            if digest != body["_meta"]["dts_mapping_digest"]:
                raise TemplateConflict(
                    f"Elasticsearch has an index template {name} with another mapping: a "
                    "changed mapping needs a new MAPPING_VERSION (apps.logs.documents)."
                )
        client.indices.put_index_template(name=name, **body)
