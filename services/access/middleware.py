"""Records every audited request once its answer's status is known (pure ASGI middleware).

Writes under ``/api/v1`` (``POST``/``PUT``/``PATCH``/``DELETE``) and ``POST /ack/{token}`` get
one row each, in a transaction of their own. Refusals (401, 403, 413, …) are recorded like
successes. A failure to record is logged and never changes the answer.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.access import audit
from shared.db import unit_of_work

log = logging.getLogger("doisoat.audit")


class AuditMiddleware:
    """Records audited requests once their status is known (pure ASGI: bodies pass untouched).

    The engine, clock and ack links are read from ``app.state`` at each request, as the
    dependencies do, so that whatever the app holds is what is used.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audit.audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        status_code: int | None = None

        async def send_noting_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            await _write(scope, status_code or 500)
            raise
        await _write(scope, status_code or 500)


async def _write(scope: Scope, status_code: int) -> None:
    """Write one row in its own transaction; log and carry on when that fails."""
    action = str(scope.get("method"))
    try:
        state = scope["app"].state
        entry = audit.describe(
            scope,
            status_code,
            now=state.clock(),
            ack_links=getattr(state, "ack_links", None),
        )
        action = entry.action
        async with unit_of_work(state.engine, "audit") as connection:
            await audit.record(connection, entry=entry)
    except Exception:
        log.error(
            "audit entry not written",
            extra={"action": action, "status_code": status_code},
            exc_info=True,
        )
