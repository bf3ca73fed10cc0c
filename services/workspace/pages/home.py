"""``/`` sends each officer to their page by role; ``/badges`` is the header's counts (htmx)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.reconciler import queries
from services.workspace.auth import Officer, directory_of
from services.workspace.rendering import page
from shared.db import unit_of_work

router = APIRouter(include_in_schema=False)

HOME_BY_ROLE = {"desk": "/returns", "handler": "/inbox", "leader": "/board"}


@router.get("/")
async def home(signed_in: Officer) -> RedirectResponse:
    return RedirectResponse(HOME_BY_ROLE.get(signed_in.officer.role, "/inbox"), status_code=303)


@router.get("/badges")
async def badges(request: Request, signed_in: Officer) -> HTMLResponse:
    """A handler counts what they hold; the desk and leaders count their units."""
    officer = signed_in.officer
    directory = await directory_of(request)
    units = queries.covered_codes(directory, [officer.unit_code])
    async with unit_of_work(request.app.state.engine, "workspace_badges") as connection:
        counts = await queries.badge_counts(
            connection,
            units=units,
            responsible=officer.account if officer.role == "handler" else None,
        )
    return page(request, "_badges.html.j2", {"badges": counts})
