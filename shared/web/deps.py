"""FastAPI dependencies: the engine, the clock and the calling key, taken from the app state."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import (
    KEYS_UNAVAILABLE_MESSAGE,
    NO_KEYS_MESSAGE,
    KeyRing,
    KeyStoreUnavailable,
    Principal,
)
from shared.calendar import WorkingCalendar
from shared.clock import Clock
from shared.config import Role


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


MAX_OFFSET = 10_000_000  # far past any real list; bigger numbers overflow SQL integers
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def _calendar(request: Request) -> WorkingCalendar:
    calendar: WorkingCalendar = request.app.state.calendar
    return calendar


EngineDep = Annotated[AsyncEngine, Depends(_engine)]
ClockDep = Annotated[Clock, Depends(_clock)]
CalendarDep = Annotated[WorkingCalendar, Depends(_calendar)]

# Only documents the key in OpenAPI (a ``security`` requirement on every operation that checks
# one, see shared.web.openapi); it never refuses: the dependency below reads the header itself.
API_KEY_SCHEME = HTTPBearer(
    scheme_name="ApiKey",
    description="`Authorization: Bearer <key>`; a key has a role (source, desk, officer, admin) "
    "and, except admin, units (contract §5).",
    auto_error=False,
)
DocumentedBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(API_KEY_SCHEME)]


def require_role(
    *roles: Role,
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Coroutine[Any, Any, Principal]]:
    """Admit keys of ``roles`` (admin always): 503 no keys, 401 bad key, 403 other role.

    The admitted (or refused) principal is left on ``request.state.principal`` for the audit log.
    """

    async def dependency(request: Request, _bearer: DocumentedBearer = None) -> Principal:
        ring: KeyRing = request.app.state.key_ring
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        try:
            principal = (
                await ring.authenticate(token) if scheme.lower() == "bearer" and token else None
            )
            if principal is None and not await ring.configured():
                raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NO_KEYS_MESSAGE)
        except KeyStoreUnavailable:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, KEYS_UNAVAILABLE_MESSAGE
            ) from None
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "Thiếu hoặc sai khóa API. / Missing or unknown API key "
                "(send 'Authorization: Bearer <key>').",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.principal = principal
        if not principal.is_admin and principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Khóa có vai trò {principal.role!r} không được phép thao tác này. / "
                f"A {principal.role!r} key may not do this.",
            )
        return principal

    return dependency


def forbidden_unit(unit_code: str | None) -> HTTPException:
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"Khóa không có quyền với đơn vị {unit_code!r}. / "
        f"The key does not cover unit {unit_code!r}.",
    )
