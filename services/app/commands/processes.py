"""``doisoat migrate | run | api | ingest | reconciler | alerts``: the long-running processes.

Each command imports the settings and modules of what it runs when it runs: ``doisoat
ingest`` loads neither alembic, nor the workspace, nor the alert channels.
"""

from __future__ import annotations

import asyncio

import typer

from services.app import wiring
from services.app.console import fail, load_settings
from services.ingest.config import IngestSettings
from services.reconciler.config import ReconcilerSettings
from shared.config import BaseDoisoatSettings


def _migrate(database_url: str) -> None:
    from shared import migrate as migrations

    before = asyncio.run(migrations.current_revision(database_url))
    try:
        migrations.upgrade(database_url)
    except Exception as error:
        raise fail(f"không chạy được migration / migration failed: {error}") from None
    after = asyncio.run(migrations.current_revision(database_url))
    if before == after:
        typer.echo(f"Cơ sở dữ liệu đã ở phiên bản mới nhất / database already at {after}.")
    else:
        typer.echo(f"Đã nâng cấp cơ sở dữ liệu / database migrated: {before or 'empty'} → {after}.")


def migrate() -> None:
    """Đưa cơ sở dữ liệu lên phiên bản mới nhất (alembic upgrade head)."""
    settings = load_settings(BaseDoisoatSettings)
    _migrate(settings.database_url)


def run() -> None:
    """Chạy tất cả trong một tiến trình (mặc định nhúng: SQLite, HTTP cổng 8000)."""
    from services.alerts.config import AlertsSettings
    from services.workspace.config import WorkspaceSettings

    settings = load_settings(IngestSettings)
    reconciler_settings = load_settings(ReconcilerSettings)
    alerts_settings = load_settings(AlertsSettings)
    _migrate(settings.database_url)
    wiring.serve(
        settings,
        wiring.workers(settings, reconciler_settings, alerts_settings),
        serve_api=True,
        workspace=load_settings(WorkspaceSettings),
    )


def api() -> None:
    """Chỉ chạy HTTP API."""
    from services.workspace.config import WorkspaceSettings

    settings = load_settings(WorkspaceSettings)
    wiring.serve(settings, lambda engine: [], serve_api=True, workspace=settings)


def ingest() -> None:
    """Chỉ chạy bộ tiêu thụ Kafka (cần DOISOAT_KAFKA_BOOTSTRAP_SERVERS)."""
    settings = load_settings(IngestSettings)
    if not settings.kafka_enabled:
        raise fail(
            "chưa đặt DOISOAT_KAFKA_BOOTSTRAP_SERVERS / set DOISOAT_KAFKA_BOOTSTRAP_SERVERS "
            "to consume Kafka"
        )
    wiring.serve(settings, wiring.workers(settings, None, None), serve_api=False)


def reconciler() -> None:
    """Chỉ chạy bộ đối soát (quét định kỳ và đối soát hồ sơ mới thay đổi)."""
    settings = load_settings(ReconcilerSettings)
    wiring.serve(settings, wiring.workers(None, settings, None), serve_api=False)


def alerts() -> None:
    """Chỉ chạy dịch vụ cảnh báo (gửi email, Zalo; nhắc lại, báo lãnh đạo, bản tin tuần)."""
    from services.alerts.config import AlertsSettings

    settings = load_settings(AlertsSettings)
    wiring.serve(settings, wiring.workers(None, None, settings), serve_api=False)
