"""``GET /api/v1/dossiers/{code}``: what doisoat knows of one dossier (contract §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from services.reconciler import queries as reconciler_queries
from services.reconciler.dossiers import service as queries
from services.reconciler.lateness import service as lateness_service
from services.reconciler.reports import service as reports_service
from shared.auth import Principal
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.dvcqg import agency_of_dossier_code
from shared.privacy import masked_snapshot
from shared.vocabulary import local_iso
from shared.web.deps import CalendarDep, ClockDep, EngineDep, forbidden_unit, require_role
from shared.web.openapi import error_responses

router = APIRouter(prefix="/api/v1", tags=["dossiers"])
ReaderKey = Annotated[Principal, Depends(require_role("desk", "officer"))]
ROLES_SEEING_PERSONAL_DATA = frozenset({"officer", "admin"})


@router.get(
    "/dossiers/{code}",
    responses=error_responses(
        404, descriptions={404: "doisoat chưa biết hồ sơ này / Unknown dossier"}
    ),
)
async def read_dossier(
    code: str,
    principal: ReaderKey,
    engine: EngineDep,
    clock: ClockDep,
    calendar: CalendarDep,
) -> dict[str, Any]:
    async with unit_of_work(engine, "read_dossier") as connection:
        dossier = await queries.get_dossier(connection, code)
        if dossier is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"Không có hồ sơ {code!r}. / doisoat has never heard of dossier {code!r}.",
            )
        directory = await load_directory(connection)
        system_unit = dossier.unit_code or agency_of_dossier_code(code)
        if not principal.may_act_for(system_unit, directory):
            raise forbidden_unit(system_unit)
        progress = await queries.progress_of(connection, code)
        reports = (await reports_service.reports_for(connection, [code]))[code]
        discrepancies = await reconciler_queries.discrepancies_of(connection, code)
        waits_until = await queries.waiting_for_system(connection, code)
        late = await lateness_service.lateness_of(
            connection, code, now=clock(), calendar=calendar, directory=directory
        )
    snapshot = dossier.snapshot or {}
    if principal.role not in ROLES_SEEING_PERSONAL_DATA:
        snapshot = masked_snapshot(snapshot)
        progress = [masked_snapshot(step) for step in progress]
    return {
        **snapshot,
        "code": dossier.code,
        "status": dossier.status,
        "unit_code": directory.answering_unit(dossier.unit_code),
        "due_at": local_iso(dossier.due_at),
        "responsible": dossier.responsible,
        "last_snapshot_at": local_iso(dossier.snapshot_emitted_at),
        "progress": progress,
        "field_reports": [reports_service.report_read(report) for report in reports],
        # A desk report compared with the system only once the stream has delivered its moment
        # (contract §4): until then nothing opens for it.
        "waiting_for_system": None
        if waits_until is None
        else {"judged_after": local_iso(waits_until)},
        "discrepancies": [
            reconciler_queries.read_model(row, directory).model_dump() for row in discrepancies
        ],
        # Where the time of a late dossier went, and whose step it was (contract §7).
        "lateness": None if late is None else lateness_service.lateness_read(late),
    }
