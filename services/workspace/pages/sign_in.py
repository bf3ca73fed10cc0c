"""Signing in by link (contract §6): ask for a link, open it, press the button, sign out.

``GET /sign-in/{token}`` only shows the button: mail scanners open links, and must not use
them up. Asking for a link answers the same whether or not the account exists.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from services.alerts.channels.base import Message, Recipient, SendOutcome
from services.alerts.channels.email import EmailChannel
from services.workspace import sessions
from services.workspace.auth import COOKIE, OfficerWriting, principal_of
from services.workspace.config import WorkspaceSettings
from services.workspace.rendering import page
from services.workspace.sessions import SignedIn
from shared.config import BaseDoisoatSettings
from shared.db import unit_of_work

log = logging.getLogger("doisoat.workspace")

router = APIRouter(include_in_schema=False)
WHO_LIMIT = 320
FORM_COOKIE = "doisoat_form"


def link_of(settings: BaseDoisoatSettings, token: str) -> str:
    """``{DOISOAT_PUBLIC_BASE_URL}/sign-in/{token}`` (contract §6), wherever the link is made."""
    return f"{settings.public_base_url.rstrip('/')}/sign-in/{token}"


def _settings(request: Request) -> WorkspaceSettings:
    settings: WorkspaceSettings = request.app.state.workspace_settings
    return settings


def _client(request: Request) -> str | None:
    return request.client.host[:64] if request.client else None


def _with_form_token(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A page with a form posted before any session: its CSRF token is a double-submit cookie."""
    token = request.cookies.get(FORM_COOKIE) or sessions.new_token()
    response = page(request, template, {**context, "form_token": token}, status_code=status_code)
    response.set_cookie(
        FORM_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_settings(request).secure_cookies,
        path="/sign-in",
    )
    return response


def _form_token_checked(request: Request, sent: str) -> None:
    kept = request.cookies.get(FORM_COOKIE)
    if not kept or not sent or not hmac.compare_digest(kept, sent):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Biểu mẫu đã cũ, hãy tải lại trang rồi thử lại. / Form token missing or invalid.",
        )


@router.get("/sign-in")
async def sign_in_form(request: Request) -> HTMLResponse:
    return _with_form_token(
        request, "sign_in.html.j2", {"sent": False, "email_on": _email_on(request)}
    )


def _email_on(request: Request) -> bool:
    return _settings(request).email is not None


@router.post("/sign-in")
async def request_link(
    request: Request,
    who: Annotated[str, Form(max_length=WHO_LIMIT)] = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """Send a link to the officer's email; the answer never says whether they exist."""
    _form_token_checked(request, csrf_token)
    settings = _settings(request)
    now = request.app.state.clock()
    async with unit_of_work(request.app.state.engine, "workspace_sign_in_request") as connection:
        officer = await sessions.find_officer(connection, who)
        allowed = (
            officer is not None
            and officer.email
            and (
                await sessions.links_requested_since(
                    connection, officer.account, now - timedelta(hours=1)
                )
                < settings.sign_in_requests_per_hour
            )
        )
        token = (
            await sessions.create_link(
                connection, officer.account, now=now, requested_from=_client(request)
            )
            if allowed and officer is not None
            else None
        )
    if token is not None and officer is not None and officer.email:
        await _send_link(settings, officer.account, officer.full_name, officer.email, token)
    return _with_form_token(
        request, "sign_in.html.j2", {"sent": True, "email_on": _email_on(request)}
    )


async def _send_link(
    settings: WorkspaceSettings, account: str, full_name: str, email: str, token: str
) -> None:
    email_settings = settings.email
    if email_settings is None:
        return
    link = link_of(settings, token)
    channel = EmailChannel(email_settings)
    try:
        result = await channel.send(
            Message(
                notification_id=f"sign-in-{token[:16]}",
                recipient=Recipient(account, full_name, email, None, None),
                subject="[doisoat] Liên kết đăng nhập (dùng một lần, trong 15 phút)",
                text=(
                    f"Kính gửi {full_name},\n\nĐể đăng nhập doisoat, mở liên kết dưới đây rồi bấm "
                    f"nút «Đăng nhập». Liên kết chỉ dùng được một lần, trong 15 phút:\n\n{link}\n\n"
                    "Nếu anh/chị không yêu cầu, hãy bỏ qua thư này."
                ),
                html=None,
                template_data={},
            )
        )
    finally:
        await channel.aclose()
    if result.outcome is not SendOutcome.SENT:
        log.warning("sign-in link not sent", extra={"account": account, "detail": result.detail})


@router.get("/sign-in/{token}")
async def confirm(request: Request, token: str) -> HTMLResponse:
    async with unit_of_work(request.app.state.engine, "workspace_sign_in_peek") as connection:
        state, officer = await sessions.link_state(connection, token, now=request.app.state.clock())
    return _with_form_token(
        request,
        "sign_in_confirm.html.j2",
        {"state": state, "officer": officer, "token": token},
        status_code=200 if state == "valid" else 410 if state in ("used", "expired") else 404,
    )


@router.post("/sign-in/{token}", response_model=None)
async def use(
    request: Request, token: str, csrf_token: Annotated[str, Form(max_length=64)] = ""
) -> HTMLResponse | RedirectResponse:
    _form_token_checked(request, csrf_token)
    settings = _settings(request)
    async with unit_of_work(request.app.state.engine, "workspace_sign_in") as connection:
        state, officer, session = await sessions.use_link(
            connection,
            token,
            now=request.app.state.clock(),
            lifetime=settings.session_lifetime,
            client_address=_client(request),
        )
    if session is None or officer is None:
        return _with_form_token(
            request,
            "sign_in_confirm.html.j2",
            {"state": state, "officer": officer, "token": token},
            status_code=410 if state in ("used", "expired") else 404,
        )
    request.state.principal = principal_of(SignedIn(officer, "", ""))  # for the audit log
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(settings.session_lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, signed_in: OfficerWriting) -> RedirectResponse:
    async with unit_of_work(request.app.state.engine, "workspace_sign_out") as connection:
        await sessions.end_session(
            connection, signed_in.session_hash, now=request.app.state.clock()
        )
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
