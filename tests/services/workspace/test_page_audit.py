"""Writes through the pages are in the audit log (contract §6; README "Every POST carries a
CSRF token … Every write through a page, signing in included, is in the audit log").

Who signed in, and who acknowledged what, must be answerable afterwards from the audit log alone,
as for the API's writes: the account, its role, the action and the answer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.models import AuditEntry
from tests.services.workspace.page_world import (
    HANDLER,
    NOW,
    Workspace,
    add_discrepancy,
    dossier_code,
    form_token,
    store_dossiers,
)


async def audit_log(ws: Workspace) -> list[Any]:
    async def read(connection: AsyncConnection) -> list[Any]:
        rows = await connection.execute(select(AuditEntry).order_by(AuditEntry.id))
        return list(rows.all())

    return await ws.run(read)


async def test_signing_in_is_recorded_with_the_officer(workspace: Workspace) -> None:
    """The row names the officer who signed in, never the link's token (a credential)."""
    token = await workspace.link(HANDLER.account)
    answer = await workspace.press_sign_in(workspace.browser(), token)
    assert answer.status_code == 303

    (entry,) = [row for row in await audit_log(workspace) if row.action.startswith("POST /sign-in")]
    assert entry.action == "POST /sign-in/{token}"
    assert (entry.account, entry.role, entry.status_code) == (HANDLER.account, "officer", 303)
    assert entry.at == NOW
    assert token not in f"{entry.action} {entry.target}"


async def test_acknowledging_from_the_inbox_is_recorded_with_the_officer(
    workspace: Workspace,
) -> None:
    """The handler who acknowledged, the action and its answer are in the log."""
    code = dossier_code(1)
    await store_dossiers(workspace, {code: HANDLER})
    chosen = await add_discrepancy(workspace, code, "OVERDUE_NO_APOLOGY", holder=HANDLER)
    browser = await workspace.signed_in(HANDLER)
    inbox = await browser.get("/inbox")
    assert inbox.status_code == 200

    answer = await browser.post(
        "/inbox/ack",
        data={
            "id": str(chosen),
            "ghi_chu": "Đã gọi điện cho công dân",
            "csrf_token": form_token(inbox.text),
        },
    )
    assert answer.status_code == 303, answer.text

    (entry,) = [row for row in await audit_log(workspace) if row.action == "POST /inbox/ack"]
    assert (entry.account, entry.role, entry.status_code) == (HANDLER.account, "officer", 303)
    assert entry.at == NOW
