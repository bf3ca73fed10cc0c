"""``/returns``: the desk's return register (contract §6).

A USB barcode scanner types the dossier code and presses Enter: the form posts, the report is
stored through the reports service (the API's own write path, idempotent by a ``report_id``
derived from the scan) and the input is ready for the next code. Without JavaScript every POST
answers 303 to the register with what happened in the query (Post-Redirect-Get); with htmx the
same POST answers the status line, with the day's list swapped out of band.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.reconciler import queries
from services.reconciler.reports import desk
from services.reconciler.reports.csv_import import KINDS
from services.reconciler.reports.schemas import RegisterEntryRead, dossier_code_problem
from services.workspace.auth import OfficerWriting, directory_of, forbidden, require_roles
from services.workspace.rendering import is_htmx, page
from services.workspace.sessions import SignedIn
from shared import metrics
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.vocabulary import REPORT_KIND_LABELS

router = APIRouter(include_in_schema=False)

TEMPLATE: Final = "returns.html.j2"
Reader = Annotated[SignedIn, Depends(require_roles("desk", "leader"))]
Desk = Annotated[SignedIn, Depends(require_roles("desk"))]
# The register's words for a report's kind (the CSV's ``loai`` values are the form's values).
KIND_NAMES: Final[Mapping[str, str]] = REPORT_KIND_LABELS
LOAI_LABELS: Final[Mapping[str, str]] = {loai: KIND_NAMES[kind] for loai, kind in KINDS.items()}
LOAI_OF_KIND: Final[Mapping[str, str]] = {kind: loai for loai, kind in KINDS.items()}
DEFAULT_LOAI: Final = "tra_ket_qua"
SHOWN_CODE_LIMIT: Final = 80  # of a refused code echoed back to the desk
Tone = Literal["ok", "warn", "error"]


@dataclass(frozen=True, slots=True)
class Notice:
    """The status line's message after a scan or a withdrawal."""

    tone: Tone
    text: str


