"""Who is signed in, and may they see this: the pages' dependencies.

A page needs a session (the cookie, looked up server-side each request); a form or an htmx
request also needs the session's CSRF token (a hidden field ``csrf_token`` or the
``X-CSRF-Token`` header htmx sends). The unit scoping is the API's (contract §5): the officer's
unit, its descendants and the codes they replaced, as a :class:`~shared.auth.Principal`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from services.workspace import sessions
from services.workspace.sessions import SignedIn
from shared.auth import Principal
from shared.config import Role
from shared.db import unit_of_work
from shared.directory import Directory, load_directory

COOKIE = "doisoat_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
# The API role whose scoping an officer's pages follow (contract §5 and §6).
API_ROLE: dict[str, Role] = {"desk": "desk", "handler": "officer", "leader": "officer"}


class SignInRequired(Exception):
    """No valid session: the page answers with the way to sign in."""


def principal_of(signed_in: SignedIn) -> Principal:
    officer = signed_in.officer
    return Principal(officer.account, API_ROLE[officer.role], frozenset({officer.unit_code}))


async def current_officer(request: Request) -> SignedIn:
    """The session's officer (checked against the database on every request)."""
    cached: SignedIn | None = getattr(request.state, "signed_in", None)
    if cached is not None:
        return cached
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired
    async with unit_of_work(request.app.state.engine, "workspace_session") as connection:
        found = await sessions.session_of(connection, token, now=request.app.state.clock())
    if found is None:
        raise SignInRequired
    request.state.signed_in = found
    request.state.principal = principal_of(found)  # the audit log records the account
    return found


Officer = Annotated[SignedIn, Depends(current_officer)]


async def checked_write(request: Request, signed_in: Officer) -> SignedIn:
    """A state-changing request of a signed-in officer, with their session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent, signed_in.csrf_token):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Phiên làm việc đã thay đổi, hãy tải lại trang rồi thử lại. / CSRF token missing or "
            "invalid: reload the page and try again.",
        )
    return signed_in


OfficerWriting = Annotated[SignedIn, Depends(checked_write)]


def require_roles(*roles: str) -> Callable[[Request], Coroutine[Any, Any, SignedIn]]:
    """Only officers of ``roles`` (``desk``, ``handler``, ``leader``): anyone else gets 403."""

    async def dependency(request: Request) -> SignedIn:
        signed_in = await current_officer(request)
        if signed_in.officer.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "Trang này không dành cho vai trò của anh/chị. / Not for your role.",
            )
        return signed_in

    return dependency


async def directory_of(request: Request) -> Directory:
    async with unit_of_work(request.app.state.engine, "workspace_directory") as connection:
        return await load_directory(connection)


def forbidden() -> HTTPException:
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        "Anh/chị không có quyền xem hoặc thao tác với đơn vị này. / Outside your units.",
    )
