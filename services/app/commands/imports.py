"""``doisoat import …``: load a desk register or an officers list from a CSV file, with progress.

The same checks and idempotent writes as the HTTP imports, run straight against the database
by an operator (acting as admin) in chunks of one transaction each, so a large file shows how
far it got and can simply be run again after an interruption.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from services.app.console import Echo, fail, load_settings, number, open_database, run_async
from services.reconciler.directory import schemas as directory_schemas
from services.reconciler.directory import service as directory_service
from services.reconciler.reports import csv_import
from services.reconciler.reports import service as reports_service
from shared.auth import Principal
from shared.clock import system_clock
from shared.config import BaseDoisoatSettings
from shared.db import unit_of_work
from shared.directory import load_directory

import_app = typer.Typer(
    help="Nhập dữ liệu từ tệp CSV (sổ theo dõi hồ sơ, danh sách cán bộ).", no_args_is_help=True
)

CHUNK_ROWS = 1000
SHOWN_REFUSALS = 20
OPERATOR = Principal(account="cli-import", role="admin", units=frozenset())
Row = TypeVar("Row")


def _chunks(rows: Sequence[Row]) -> list[Sequence[Row]]:
    return [rows[start : start + CHUNK_ROWS] for start in range(0, len(rows), CHUNK_ROWS)]


def _report(tally: Counter[str], refusals: list[tuple[int, str]], echo: Echo) -> None:
    echo(
        f"Xong: nhận {number(tally['accepted'])}, trùng {number(tally['duplicate'])}, "
        f"từ chối {number(tally['refused'])}. / Done: accepted {tally['accepted']}, "
        f"duplicate {tally['duplicate']}, refused {tally['refused']}."
    )
    for row, reason in refusals[:SHOWN_REFUSALS]:
        echo(f"  dòng {row}: {reason}")
    if len(refusals) > SHOWN_REFUSALS:
        echo(f"  … và {number(len(refusals) - SHOWN_REFUSALS)} dòng bị từ chối khác.")


def _progress(done: int, total: int, tally: Counter[str], echo: Echo) -> None:
    echo(
        f"Đang nhập… {number(done)}/{number(total)} dòng "
        f"(nhận {number(tally['accepted'])}, trùng {number(tally['duplicate'])}, "
        f"từ chối {number(tally['refused'])})"
    )


async def import_field_reports(database_url: str, data: bytes, *, echo: Echo) -> Counter[str]:
    now = system_clock()
    rows = csv_import.parse_register(data, now=now)
    tally: Counter[str] = Counter()
    refusals: list[tuple[int, str]] = []
    async with open_database(database_url) as engine:
        done = 0
        for chunk in _chunks(rows):
            async with unit_of_work(engine, "cli_field_report_import") as connection:
                directory = await load_directory(connection)
                answer = await reports_service.import_register(
                    connection, chunk, principal=OPERATOR, directory=directory, now=now
                )
            for item in answer.rows:
                tally[item.outcome] += 1
                if item.outcome == "refused":
                    refusals.append((item.row, item.reason or ""))
            done += len(chunk)
            _progress(done, len(rows), tally, echo)
    _report(tally, refusals, echo)
    return tally


async def import_officers(database_url: str, data: bytes, *, echo: Echo) -> Counter[str]:
    rows = directory_schemas.read_officer_csv(data, max_rows=len(data) + 1)
    tally: Counter[str] = Counter()
    refusals: list[tuple[int, str]] = []
    async with open_database(database_url) as engine:
        done = 0
        for chunk in _chunks(rows):
            async with unit_of_work(engine, "cli_officer_import") as connection:
                results = await directory_service.import_officers(
                    connection, rows=chunk, now=system_clock()
                )
            for result in results:
                tally[result.outcome] += 1
                if result.outcome == "refused":
                    refusals.append((result.row, result.reason or ""))
            done += len(chunk)
            _progress(done, len(rows), tally, echo)
    _report(tally, refusals, echo)
    return tally


def _run(importer: Callable[..., Any], path: Path) -> None:
    settings = load_settings(BaseDoisoatSettings)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise fail(f"không đọc được tệp / cannot read {path}: {error}") from None
    try:
        run_async(importer(settings.database_url, data, echo=typer.echo))
    except (csv_import.RegisterError, directory_schemas.CsvFileError) as error:
        raise fail(str(error)) from None


@import_app.command("field-reports")
def field_reports(path: Path) -> None:
    """Nhập sổ theo dõi hồ sơ (CSV của Bộ phận Một cửa)."""
    _run(import_field_reports, path)


@import_app.command("officers")
def officers(path: Path) -> None:
    """Nhập danh sách cán bộ (CSV)."""
    _run(import_officers, path)
