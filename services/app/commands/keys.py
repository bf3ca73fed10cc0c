"""``doisoat keys create|list|revoke``: API keys kept in the database, shown once, stored hashed.

Mounted on the main command by ``app.add_typer(keys_app, name="keys")`` in ``services.app.cli``.
The key printed by ``create`` goes alone to standard output (so ``KEY=$(doisoat keys create …)``
works); everything said to people goes to standard error, Vietnamese first, English beside.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.access import keys as service
from services.app.console import fail, in_database, load_settings
from shared.auth import STORED_KEYS_TTL_SECONDS
from shared.clock import VN_TZ, system_clock
from shared.config import BaseDoisoatSettings

keys_app = typer.Typer(
    help="Quản lý khóa API (chỉ lưu mã băm) / manage API keys (stored only as hashes).",
    no_args_is_help=True,
    add_completion=False,
)

T = TypeVar("T")


def _in_database(name: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` in one unit of work on the configured database; clear errors, no traceback."""
    settings = load_settings(BaseDoisoatSettings)
    try:
        return in_database(settings.database_url, name, work)
    except (SQLAlchemyError, OSError) as error:
        raise fail(
            "không dùng được bảng khóa API (đã chạy `doisoat migrate` chưa?) / "
            f"cannot use the api_keys table (has `doisoat migrate` been run?): "
            f"{type(error).__name__}"
        ) from None


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M")


def _units(units: list[str]) -> str:
    return ",".join(units) or "(tất cả / all)"


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="source | desk | officer | admin")],
    account: Annotated[str, typer.Option(help="Tài khoản ghi vào nhật ký / account audited.")],
    unit: Annotated[
        list[str] | None,
        typer.Option(help="Mã định danh đơn vị (lặp lại được; bắt buộc trừ admin)."),
    ] = None,
) -> None:
    """Tạo khóa API mới; khóa chỉ hiện một lần."""

    async def work(connection: AsyncConnection) -> tuple[service.CreatedKey, list[str]]:
        created = await service.create_key(
            connection, role=role, units=unit or [], account=account, now=system_clock()
        )
        return created, await service.unknown_units(connection, created.stored.units)

    try:
        created, unknown = _in_database("keys_create", work)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "key"
        raise fail(f"khóa không hợp lệ / invalid key ({where}): {first['msg']}") from None
    stored = created.stored
    typer.echo(created.key)
    typer.echo(
        f"Đã tạo khóa {stored.prefix}… (id {stored.id}) cho {stored.account}, vai trò "
        f"{stored.role}, đơn vị {_units(stored.units)}. / Key created.",
        err=True,
    )
    typer.echo(
        "Khóa chỉ hiển thị MỘT LẦN này và không được lưu (chỉ lưu mã băm): hãy cất giữ ngay. / "
        "The key is shown only this once and is not stored (only its hash is): keep it now.",
        err=True,
    )
    for code in unknown:
        typer.echo(
            f"Cảnh báo: đơn vị {code} chưa có trong danh mục (PUT /api/v1/units/{code}). / "
            f"Warning: unit {code} is not in the directory yet.",
            err=True,
        )


@keys_app.command("list")
def list_(
    as_json: Annotated[
        bool, typer.Option("--json", help="In dạng JSON, mỗi khóa một dòng / JSON lines.")
    ] = False,
) -> None:
    """Liệt kê các khóa trong cơ sở dữ liệu (không bao giờ in khóa hay mã băm)."""
    stored = _in_database("keys_list", service.list_keys)
    if as_json:
        for key in stored:
            typer.echo(json.dumps(key.model_dump(mode="json"), ensure_ascii=False))
        return
    if not stored:
        typer.echo(
            "Chưa có khóa nào trong cơ sở dữ liệu (khóa trong DOISOAT_API_KEYS không liệt kê ở "
            "đây). / No keys in the database (keys in DOISOAT_API_KEYS are not listed here).",
            err=True,
        )
        return
    header = ("id", "prefix", "role", "units", "account", "created", "revoked")
    rows = [
        (
            str(key.id),
            key.prefix,
            key.role,
            _units(key.units),
            key.account,
            _when(key.created_at),
            _when(key.revoked_at),
        )
        for key in stored
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@keys_app.command("revoke")
def revoke(
    ident: Annotated[str, typer.Argument(metavar="PREFIX_OR_ID", help="Tiền tố hoặc id khóa.")],
) -> None:
    """Thu hồi một khóa (theo tiền tố hoặc id); các tiến trình ngừng nhận khóa trong vài giây."""

    async def work(connection: AsyncConnection) -> tuple[service.KeyRead, bool]:
        return await service.revoke_key(connection, ident=ident, now=system_clock())

    try:
        key, changed = _in_database("keys_revoke", work)
    except service.KeyNotFound:
        raise fail(f"không có khóa {ident!r} / no key {ident!r}") from None
    except service.AmbiguousKey as error:
        ids = ", ".join(str(i) for i in error.ids)
        raise fail(
            f"nhiều khóa khớp {ident!r}, hãy dùng id ({ids}) / "
            f"several keys match {ident!r}: use the id ({ids})"
        ) from None
    if not changed:
        typer.echo(
            f"Khóa {key.prefix}… (id {key.id}) đã bị thu hồi lúc {_when(key.revoked_at)}. / "
            "Already revoked.",
            err=True,
        )
        return
    typer.echo(
        f"Đã thu hồi khóa {key.prefix}… (id {key.id}, {key.account}); các tiến trình đang chạy "
        f"ngừng nhận khóa trong vòng {STORED_KEYS_TTL_SECONDS:g} giây. / Key revoked; running "
        f"processes refuse it within {STORED_KEYS_TTL_SECONDS:g} s.",
        err=True,
    )