def _clock_text(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%H:%M")


def _recorded(entry: RegisterEntryRead, *, earlier: bool) -> Notice:
    kind = KIND_NAMES[entry.kind]
    at = _clock_text(entry.occurred_at)
    if earlier:
        return Notice(
            "warn",
            f"Đã ghi nhận trước đó: hồ sơ {entry.dossier_code} — {kind}, đã ghi nhận lúc {at} "
            f"bởi {entry.officer_name}; không ghi thêm.",
        )
    unknown = "" if entry.known else " Lưu ý: hồ sơ chưa có trên hệ thống."
    return Notice(
        "ok" if entry.known else "warn",
        f"Đã ghi nhận: hồ sơ {entry.dossier_code} — {kind}, lúc {at}.{unknown}",
    )


def _withdrawn(dossier_code: str, kind: str) -> Notice:
    return Notice("ok", f"Đã hủy ghi nhận: hồ sơ {dossier_code} — {KIND_NAMES[kind]}.")


async def _units(request: Request, signed_in: SignedIn) -> set[str]:
    return queries.covered_codes(await directory_of(request), [signed_in.officer.unit_code])


async def _render(
    request: Request,
    signed_in: SignedIn,
    *,
    notice: Notice | None,
    loai: str = DEFAULT_LOAI,
    status_code: int = 200,
    list_changed: bool = False,
) -> HTMLResponse:
    """The register, or for htmx the status line (and the day's list when it changed)."""
    officer = signed_in.officer
    now: datetime = request.app.state.clock()
    units = await _units(request, signed_in)
    async with unit_of_work(request.app.state.engine, "workspace_returns") as connection:
        entries = await desk.register_of_day(connection, units=units, now=now)
    context = {
        "notice": notice,
        "entries": entries,
        "withdrawable": {
            entry.report_id
            for entry in entries
            if desk.withdrawable(
                entry, officer=officer.account, unit_code=officer.unit_code, now=now
            )
        },
        "may_record": officer.role == "desk",
        "show_unit": len(units) > 1 and officer.role == "leader",
        "today": now.astimezone(VN_TZ).strftime("%d/%m/%Y"),
        "loai": loai if loai in LOAI_LABELS else DEFAULT_LOAI,
        "loai_labels": LOAI_LABELS,
        "kind_names": KIND_NAMES,
        "clock_text": _clock_text,
        "oob": list_changed and is_htmx(request),
    }
    response = page(request, TEMPLATE, context, block="scan_result", status_code=status_code)
    if list_changed:
        response.headers["HX-Trigger"] = "badges-changed"
    return response


async def _notice_of_query(
    request: Request,
    units: Collection[str],
    *,
    ghi_nhan: str | None,
    truoc: bool,
    loi: str | None,
    da_huy: str | None,
    loai: str,
) -> Notice | None:
    """The status line after a redirect: a report is read back from the database (in the
    officer's units), a code is shown only as checked; the query is never shown as text."""
    if ghi_nhan:
        async with unit_of_work(request.app.state.engine, "workspace_returns_notice") as conn:
            entry = await desk.register_entry(conn, ghi_nhan[:128])
        if entry is not None and entry.unit_code in units:
            return _recorded(entry, earlier=truoc)
    problem = None if loi is None else dossier_code_problem(loi.strip()[:SHOWN_CODE_LIMIT])
    if problem is not None:
        return Notice("error", problem)
    if da_huy and dossier_code_problem(da_huy) is None and loai in KINDS:
        return _withdrawn(da_huy, KINDS[loai])
    return None


@router.get("/returns")
async def register(
    request: Request,
    signed_in: Reader,
    ghi_nhan: str | None = None,
    truoc: str = "",
    loi: str | None = None,
    da_huy: str | None = None,
    loai: str = DEFAULT_LOAI,
) -> HTMLResponse:
    """Today's returns of the officer's units; the desk also gets the scan form."""
    units = await _units(request, signed_in)
    notice = await _notice_of_query(
        request, units, ghi_nhan=ghi_nhan, truoc=truoc == "1", loi=loi, da_huy=da_huy, loai=loai
    )
    return await _render(request, signed_in, notice=notice, loai=loai)


def _back(**query: str) -> RedirectResponse:
    return RedirectResponse(f"/returns?{urlencode(query)}", status_code=303)


@router.post("/returns", response_model=None)
async def record(
    request: Request,
    _: Desk,
    signed_in: OfficerWriting,
    ma_ho_so: Annotated[str, Form()] = "",
    loai: Annotated[str, Form()] = DEFAULT_LOAI,
) -> Response:
    """One scan: a field report by this officer for their unit, now (nothing when refused)."""
    code = ma_ho_so.strip()
    problem = dossier_code_problem(code)
    if problem is None and loai not in KINDS:
        problem = "Loại không hợp lệ: chọn «Trả kết quả» hoặc «Rút hồ sơ». Chưa ghi nhận gì."
    if problem is not None:
        metrics.FIELD_REPORTS.labels("web", "refused").inc()
        if is_htmx(request):
            return await _render(
                request,
                signed_in,
                notice=Notice("error", problem),
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        return _back(loi=code[:SHOWN_CODE_LIMIT], loai=loai)
    officer = signed_in.officer
    now = request.app.state.clock()
    async with unit_of_work(request.app.state.engine, "workspace_return") as connection:
        done = await desk.record_at_desk(
            connection,
            dossier_code=code,
            kind=KINDS[loai],
            officer=officer.account,
            unit_code=officer.unit_code,
            now=now,
        )
    recorded = done.outcome == "recorded"
    metrics.FIELD_REPORTS.labels("web", "accepted" if recorded else "duplicate").inc()
    if recorded:
        request.app.state.on_new_facts()
    if is_htmx(request):
        return await _render(
            request,
            signed_in,
            notice=_recorded(done.entry, earlier=not recorded),
            loai=loai,
            list_changed=True,
        )
    query = {"ghi_nhan": done.entry.report_id, "loai": loai}
    return _back(**query) if recorded else _back(**query, truoc="1")


@router.post("/returns/{dossier_code}/reports/{report_id}/withdraw", response_model=None)
async def withdraw(
    request: Request, dossier_code: str, report_id: str, signed_in: OfficerWriting
) -> Response:
    """Take back a report: only its author, at their unit's desk, within 30 minutes (the audit
    log keeps the POST)."""
    if signed_in.officer.role != "desk":
        raise forbidden()
    now = request.app.state.clock()
    async with unit_of_work(request.app.state.engine, "workspace_return_withdraw") as connection:
        done = await desk.withdraw_at_desk(
            connection,
            report_id=report_id,
            dossier_code=dossier_code,
            officer=signed_in.officer.account,
            unit_code=signed_in.officer.unit_code,
            now=now,
        )
    if done.outcome == "not_found" or done.report is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "Không tìm thấy báo cáo này (có thể đã được hủy). / No such report.",
        )
    if done.outcome == "not_author":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Chỉ cán bộ đã ghi nhận mới hủy được báo cáo này. / Only its author may withdraw it.",
        )
    if done.outcome == "too_late":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Đã quá 30 phút kể từ khi ghi nhận: không hủy được nữa. / Past the 30-minute window.",
        )
    request.app.state.on_new_facts()
    kind = done.report.kind
    if is_htmx(request):
        return await _render(
            request,
            signed_in,
            notice=_withdrawn(done.report.dossier_code, kind),
            list_changed=True,
        )
    return _back(da_huy=done.report.dossier_code, loai=LOAI_OF_KIND[kind])
