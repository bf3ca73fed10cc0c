"""``/inbox``: the discrepancies an officer may see (contract §6).

Counts per status as tabs, filters (kind, severity, unit, field) and sorting as query parameters
so a view can be bookmarked and works without JavaScript, pages of 50, and acknowledging one or
many with a note. The scope is the API's (contract §5): the officer's unit, its descendants and
the codes they replaced; a unit or a discrepancy outside it is 403, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler import queries
from services.workspace.auth import (
    Officer,
    OfficerWriting,
    forbidden,
    principal_of,
    require_roles,
)
from services.workspace.rendering import is_htmx, page
from services.workspace.sessions import SignedIn
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.vocabulary import DISCREPANCY_STATUS_LABELS, KIND_LABELS, SEVERITY_LABELS

router = APIRouter(include_in_schema=False)

TEMPLATE = "inbox.html.j2"
PAGE_SIZE = queries.INBOX_PAGE_SIZE
NOTE_LIMIT = 500
MAX_SELECTED = 200  # four pages' worth: more is not a person ticking boxes
MAX_ID_DIGITS = 18  # ids are 64-bit integers
TEXT_LIMIT = 200  # a unit code or a field name in the query string
# Clicking a column sorts it this way first (newest, most severe first; codes A→Z).
FIRST_ORDER = {
    "opened_at": "desc",
    "since": "desc",
    "severity": "desc",
    "dossier": "asc",
    "unit": "asc",
}
# Who may acknowledge: the API's officers (contract §5); the desk reads the inbox only.
ACKNOWLEDGING_ROLES = ("handler", "leader")
MayAcknowledge = Annotated[SignedIn, Depends(require_roles(*ACKNOWLEDGING_ROLES))]


@dataclass(frozen=True, slots=True)
class InboxView:
    """What the officer is looking at: the tab, filters, sorting and page, as query parameters."""

    status: str = "open"
    kind: str = ""
    severity: str = ""
    unit: str = ""
    field: str = ""
    sort: str = "opened_at"
    order: str = "desc"
    page: int = 1

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> InboxView:
        """From a query string or a form; an unknown value falls back to showing everything."""

        def text(name: str) -> str:
            value = values.get(name)
            return value.strip()[:TEXT_LIMIT] if isinstance(value, str) else ""

        number = text("page")
        sort = text("sort")
        return cls(
            status=text("status") if text("status") in DISCREPANCY_STATUS_LABELS else "open",
            kind=text("kind") if text("kind") in KIND_LABELS else "",
            severity=text("severity") if text("severity") in SEVERITY_LABELS else "",
            unit=text("unit"),
            field=text("field"),
            sort=sort if sort in queries.INBOX_SORTS else "opened_at",
            order=text("order") if text("order") in ("asc", "desc") else "desc",
            page=int(number) if number.isdecimal() and 0 < len(number) < 7 else 1,
        )

    def query(self) -> list[tuple[str, str]]:
        """The parameters that differ from the default view, in a stable order."""
        default = InboxView()
        return [
            (name, str(getattr(self, name)))
            for name in ("status", "kind", "severity", "unit", "field", "sort", "order", "page")
            if getattr(self, name) != getattr(default, name)
        ]

    def url(self) -> str:
        query = urlencode(self.query())
        return f"/inbox?{query}" if query else "/inbox"

    def tab(self, status: str) -> str:
        return replace(self, status=status, page=1).url()

    def sorted_by(self, column: str) -> str:
        """The same column again turns the order round; another starts at its first order."""
        flipped = "asc" if self.order == "desc" else "desc"
        order = flipped if column == self.sort else FIRST_ORDER[column]
        return replace(self, sort=column, order=order, page=1).url()

    def cleared(self) -> str:
        """The same tab and sorting, every filter off."""
        return InboxView(status=self.status, sort=self.sort, order=self.order).url()

    def at_page(self, number: int) -> str:
        return replace(self, page=number).url()


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One discrepancy as a line of the inbox (no personal data of the applicant)."""

    id: int
    kind: str
    severity: str
    status: str
    dossier_code: str
    procedure_name: str | None
    unit_code: str | None
    unit_name: str | None
    holder: str | None
    since: datetime
    opened_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


@dataclass(frozen=True, slots=True)
class Notice:
    text: str
    tone: str = "ok"  # ok | error


@router.get("/inbox")
async def inbox(request: Request, signed_in: Officer) -> HTMLResponse:
    view = InboxView.of(request.query_params)
    done = _count(request.query_params.get("da_xac_nhan"))
    skipped = _count(request.query_params.get("bo_qua"))
    notice = _acknowledged(done, skipped) if done is not None else None
    context = await _listing(request, signed_in, view)
    return page(request, TEMPLATE, {**context, "notice": notice}, block=_block(request))


