"""dts's Prometheus rules (platform/prometheus/rules/) and Alertmanager configuration
(platform/prometheus/alertmanager.yml): promtool checks the rules and runs their unit tests
(platform/prometheus/tests/), each alert is tested firing and not firing, every metric a rule uses
is one docs/metrics.md promises, the Prometheus configurations of `make services` and compose load
the same files, and amtool checks the Alertmanager configuration and its routes.

promtool and amtool are Debian's (prometheus, prometheus-alertmanager), installed by
`make services`. A missing tool fails the test, never skips."""

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.platform.promql import (
    PROMTOOL,
    RULES,
    metric_names,
    rule_files,
    rules,
    run,
    unknown_metrics,
)
from tests.processes import REPO

RULE_TESTS = REPO / "platform" / "prometheus" / "tests"
ALERTMANAGER = REPO / "platform" / "prometheus" / "alertmanager.yml"
AMTOOL = Path("/usr/bin/amtool")


@pytest.fixture(scope="module")
def promtool() -> Path:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: `make services` installs Debian's prometheus"
    return PROMTOOL


@pytest.fixture(scope="module")
def amtool() -> Path:
    assert AMTOOL.exists(), (
        f"{AMTOOL} is missing: `make services` installs Debian's prometheus-alertmanager"
    )
    return AMTOOL


def unit_test_files() -> list[Path]:
    return sorted(RULE_TESTS.glob("*_test.yaml"))


def unit_tests() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in unit_test_files()]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def test_rule_files_pass_promtool_check_rules(promtool: Path) -> None:
    result = run(promtool, "check", "rules", *rule_files())
    assert result.returncode == 0, result.stdout + result.stderr
    found = sum(int(count) for count in re.findall(r"SUCCESS: (\d+) rules found", result.stdout))
    assert found == len(list(rules())) >= 40, result.stdout


