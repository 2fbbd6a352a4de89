"""Reading a process's /metrics in tests: Prometheus's own linter on it, and its samples."""

import subprocess

import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

PROMTOOL = "/usr/bin/promtool"  # Debian's, installed by `make services`

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def promtool_check(text: str) -> None:
    """`promtool check metrics` finds nothing to say of the exposition `text`."""
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    problems = (checked.stdout + checked.stderr).decode()
    assert (checked.returncode, problems.strip()) == (0, ""), problems


def scrape(url: str) -> str:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.text


def samples_of(text: str) -> Samples:
    """Every sample of the exposition `text`: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when it is absent (a series not counted yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def registry_samples() -> Samples:
    """Every sample of this process's default registry."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
    }


class Moves:
    """How far each series of this process's default registry moved since it was made."""

    def __init__(self) -> None:
        self.before = registry_samples()

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return registry_samples().get(key, 0.0) - self.before.get(key, 0.0)