@router.post("/inbox/ack", response_model=None)
async def acknowledge(request: Request, signed_in: OfficerWriting, _: MayAcknowledge) -> Response:
    """Acknowledge the ticked discrepancies, all or none: one outside the scope is 403."""
    form = await request.form()
    view = InboxView.of(form)
    note = str(form.get("ghi_chu") or "").strip()
    chosen = [value for value in form.getlist("id") if isinstance(value, str)]
    problem = (
        "Hãy chọn ít nhất một sai lệch để xác nhận."
        if not chosen
        else f"Chỉ xác nhận được tối đa {MAX_SELECTED} sai lệch một lần."
        if len(chosen) > MAX_SELECTED
        else f"Ghi chú dài quá {NOTE_LIMIT} ký tự."
        if len(note) > NOTE_LIMIT
        else None
    )
    if problem is not None:
        return await _refused(request, signed_in, view, Notice(problem, "error"), note)
    ids = {int(value) for value in chosen if value.isdecimal() and len(value) <= MAX_ID_DIGITS}
    officer = signed_in.officer
    async with unit_of_work(request.app.state.engine, "workspace_acknowledge") as connection:
        rows = await queries.discrepancies_by_ids(connection, ids, for_update=True)
        if len(rows) != len(set(chosen)):  # an unknown id, or one that names none
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                "Không tìm thấy sai lệch đã chọn; hãy tải lại trang. / No such discrepancy.",
            )
        directory = await load_directory(connection)
        principal = principal_of(signed_in)
        in_scope = [row.unit_code for row in rows] + ([view.unit] if view.unit else [])
        if not all(principal.may_act_for(code, directory) for code in in_scope):
            raise forbidden()  # the view shown afterwards must be the officer's too
        done = sum(row.status == "open" for row in rows)  # locked: exact
        skipped = len(rows) - done
        await queries.acknowledge(
            connection,
            *rows,
            account=officer.account,
            now=request.app.state.clock(),
            note=note or None,
        )
    if not is_htmx(request):
        back = urlencode([*view.query(), ("da_xac_nhan", str(done)), ("bo_qua", str(skipped))])
        return RedirectResponse(f"/inbox?{back}", status_code=status.HTTP_303_SEE_OTHER)
    context = await _listing(request, signed_in, view)
    answer = page(
        request,
        TEMPLATE,
        {**context, "notice": _acknowledged(done, skipped)},
        block="inbox",
    )
    answer.headers["HX-Trigger"] = "badges-changed"  # the header's counts refresh
    return answer


async def _refused(
    request: Request, signed_in: SignedIn, view: InboxView, notice: Notice, note: str
) -> HTMLResponse:
    """A form that cannot be done: the message in place (htmx), else the page with it."""
    code = status.HTTP_400_BAD_REQUEST
    if is_htmx(request):
        return page(request, TEMPLATE, {"notice": notice}, block="message", status_code=code)
    context = await _listing(request, signed_in, view)
    return page(request, TEMPLATE, {**context, "notice": notice, "note": note}, status_code=code)


async def _listing(request: Request, signed_in: SignedIn, view: InboxView) -> dict[str, Any]:
    """Everything the page shows for ``view``, read in one transaction."""
    officer = signed_in.officer
    async with unit_of_work(request.app.state.engine, "workspace_inbox") as connection:
        directory = await load_directory(connection)
        scope = queries.covered_codes(directory, [officer.unit_code])
        units = scope
        if view.unit:
            if not principal_of(signed_in).may_act_for(view.unit, directory):
                raise forbidden()
            units = queries.covered_codes(directory, [view.unit])
        where = queries.InboxFilter(
            units,
            kinds=[view.kind] if view.kind else (),
            severities=[view.severity] if view.severity else (),
            field=view.field or None,
        )
        found = await _page_of(connection, where, view)
        if found.total and not found.rows:  # past the last page (e.g. after acknowledging it)
            view = replace(view, page=_last_page(found.total))
            found = await _page_of(connection, where, view)
        fields = await queries.inbox_fields(connection, scope)
        names = await queries.unit_names(connection, scope)
    current = sorted(
        (code for code in scope if code in names and directory.replacements.get(code) is None),
        key=lambda code: (names[code], code),
    )
    rows = [
        InboxRow(
            id=row.id,
            kind=row.kind,
            severity=row.severity,
            status=row.status,
            dossier_code=row.dossier_code,
            procedure_name=row.procedure_name,
            unit_code=(unit := directory.answering_unit(row.unit_code)),
            unit_name=names.get(unit or ""),
            holder=row.holder_name or row.responsible,
            since=row.since,
            opened_at=row.opened_at,
            acknowledged_by=row.acknowledged_by,
            acknowledged_at=row.acknowledged_at,
        )
        for row in found.rows
    ]
    first = (view.page - 1) * PAGE_SIZE + 1 if rows else 0
    return {
        "view": view,
        "rows": rows,
        "counts": found.counts,
        "at_least": found.at_least,
        "total": found.total,
        "first": first,
        "last": first + len(rows) - 1 if rows else 0,
        "pages": _last_page(found.total),
        "fields": sorted({*fields, view.field} - {""}),
        "units": [(code, names[code]) for code in current],
        "statuses": list(DISCREPANCY_STATUS_LABELS),
        "note": "",
        "note_limit": NOTE_LIMIT,
        "may_acknowledge": officer.role in ACKNOWLEDGING_ROLES and view.status == "open",
    }


async def _page_of(
    connection: AsyncConnection, where: queries.InboxFilter, view: InboxView
) -> queries.InboxPage:
    return await queries.inbox_page(
        connection,
        where,
        status=view.status,
        sort=view.sort,
        descending=view.order == "desc",
        limit=PAGE_SIZE,
        offset=(view.page - 1) * PAGE_SIZE,
    )


def _last_page(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def _block(request: Request) -> str | None:
    """htmx asks for the inbox block, except when it restores history (it wants the page)."""
    return None if request.headers.get("hx-history-restore-request") == "true" else "inbox"


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdecimal() and len(value) < 4 else None


def _acknowledged(done: int, skipped: int | None) -> Notice:
    text = f"Đã xác nhận {done} sai lệch."
    if skipped:
        text += f" {skipped} sai lệch đã được xác nhận hoặc giải quyết trước đó nên không đổi."
    return Notice(text)
