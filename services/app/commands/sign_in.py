"""``doisoat sign-in-link ACCOUNT`` and ``doisoat sign-out ACCOUNT``: the workspace's sign-in by
hand, for when email is not configured, and ending an officer's sessions."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from services.app.console import fail, in_database, load_settings
from shared.clock import system_clock


def sign_in_link(
    account: Annotated[str, typer.Argument(help="Tài khoản cán bộ trong danh bạ.")],
) -> None:
    """In một liên kết đăng nhập dùng một lần (15 phút) cho cán bộ (khi chưa cấu hình email)."""
    # Imported here: the ``doisoat`` command loads only what the command run needs.
    from services.workspace import sessions
    from services.workspace.config import WorkspaceSettings
    from services.workspace.pages.sign_in import link_of

    settings = load_settings(WorkspaceSettings)

    async def work(connection: AsyncConnection) -> str | None:
        officer = await sessions.find_officer(connection, account)
        if officer is None or officer.account != account:
            return None
        return await sessions.create_link(
            connection,
            account,
            now=system_clock(),
            requested_from="cli",
        )

    token = in_database(settings.database_url, "cli_sign_in_link", work)
    if token is None:
        raise fail(
            f"không có cán bộ đang hoạt động với tài khoản {account!r} / "
            f"no active officer with account {account!r}"
        )
    typer.echo(link_of(settings, token))
    typer.echo(
        "Liên kết dùng được một lần, trong 15 phút. / Single use, valid for 15 minutes.", err=True
    )


def sign_out(
    account: Annotated[str, typer.Argument(help="Tài khoản cán bộ.")],
) -> None:
    """Kết thúc mọi phiên đăng nhập của một cán bộ (ví dụ khi mất máy)."""
    from services.workspace import sessions
    from services.workspace.config import WorkspaceSettings

    settings = load_settings(WorkspaceSettings)

    async def work(connection: AsyncConnection) -> int:
        return await sessions.end_sessions_of(
            connection,
            account,
            now=system_clock(),
        )

    ended = in_database(settings.database_url, "cli_sign_out", work)
    typer.echo(f"Đã kết thúc {ended} phiên của {account}. / Ended {ended} session(s).")
