"""``doisoat purge --months N``: remove applicants' personal data now, with progress for people."""

from __future__ import annotations

from datetime import datetime

import typer

from services.app.console import (
    CommandRefused,
    Echo,
    fail,
    load_settings,
    open_database,
    run_async,
)
from services.reconciler.config import ReconcilerSettings
from services.reconciler.retention import (
    DEFAULT_BATCH,
    PurgeResult,
    purge_with_engine,
    retention_cutoff,
)
from shared.clock import VN_TZ, Clock, system_clock


def summary_line(result: PurgeResult, months: int) -> str:
    return (
        f"Đã xóa dữ liệu cá nhân của {result.dossiers} hồ sơ đã đóng trên {months} tháng "
        f"({result.events} sự kiện). / Purged personal data of {result.dossiers} dossiers "
        f"closed more than {months} months ago ({result.events} events)."
    )


def _announcement(cutoff: datetime, months: int) -> str:
    local = cutoff.astimezone(VN_TZ)
    return (
        f"Đang xóa họ tên và số giấy tờ của chủ hồ sơ đã đóng trước "
        f"{local.strftime('%H:%M %d/%m/%Y')} ({months} tháng)… / Purging applicants' personal "
        f"data of dossiers closed before {local.isoformat(timespec='minutes')}…"
    )


async def purge_command(
    database_url: str,
    *,
    months: int,
    echo: Echo,
    batch: int = DEFAULT_BATCH,
    clock: Clock = system_clock,
) -> PurgeResult:
    """Purge with progress and a summary; :class:`CommandRefused` when it cannot run."""
    if months < 0:
        raise CommandRefused("Số tháng phải từ 0 trở lên. / months must be zero or more.")
    now = clock()
    async with open_database(database_url) as engine:
        echo(_announcement(retention_cutoff(now, months), months))

        def progress(so_far: PurgeResult) -> None:
            echo(f"… {so_far.dossiers} hồ sơ, {so_far.events} sự kiện")

        result = await purge_with_engine(
            engine, now=now, months=months, batch=batch, on_chunk=progress
        )
    echo(summary_line(result, months))
    return result


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
    settings = load_settings(ReconcilerSettings)
    retention = months if months is not None else settings.personal_data_retention_months
    if retention is None:
        raise fail(
            "chưa có số tháng: dùng --months N hoặc đặt DOISOAT_PERSONAL_DATA_RETENTION_MONTHS "
            "/ no retention period: pass --months N or set DOISOAT_PERSONAL_DATA_RETENTION_MONTHS"
        )
    run_async(purge_command(settings.database_url, months=retention, echo=typer.echo))