@pytest.mark.parametrize("tests", unit_test_files(), ids=lambda path: path.name)
def test_promtool_unit_tests_pass(promtool: Path, tests: Path) -> None:
    result = run(promtool, "test", "rules", tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_file_has_unit_tests() -> None:
    tested = {
        (RULE_TESTS / rule_file).resolve()
        for tests in unit_tests()
        for rule_file in tests["rule_files"]
    }
    assert tested == {path.resolve() for path in rule_files()}


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases = [
        case
        for tests in unit_tests()
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in alerts():
        name = alert["alert"]
        outcomes = [bool(case["exp_alerts"]) for case in cases if case["alertname"] == name]
        assert True in outcomes, f"no unit test sees {name} fire"
        assert False in outcomes, f"no unit test sees {name} stay quiet"


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    for alert in alerts():
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert len(alert["annotations"]["description"]) > 40, alert["alert"]


def test_job_alerts_carry_the_team_and_the_job() -> None:
    """So that Alertmanager routes them to the team that owns the job."""
    firing = [
        expected["exp_labels"]
        for tests in unit_tests()
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"].startswith("DtsJob")
        for expected in case["exp_alerts"]
    ]
    assert {labels["health"] for labels in firing} == {"late", "missed", "failing"}
    for labels in firing:
        assert labels["team"]
        assert labels["job"]
        assert not labels["job"].startswith("dts-"), "the scrape job, not the dts job"


def test_alert_names_are_unique() -> None:
    names = [alert["alert"] for alert in alerts()]
    assert len(names) == len(set(names))


def test_rules_use_only_metrics_docs_metrics_md_promises() -> None:
    """docs/metrics.md's catalogue is the contract the code exports: a rule written against a
    name outside it would never fire."""
    expressions = [rule["expr"] for rule in rules()]
    assert not unknown_metrics(expressions)
    used = {name for expression in expressions for name in metric_names(expression)}
    assert {"dts_job_health", "dts_runs_started_total", "up"} <= used


def test_local_prometheus_loads_the_rules_and_the_dts_targets(
    promtool: Path, tmp_path: Path
) -> None:
    """The test Prometheus of `make services` runs the configuration prometheus.sh renders from
    platform/local/prometheus.yml (here into a folder of the test's): it loads the same rule files
    and scrapes the dts jobs from target files in its own folder."""
    rendered = subprocess.run(
        [REPO / "platform" / "local" / "prometheus.sh", "render"],
        env=os.environ | {"DTS_SERVICES_DIR": str(tmp_path), "DTS_PROMETHEUS_PORT": "59123"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    config = tmp_path / "prometheus" / "prometheus.yml"
    assert rendered.stdout.strip() == str(config)
    assert "@" not in config.read_text()
    result = run(promtool, "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_files())} rule files found" in result.stdout
    loaded = yaml.safe_load(config.read_text())
    assert loaded["rule_files"] == [f"{RULES}/*.yaml"]
    jobs = {job["job_name"]: job for job in loaded["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:59123"]}]
    for name in ("dts-web", "dts-worker", "dts-scheduler", "dts-relay"):
        folder = tmp_path / "prometheus" / "targets" / name
        assert jobs[name]["file_sd_configs"] == [{"files": [f"{folder}/*.json"]}]
        assert folder.is_dir()


def test_compose_prometheus_loads_the_rules_folder(promtool: Path) -> None:
    config = REPO / "compose" / "prometheus" / "prometheus.yml"
    result = run(promtool, "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(config.read_text())["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    compose = yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "../platform/prometheus/rules:/etc/prometheus/rules:ro" in volumes


def test_the_charts_rules_are_the_platform_rules() -> None:
    """The chart cannot read outside itself: files/prometheus is a link to the rules folder,
    which Helm follows (tests/deploy/test_chart.py renders and packages it)."""
    link = REPO / "helm" / "dts" / "files" / "prometheus"
    assert link.is_symlink()
    assert link.resolve() == RULES.resolve()


def test_alertmanager_config_passes_amtool_check_config(amtool: Path) -> None:
    result = run(amtool, "check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ("alertname=DtsJobMissed team=data job=nightly-report severity=critical", "team-data"),
        (
            "alertname=DtsJobFailing team=payments job=invoice-sync severity=critical",
            "team-payments",
        ),
        # A team without a route of its own: the platform's receivers, never nobody.
        ("alertname=DtsJobLate team=marketing job=newsletter severity=warning", "platform-tickets"),
        ("alertname=DtsNoSchedulerUp severity=critical", "platform-pager"),
        ("alertname=DtsQueueWaitHigh queue=mail severity=warning", "platform-tickets"),
    ],
)
def test_alertmanager_routes_each_team_to_its_receiver(
    amtool: Path, labels: str, receiver: str
) -> None:
    result = run(
        amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels.split()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_alertmanager_groups_by_alert_team_and_job() -> None:
    route = yaml.safe_load(ALERTMANAGER.read_text())["route"]
    assert route["group_by"] == ["alertname", "team", "job"]


def test_inhibitions_name_alerts_that_exist() -> None:
    """An inhibition naming an alert that was renamed would silently stop working."""
    names = {alert["alert"] for alert in alerts()}
    inhibitions = yaml.safe_load(ALERTMANAGER.read_text())["inhibit_rules"]
    for inhibition in inhibitions:
        for side in ("source_matchers", "target_matchers"):
            (matcher,) = inhibition[side]
            match = re.fullmatch(r'alertname(=~?)"(.+)"', matcher)
            assert match, matcher
            pattern = match.group(2) if match.group(1) == "=~" else re.escape(match.group(2))
            assert any(re.fullmatch(pattern, name) for name in names), matcher
    scheduler_down = inhibitions[0]
    assert "DtsNoSchedulerUp" in scheduler_down["source_matchers"][0]
    assert "DtsJob" in scheduler_down["target_matchers"][0]
