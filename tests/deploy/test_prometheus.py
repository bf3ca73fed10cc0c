"""deploy/prometheus: promtool accepts the configuration, the rules pass their unit tests, and
every metric the rules read exists in the catalogue (shared/metrics.py)."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.metric_names import (
    PROMETHEUS_DIR,
    REPO,
    catalogue,
    is_known,
    load_yaml,
    names_in_expr,
    promtool,
    recording_rule_names,
    rules,
)

PROCESSES = ("api", "ingest", "reconciler", "alerts")
SEVERITIES = {"critical", "warning", "info"}


def run_promtool(*args: str) -> None:
    result = subprocess.run(
        [promtool(), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )


def test_promtool_accepts_the_configuration() -> None:
    run_promtool("check", "config", "deploy/prometheus/prometheus.yml")


def test_promtool_accepts_the_rules() -> None:
    run_promtool("check", "rules", "deploy/prometheus/rules.yml")


def test_rules_pass_their_unit_tests() -> None:
    run_promtool("test", "rules", "deploy/prometheus/rules_test.yml")


def test_every_process_is_scraped_every_15_seconds() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for process in PROCESSES:
        job = jobs[f"doisoat-{process}"]
        targets = [t for static in job["static_configs"] for t in static["targets"]]
        assert targets == [f"{process}:8000"], job
        assert job.get("metrics_path", "/metrics") == "/metrics"


def test_rules_read_only_metrics_of_the_catalogue() -> None:
    known = catalogue()
    recorded = recording_rule_names()
    unknown = {
        name: rule.get("alert") or rule.get("record")
        for rule in rules()
        for name in names_in_expr(str(rule["expr"]))
        if not is_known(name, known, recorded)
    }
    assert not unknown, f"metrics used in rules.yml but not defined in shared/metrics.py: {unknown}"


def test_the_name_extraction_sees_through_labels_and_suffixes() -> None:
    """Guards the guard: the parsing above must not pass everything."""
    expr = (
        'sum by (le) (rate(doisoat_reconcile_sweep_duration_seconds_bucket{job="doisoat-api"}'
        "[5m])) + doisoat:ingest_events:rate5m + doisoat_no_such_metric_total"
    )
    assert names_in_expr(expr) == {
        "doisoat_reconcile_sweep_duration_seconds_bucket",
        "doisoat:ingest_events:rate5m",
        "doisoat_no_such_metric_total",
    }
    known = catalogue()
    assert is_known("doisoat_reconcile_sweep_duration_seconds_bucket", known)
    assert is_known("doisoat_ingest_events_total", known)
    assert not is_known("doisoat_ingest_events", known)  # a counter is read with _total
    assert not is_known("doisoat_outbox_pending_bucket", known)  # a gauge has no buckets
    assert not is_known("doisoat_no_such_metric_total", known)
    assert not is_known("doisoat:ingest_events:rate5m", known)
    assert is_known("doisoat:ingest_events:rate5m", known, recording_rule_names())


def test_every_alert_says_how_bad_what_and_what_to_do() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 10
    for alert in alerts:
        name = alert["alert"]
        assert alert.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = alert.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert len(annotations.get("runbook", "").strip()) > 40, f"{name}: no usable runbook"


@pytest.mark.parametrize(
    "alert",
    [
        "DoisoatConsumerLagGrowing",
        "DoisoatSourceSilent",
        "DoisoatDeadLetters",
        "DoisoatOutboxBacklog",
        "DoisoatOutboxStuck",
        "DoisoatNotificationsDead",
        "DoisoatSweepStale",
        "DoisoatSweepMissing",
        "DoisoatDatabaseUnreachable",
        "DoisoatTargetDown",
        "DoisoatReturnedButOpen",
    ],
)
def test_each_alert_is_defined_and_tested_firing_and_quiet(alert: str) -> None:
    assert alert in {rule.get("alert") for rule in rules()}
    document = load_yaml(PROMETHEUS_DIR / "rules_test.yml")
    cases = [
        case
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alert
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{alert}: no firing case"
    assert any(not case.get("exp_alerts") for case in cases), f"{alert}: no quiet case"
