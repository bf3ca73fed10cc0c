"""Mounting the workspace on the app: its pages, static files, headers and error pages."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.workspace.auth import SignInRequired
from services.workspace.config import WorkspaceSettings
from services.workspace.pages import board, dossier, home, inbox, returns, sign_in
from services.workspace.rendering import STATIC, is_htmx, page
from services.workspace.security import PageHeaders

# Paths that are not pages: their errors stay JSON (the API) or their own pages (ack links).
NOT_PAGES = ("/api/", "/ack/", "/metrics", "/healthz", "/readyz", "/docs", "/openapi.json")
ERROR_TITLES = {403: "Không có quyền", 404: "Không tìm thấy", 410: "Đã hết hiệu lực"}
DEFAULT_MESSAGES = {
    404: "Không tìm thấy trang hoặc hồ sơ này.",
    405: "Thao tác này không dùng được trên trang này.",
}

Handler = Callable[[Request, Exception], Awaitable[Response]]
AnyHandler = Callable[[Request, Any], Any]


def mount_workspace(app: FastAPI, settings: WorkspaceSettings) -> None:
    """Serve the pages, their assets and their error pages on ``app``."""
    app.state.workspace_settings = settings
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (sign_in, home, returns, inbox, dossier, board):
        app.include_router(module.router)
    app.add_middleware(PageHeaders)
    app.exception_handler(SignInRequired)(_sign_in_required)
    previous: AnyHandler | None = app.exception_handlers.get(StarletteHTTPException)
    app.exception_handler(StarletteHTTPException)(_page_errors(previous))


async def _sign_in_required(request: Request, _: Exception) -> Response:
    if is_htmx(request):  # a partial update cannot redirect the page: ask htmx to
        return Response(status_code=200, headers={"HX-Redirect": "/sign-in"})
    return RedirectResponse("/sign-in", status_code=303)


def _page_errors(previous: AnyHandler | None) -> Handler:
    """Errors of pages as pages (in Vietnamese); every other path keeps its own handler."""

    async def handler(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if str(request.url.path).startswith(NOT_PAGES) and previous is not None:
            answer = previous(request, error)
            done = await answer if inspect.isawaitable(answer) else answer
            assert isinstance(done, Response)
            return done
        message = error.detail if isinstance(error.detail, str) else ""
        vietnamese = (
            message.split(" / ")[0]
            if " / " in message
            else DEFAULT_MESSAGES.get(error.status_code, "Yêu cầu không thực hiện được.")
        )
        title = ERROR_TITLES.get(error.status_code, "Không thực hiện được")
        if is_htmx(request):
            return HTMLResponse(
                f'<p class="notice error" role="alert">{escape(vietnamese)}</p>',
                status_code=error.status_code,
            )
        return page(
            request,
            "error.html.j2",
            {"title": title, "message": vietnamese},
            status_code=error.status_code,
        )

    return handler
