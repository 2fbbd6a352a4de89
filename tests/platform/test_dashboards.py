"""dts's Grafana dashboards (platform/grafana/dashboards/, provisioned from files): each is a
dashboard Grafana can load (unique uid, title, panels with ids and positions, the Prometheus data
source by uid, targets with expressions), every panel's PromQL parses (promtool check rules over a
throwaway rule file of them), and every metric a query uses is one docs/metrics.md promises, a
django-prometheus or Prometheus one, or a recording rule of platform/prometheus/rules/.

No Grafana server can be had on these machines (docs/metrics.md, Dashboards): Grafana itself never
loads them here. `dashboard_queries()` yields every (dashboard, panel, expression) for a test that
runs them against the test Prometheus scraping a live stack."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.platform.promql import DASHBOARDS, PROMTOOL, metric_names, run, unknown_metrics
from tests.processes import REPO

GRAFANA = REPO / "platform" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
# Grafana's variables, each as a value that keeps the expression valid PromQL.
VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$team": "data",
    "$job": "nightly-report",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL expression) of every query of every dashboard, Grafana's
    variables left in: what a live-stack test runs against Prometheus (after `promql()`)."""
    for path in DASHBOARDS:
        dashboard = load(path)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                yield dashboard["uid"], panel["title"], target["expr"]


def variable_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard uid, variable name, query) of every templating variable."""
    for path in DASHBOARDS:
        dashboard = load(path)
        for variable in dashboard["templating"]["list"]:
            yield dashboard["uid"], variable["name"], variable["query"]["query"]


def promql(expression: str) -> str:
    """The expression with Grafana's variables replaced by values, as Grafana sends it."""
    for variable, value in VARIABLES.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression, f"a Grafana variable without a test value in {expression}"
    return expression


def test_the_expected_dashboards_exist() -> None:
    assert [path.stem for path in DASHBOARDS] == [
        "dts-events",
        "dts-job",
        "dts-overview",
        "dts-scheduler",
        "dts-web",
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_has_what_grafana_needs(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"] == path.stem
    assert len(dashboard["uid"]) <= 40
    assert dashboard["title"].startswith("dts / ")
    assert "dts" in dashboard["tags"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(dashboard):
        assert panel["title"], panel
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        assert position["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["refId"], panel["title"]
            assert target["expr"].strip(), panel["title"]
        references = [target["refId"] for target in panel["targets"]]
        assert len(references) == len(set(references)), panel["title"]


def test_dashboard_uids_and_titles_are_unique() -> None:
    dashboards = [load(path) for path in DASHBOARDS]
    assert len({dashboard["uid"] for dashboard in dashboards}) == len(dashboards)
    assert len({dashboard["title"] for dashboard in dashboards}) == len(dashboards)


def test_panels_do_not_overlap() -> None:
    for path in DASHBOARDS:
        taken: set[tuple[int, int]] = set()
        for panel in load(path)["panels"]:
            position = panel["gridPos"]
            cells = {
                (x, y)
                for x in range(position["x"], position["x"] + position["w"])
                for y in range(position["y"], position["y"] + position["h"])
            }
            assert not cells & taken, f"{path.name}: {panel['title']} overlaps another panel"
            taken |= cells


def test_the_job_dashboard_is_templated_by_team_and_job() -> None:
    variables = {name: query for uid, name, query in variable_queries() if uid == "dts-job"}
    assert variables == {
        "team": "label_values(dts_job_health, team)",
        "job": 'label_values(team_job:dts_job_health:max{team=~"$team"}, job)',
    }
    for uid, _, expression in dashboard_queries():
        if uid == "dts-job":
            assert '{team=~"$team", job=~"$job"}' in expression


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule's (a throwaway rule file)."""
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: `make services` installs Debian's prometheus"
    queries = list(dashboard_queries())
    assert len(queries) >= 50
    rule_file = tmp_path / "dashboard-queries.yaml"
    rule_file.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": f"{uid}-{number}",
                        "rules": [
                            {"record": f"dashboard:query_{number}", "expr": promql(expression)}
                        ],
                    }
                    for number, (uid, _, expression) in enumerate(queries)
                ]
            }
        )
    )
    result = run(PROMTOOL, "check", "rules", rule_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_a_query_that_does_not_parse_fails_the_check(tmp_path: Path) -> None:
    rule_file = tmp_path / "bad.yaml"
    rule_file.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "bad", "rules": [{"record": "a:b", "expr": "sum by (queue"}]}]}
        )
    )
    assert run(PROMTOOL, "check", "rules", rule_file).returncode != 0


def test_queries_use_only_metrics_dts_exports() -> None:
    expressions = [expression for _, _, expression in dashboard_queries()]
    expressions += [
        re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query) for _, _, query in variable_queries()
    ]
    assert not unknown_metrics(expressions)
    used = {name for expression in expressions for name in metric_names(expression)}
    for name in ("dts_runs_finished_total", "dts_job_health", "team_job:dts_job_health:max"):
        assert name in used


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    """compose mounts the provisioning and the dashboards where the provider looks for them."""
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/dts.yaml").read_text())[
        "providers"
    ]
    (datasource,) = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"]
    assert datasource["uid"] == DATASOURCE["uid"]
    compose = yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert "../platform/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert f"../platform/grafana/dashboards:{provider['options']['path']}:ro" in volumes
