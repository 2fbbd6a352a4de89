"""What the monitoring tests share: the metric names docs/metrics.md promises (its catalogue, the
contract the code exports), the names a PromQL expression uses, the recording rules of
platform/prometheus/rules/, the dashboards' files, and promtool."""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.processes import REPO

RULES = REPO / "platform" / "prometheus" / "rules"
DASHBOARDS = sorted((REPO / "platform" / "grafana" / "dashboards").glob("*.json"))
CATALOGUE = REPO / "docs" / "metrics.md"
PROMTOOL = Path("/usr/bin/promtool")
# Series every Prometheus makes of a target, and the web's django-prometheus families.
STANDARD_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
STANDARD_PREFIXES = ("django_http_", "django_db_")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}  # fmt: skip


def run(*command: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yaml"))


def rule_groups() -> list[dict[str, Any]]:
    """Every group of every rule file, in the files' order (the PrometheusRule's order too)."""
    return [group for path in rule_files() for group in yaml.safe_load(path.read_text())["groups"]]


def rules() -> Iterator[dict[str, Any]]:
    for group in rule_groups():
        yield from group["rules"]


def recorded_metrics() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def catalogue_metrics() -> set[str]:
    """The series names docs/metrics.md's catalogue declares: a histogram's as its _bucket, _sum
    and _count, `a_{b,c}_total` as a_b_total and a_c_total."""
    names: set[str] = set()
    for line in CATALOGUE.read_text().splitlines():
        row = re.match(r"\|\s*`(dts_[^`]+)`\s*\|\s*(\w*)\s*\|", line)
        if not row:
            continue
        pattern, kind = row.groups()
        expanded = [pattern]
        if alternatives := re.search(r"\{([^}]+)\}", pattern):
            expanded = [
                pattern.replace(alternatives.group(0), word)
                for word in alternatives.group(1).split(",")
            ]
        for name in expanded:
            names.add(name)
            if kind == "histogram":
                names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (its label matchers, strings, grouping labels,
    durations and functions left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.groups()
        if call or name.lower() in PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def unknown_metrics(expressions: list[str]) -> set[str]:
    """The names `expressions` use that neither docs/metrics.md, Prometheus, django-prometheus
    nor a recording rule of platform/prometheus/rules/ provides."""
    known = catalogue_metrics() | STANDARD_METRICS | recorded_metrics()
    return {
        name
        for expression in expressions
        for name in metric_names(expression)
        if name not in known and not name.startswith(STANDARD_PREFIXES)
    }
