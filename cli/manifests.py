"""The files of `dts apply`: YAML documents, each kept with its file and the line of every field,
so that a refusal by the server, which names a field by its path in the body
(`documents[2].schedules[0].cron_expression`), is shown where it was written."""

import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml", ".json")
_DOCUMENT_PATH = re.compile(r"documents\[(\d+)\]\.?(.*)")
_PARENT = re.compile(r"\.?[^.\[\]]+$|\[\d+\]$")  # a path's last step: ".name", "name" or "[2]"


class Unreadable(Exception):
    """A file that cannot be read, or holds something other than documents of fields."""


@dataclass
class Source:
    """Where a document was written: its file, its first line, and each field's line."""

    file: Path
    line: int
    lines: dict[str, int] = field(default_factory=dict)  # "schedules[0].kind": 12

    def line_of(self, path: str) -> int:
        """The line of the field at `path`, or of the nearest enclosing one that was written (a
        missing field's is its mapping's)."""
        while path not in self.lines:
            parent = _PARENT.sub("", path)
            if parent == path:
                return self.line
            path = parent
        return self.lines[path]


def files_of(paths: list[Path]) -> list[Path]:
    """The files named, and those of each folder named (its YAML and JSON files, in name order)."""
    found = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES))
        else:
            found.append(path)
    return found


def documents_read(paths: list[Path]) -> tuple[list[dict[str, Any]], list[Source]]:
    """Every document of the files, in order, with where each was written (empty ones skipped)."""
    documents, sources = [], []
    for file in files_of(paths):
        try:
            loader = yaml.SafeLoader(file.read_text())
        except OSError as error:
            raise Unreadable(f"{file}: {error.strerror or error}") from error
        try:
            while loader.check_node():
                node = loader.get_node()
                data = None if node is None else loader.construct_document(node)
                if node is None or data is None:
                    continue
                line = node.start_mark.line + 1
                if not isinstance(data, dict):
                    raise Unreadable(f"{file}:{line}: a document is a mapping of fields.")
                source = Source(file=file, line=line)
                _lines_note(node, "", source.lines)
                documents.append(data)
                sources.append(source)
        except yaml.YAMLError as error:
            raise Unreadable(f"{file}: {error}") from error
        finally:
            loader.dispose()
    return documents, sources


def _lines_note(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            inner = f"{path}.{key.value}".lstrip(".")
            lines[inner] = key.start_mark.line + 1
            _lines_note(value, inner, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            inner = f"{path}[{index}]"
            lines[inner] = item.start_mark.line + 1
            _lines_note(item, inner, lines)


def refusals_located(errors: dict[str, list[str]], sources: list[Source]) -> list[str]:
    """The server's refusals, each as `file:line: field: message`."""
    located = []
    for path, messages in errors.items():
        found = _DOCUMENT_PATH.fullmatch(path)
        index = int(found.group(1)) if found else len(sources)
        for message in messages:
            if found is None or index >= len(sources):
                located.append(f"{path}: {message}" if path else message)
                continue
            source, inner = sources[index], found.group(2)
            where = f"{source.file}:{source.line_of(inner)}"
            located.append(f"{where}: {inner}: {message}" if inner else f"{where}: {message}")
    return located


def json_ready(data: Any) -> Any:
    """`data` as JSON has it: YAML's times (`once_at: 2030-01-01T09:00:00Z`) in ISO 8601."""
    return json.loads(json.dumps(data, default=_iso))


def _iso(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def change_name(change: dict[str, Any]) -> str:
    name = f"{change['kind']} {change['team']}/{change['name']}"
    return f"{name} #{change['id']}" if change["kind"] == "schedule" and change["id"] else name


def change_diff(change: dict[str, Any]) -> str:
    """A change as a unified diff of its definition, now and as declared (`kubectl diff`)."""
    name = change_name(change)
    before, after = (
        yaml.safe_dump(change[side], sort_keys=True, allow_unicode=True) if change[side] else ""
        for side in ("before", "after")
    )
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"{name} (now)",
        tofile=f"{name} (declared)",
    )
    return "".join(lines)
