"""The metric catalogue and the settings are all documented, and every process exposes them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase
from pydantic_settings import BaseSettings

import shared.metrics
from services.alerts.config import AlertsSettings
from services.ingest.config import IngestSettings
from services.reconciler.config import ReconcilerSettings
from shared import migrate
from shared.config import BaseDoisoatSettings
from tests.support.broker import Broker, create_topic
from tests.support.processes import ServiceProcess, start_service

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SETTINGS: tuple[type[BaseSettings], ...] = (
    BaseDoisoatSettings,
    IngestSettings,
    ReconcilerSettings,
    AlertsSettings,
)


def catalogue() -> list[str]:
    """Exposed family names of every metric defined in ``shared.metrics``."""
    names = []
    for value in vars(shared.metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.append(family.name + ("_total" if family.type == "counter" else ""))
    return sorted(names)


def test_every_metric_is_listed_with_its_meaning_in_the_readme() -> None:
    missing = [name for name in catalogue() if f"`{name}" not in README]
    assert missing == []


def test_every_metric_has_the_doisoat_prefix_and_a_base_unit_suffix() -> None:
    for name in catalogue():
        assert name.startswith("doisoat_"), name


def test_every_setting_is_listed_in_the_readme() -> None:
    names = {f"DOISOAT_{field.upper()}" for cls in SETTINGS for field in cls.model_fields}
    assert sorted(name for name in names if name not in README) == []


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalogue.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def processes(
    sqlite_url: str, broker: Broker, tmp_path: Path
) -> Iterator[dict[str, ServiceProcess]]:
    topic = f"catalogue.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    env = {
        "DOISOAT_DATABASE_URL": sqlite_url,
        "DOISOAT_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DOISOAT_KAFKA_TOPIC": topic,
    }
    started: dict[str, ServiceProcess] = {}
    try:
        for command in ("api", "ingest", "reconciler", "alerts"):
            started[command] = start_service(command, env=env, log_path=tmp_path / command)
        yield started
    finally:
        for process in started.values():
            process.stop()


@pytest.mark.slow
def test_each_running_process_exposes_the_whole_catalogue(
    processes: dict[str, ServiceProcess],
) -> None:
    for command, process in processes.items():
        exposed = process.get("/metrics").text
        missing = [name for name in catalogue() if f"# HELP {name} " not in exposed]
        assert missing == [], f"doisoat {command} lacks {missing}"
