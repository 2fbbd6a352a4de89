"""Printing results as a table (for people), JSON or YAML (for scripts)."""

import json
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def show(data: Any, output: Output, columns: list[str] | None = None) -> None:
    """Print `data` (an object or a list of objects); a table shows `columns`, or every field."""
    if output == Output.JSON:
        print(json.dumps(data, indent=2, default=str))
    elif output == Output.YAML:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    elif isinstance(data, list):
        table = Table(*(columns or (list(data[0]) if data else ["(none)"])))
        for item in data:
            table.add_row(*(_cell(item.get(column)) for column in table_columns(table)))
        console.print(table)
    else:
        table = Table("field", "value", show_header=False)
        for key, value in data.items():
            table.add_row(key, _cell(value))
        console.print(table)


def table_columns(table: Table) -> list[str]:
    return [str(column.header) for column in table.columns]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
