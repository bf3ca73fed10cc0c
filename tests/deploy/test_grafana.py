"""deploy/grafana: the dashboards are valid, stable, in Vietnamese, and every metric they
query is really exposed by running doisoat processes (not merely listed in a catalogue)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.deploy.metric_names import (
    GRAFANA_DIR,
    is_known,
    load_yaml,
    names_in_expr,
    promtool,
    recording_rule_names,
)
from tests.support.processes import ServiceProcess, start_service

DASHBOARDS = {
    "doisoat-van-hanh.json": ("doisoat-van-hanh", "Vận hành"),
    "doisoat-doi-soat.json": ("doisoat-doi-soat", "Đối soát hồ sơ"),
}
PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge"}
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
# The targets shown beside the KPIs (contract §4): ratio 0..1 at which a panel turns green.
KPI_TARGETS = {"on_time": 0.98, "online": 0.50, "digitised": 0.80, "in_system": 1.00}
# Processes scraped for the live check; ingest needs Kafka and exposes the same registry.
LIVE_PROCESSES = ("api", "reconciler", "alerts")


def load_dashboard(file_name: str) -> dict[str, Any]:
    path = GRAFANA_DIR / "dashboards" / file_name
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            yield f"${variable['name']}", query["query"] if isinstance(query, dict) else query


@pytest.mark.parametrize("file_name", sorted(DASHBOARDS))
def test_dashboard_is_valid_with_a_stable_uid_and_title(file_name: str) -> None:
    dashboard = load_dashboard(file_name)
    uid, title = DASHBOARDS[file_name]
    assert dashboard["uid"] == uid
    assert dashboard["title"] == title
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["id"] is None  # provisioned: Grafana assigns the numeric id
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        where = f"{file_name}: {panel.get('title')!r}"
        assert panel["type"] in PANEL_TYPES, where
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, where
        # Titles for Vietnamese readers, with diacritics (not "Van hanh").
        assert re.search(r"[^\x00-\x7f]", panel["title"]), where
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, where
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, where
            assert target["expr"].strip(), where


def test_dashboards_have_distinct_uids() -> None:
    uids = [load_dashboard(name)["uid"] for name in DASHBOARDS]
    assert len(set(uids)) == len(uids)


def test_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    provisioning = GRAFANA_DIR / "provisioning"
    sources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    (source,) = sources
    assert source["type"] == DATASOURCE["type"]
    assert source["uid"] == DATASOURCE["uid"]
    assert source["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(provisioning / "dashboards" / "doisoat.yml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.parametrize("kpi", sorted(KPI_TARGETS))
def test_kpi_panels_turn_green_at_the_target(kpi: str) -> None:
    dashboard = load_dashboard("doisoat-doi-soat.json")
    shown = [
        panel
        for panel in panels(dashboard)
        if any(f'kpi="{kpi}"' in target["expr"] for target in panel.get("targets", []))
    ]
    assert shown, f"no panel for the KPI {kpi}"
    for panel in shown:
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] == "percentunit"
        green = [s["value"] for s in defaults["thresholds"]["steps"] if s["color"] == "green"]
        assert green == [KPI_TARGETS[kpi]], panel["title"]
        assert f"{round(KPI_TARGETS[kpi] * 100)} %" in panel["title"]


def test_panel_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel query (as a recording rule, Grafana's variables filled in)."""
    substitutions = {
        "$__rate_interval": "5m",
        "$__interval": "1m",
        "$__range": "1h",
        "$unit": ".*",
    }
    rules = []
    for file_name in sorted(DASHBOARDS):
        for number, (where, expr) in enumerate(queries(load_dashboard(file_name))):
            if where.startswith("$"):
                continue  # variable queries are Grafana functions (label_values), not PromQL
            for variable, value in substitutions.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{file_name}: {where}: unknown variable in {expr!r}"
            record = f"dashboard:{file_name.removesuffix('.json').replace('-', '_')}:q{number}"
            rules.append({"record": record, "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def live_exposition(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """/metrics of real ``doisoat api``, ``reconciler`` and ``alerts`` processes."""
    directory = tmp_path_factory.mktemp("grafana-live")
    started: list[ServiceProcess] = []
    texts: dict[str, str] = {}
    try:
        for command in LIVE_PROCESSES:
            database = directory / f"{command}.db"
            shutil.copyfile(sqlite_template, database)  # migrated: alembic upgrade head
            process = start_service(
                command,
                env={"DOISOAT_DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
                log_path=directory / f"{command}.log",
            )
            started.append(process)
            response = process.get("/metrics")
            response.raise_for_status()
            texts[command] = response.text
    finally:
        for process in started:
            process.cleanup()
    return texts


def exposed(text: str) -> dict[str, str]:
    """Names in a Prometheus text exposition → type (``untyped`` for bare samples).

    ``# HELP``/``# TYPE`` lines count: a labelled metric that has no sample yet is still
    announced, and a panel on it is not broken, merely empty until the first event.
    """
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind
        elif line.startswith("# HELP "):
            types.setdefault(line.split(maxsplit=3)[2], "untyped")
        elif line and not line.startswith("#"):
            types.setdefault(re.split(r"[{\s]", line, maxsplit=1)[0], "untyped")
    return types


def test_every_dashboard_metric_is_exposed_by_a_running_process(
    live_exposition: dict[str, str],
) -> None:
    live: dict[str, str] = {}
    for text in live_exposition.values():
        for name, kind in exposed(text).items():
            if live.get(name, "untyped") == "untyped":
                live[name] = kind
    assert "doisoat_http_requests_total" in live, "the scrape looks empty"
    recorded = recording_rule_names()
    missing: dict[str, set[str]] = {}
    used = 0
    for file_name in DASHBOARDS:
        for where, expr in queries(load_dashboard(file_name)):
            for name in names_in_expr(expr):
                used += 1
                if not is_known(name, live, recorded):
                    missing.setdefault(name, set()).add(f"{file_name}: {where}")
    assert used > 20
    assert not missing, (
        "dashboard metrics that no running process exposes "
        f"({', '.join(LIVE_PROCESSES)}): {missing}"
    )
