"""The ``doisoat`` command (contract §5); messages for people in Vietnamese, English beside."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.alerts.config import AlertsSettings
from services.alerts.planner import AlertPlanner
from services.alerts.worker import AlertsWorker
from services.api.app import Worker, create_app
from services.demo import DemoError, demo_command
from services.import_cli import import_app
from services.ingest.config import IngestSettings
from services.ingest.consumer import KafkaIngestor
from services.keys_cli import keys_app
from services.reconciler.config import ReconcilerSettings
from services.reconciler.retention import PurgeError, run_purge
from services.reconciler.worker import ChangeHook, Reconciler
from services.reconciler.writes import Change
from shared import migrate as migrations
from shared.clock import system_clock
from shared.config import BaseDoisoatSettings
from shared.db import create_engine, database_reachable
from shared.logs import configure_logging

app = typer.Typer(
    help="doisoat — đối soát trạng thái hồ sơ thủ tục hành chính với thực tế tại Bộ phận Một cửa.",
    no_args_is_help=True,
    add_completion=False,
)

WorkerFactory = Callable[[AsyncEngine], Sequence[Worker]]
app.add_typer(import_app, name="import")
app.add_typer(keys_app, name="keys")


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising the caught signal after its graceful shutdown.

    uvicorn restores the default handlers and raises SIGTERM again once it has shut down, which
    kills the process with status -15 before the engine is disposed. A stop that completed its
    work should exit 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        originals = {
            handled: signal.signal(handled, self.handle_exit)
            for handled in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for handled, handler in originals.items():
                signal.signal(handled, handler)


SettingsT = TypeVar("SettingsT", bound=BaseDoisoatSettings)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"doisoat: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def _settings(cls: type[SettingsT]) -> SettingsT:
    try:
        settings = cls()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise _fail(
            f"cấu hình không hợp lệ / invalid setting DOISOAT_{where.upper()}: {first['msg']}"
        ) from None
    configure_logging(settings.log_level)
    return settings


def _migrate(database_url: str) -> None:
    before = asyncio.run(migrations.current_revision(database_url))
    try:
        migrations.upgrade(database_url)
    except Exception as error:
        raise _fail(f"không chạy được migration / migration failed: {error}") from None
    after = asyncio.run(migrations.current_revision(database_url))
    if before == after:
        typer.echo(f"Cơ sở dữ liệu đã ở phiên bản mới nhất / database already at {after}.")
    else:
        typer.echo(f"Đã nâng cấp cơ sở dữ liệu / database migrated: {before or 'empty'} → {after}.")


def _serve(settings: BaseDoisoatSettings, workers: WorkerFactory, *, serve_api: bool) -> None:
    async def main() -> None:
        engine = create_engine(settings.database_url)
        try:
            if not await database_reachable(engine):
                raise _fail(
                    "không kết nối được cơ sở dữ liệu / database unreachable: "
                    f"{engine.url.render_as_string(hide_password=True)}"
                )
            built = workers(engine)
            readiness = {w.name: w.ready for w in built if hasattr(w, "ready")}
            wake = next((w.wake for w in built if isinstance(w, Reconciler)), None)
            application = create_app(
                settings,
                engine=engine,
                clock=system_clock,
                workers=built,
                serve_api=serve_api,
                readiness=readiness,
                on_new_facts=wake or (lambda: None),
            )
            config = uvicorn.Config(
                application,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
            logging.getLogger("doisoat").info(
                "serving",
                extra={
                    "port": settings.http_port,
                    "api": serve_api,
                    "workers": [w.name for w in built],
                },
            )
            await _Server(config).serve()
        finally:
            await engine.dispose()

    asyncio.run(main())


def _workers(
    ingest_settings: IngestSettings | None,
    reconciler_settings: ReconcilerSettings | None,
    alerts_settings: AlertsSettings | None,
) -> WorkerFactory:
    """The background loops of a process; in one process, new facts wake the reconciler.

    The reconciler writes the alerts outbox in its own transactions whenever a channel is
    configured, whether or not this process also runs the dispatcher.
    """

    def build(engine: AsyncEngine) -> list[Worker]:
        built: list[Worker] = []
        reconciler = None
        planner = AlertPlanner(alerts_settings or _settings(AlertsSettings))
        if reconciler_settings is not None:
            hook = _outbox_hook(planner) if planner.active else None
            reconciler = Reconciler(reconciler_settings, engine, system_clock, on_changes=hook)
            built.append(reconciler)
        if alerts_settings is not None:
            built.append(AlertsWorker(alerts_settings, engine, system_clock, planner))
        if ingest_settings is not None and ingest_settings.kafka_enabled:
            built.append(
                KafkaIngestor(
                    ingest_settings,
                    engine,
                    system_clock,
                    on_committed=reconciler.wake if reconciler else None,
                )
            )
        return built

    return build


def _outbox_hook(planner: AlertPlanner) -> ChangeHook:
    async def write_outbox(
        connection: AsyncConnection, changes: Sequence[Change], now: datetime
    ) -> int:
        return await planner.on_changes(connection, changes, now=now)

    return write_outbox


@app.command()
def migrate() -> None:
    """Đưa cơ sở dữ liệu lên phiên bản mới nhất (alembic upgrade head)."""
    settings = _settings(BaseDoisoatSettings)
    _migrate(settings.database_url)


@app.command()
def run() -> None:
    """Chạy tất cả trong một tiến trình (mặc định nhúng: SQLite, HTTP cổng 8000)."""
    settings = _settings(IngestSettings)
    reconciler_settings = _settings(ReconcilerSettings)
    alerts_settings = _settings(AlertsSettings)
    _migrate(settings.database_url)
    _serve(settings, _workers(settings, reconciler_settings, alerts_settings), serve_api=True)


@app.command()
def api() -> None:
    """Chỉ chạy HTTP API."""
    settings = _settings(BaseDoisoatSettings)
    _serve(settings, lambda engine: [], serve_api=True)


@app.command()
def ingest() -> None:
    """Chỉ chạy bộ tiêu thụ Kafka (cần DOISOAT_KAFKA_BOOTSTRAP_SERVERS)."""
    settings = _settings(IngestSettings)
    if not settings.kafka_enabled:
        raise _fail(
            "chưa đặt DOISOAT_KAFKA_BOOTSTRAP_SERVERS / set DOISOAT_KAFKA_BOOTSTRAP_SERVERS "
            "to consume Kafka"
        )
    _serve(settings, _workers(settings, None, None), serve_api=False)


@app.command()
def reconciler() -> None:
    """Chỉ chạy bộ đối soát (quét định kỳ và đối soát hồ sơ mới thay đổi)."""
    settings = _settings(ReconcilerSettings)
    _serve(settings, _workers(None, settings, None), serve_api=False)


@app.command()
def alerts() -> None:
    """Chỉ chạy dịch vụ cảnh báo (gửi email, Zalo; nhắc lại, báo lãnh đạo, bản tin tuần)."""
    settings = _settings(AlertsSettings)
    _serve(settings, _workers(None, None, settings), serve_api=False)


@app.command()
def purge(
    months: int | None = typer.Option(
        None,
        "--months",
        min=1,
        help="Xóa dữ liệu cá nhân của hồ sơ đã đóng quá số tháng này "
        "(mặc định: DOISOAT_PERSONAL_DATA_RETENTION_MONTHS).",
    ),
) -> None:
    """Xóa họ tên và số giấy tờ của chủ hồ sơ đã đóng quá N tháng (Nghị định 13/2023/NĐ-CP)."""
    settings = _settings(ReconcilerSettings)
    retention = months if months is not None else settings.personal_data_retention_months
    if retention is None:
        raise _fail(
            "chưa có số tháng: dùng --months N hoặc đặt DOISOAT_PERSONAL_DATA_RETENTION_MONTHS "
            "/ no retention period: pass --months N or set DOISOAT_PERSONAL_DATA_RETENTION_MONTHS"
        )
    try:
        run_purge(settings.database_url, months=retention, echo=typer.echo)
    except PurgeError as error:
        raise _fail(str(error)) from None


@app.command()
def demo(
    dossiers: int = typer.Option(300, help="Số hồ sơ mẫu (50–20.000)."),
    seed: int = typer.Option(2025, help="Hạt giống sinh dữ liệu (cùng hạt giống, cùng dữ liệu)."),
    reset: bool = typer.Option(False, help="Xóa tệp SQLite cũ trước khi tạo dữ liệu mẫu."),
) -> None:
    """Tạo một Bộ phận Một cửa mẫu, chạy đối soát và in bảng tóm tắt (chỉ để dùng thử)."""
    settings = _settings(ReconcilerSettings)
    try:
        demo_command(
            settings.database_url,
            dossiers=dossiers,
            seed=seed,
            echo=typer.echo,
            reset=reset,
            settings=settings,
        )
    except DemoError as error:
        raise _fail(str(error)) from None


if __name__ == "__main__":
    app()
