"""``/api/v1/discrepancies``: list with filters, and acknowledge (contract §4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from services.reconciler import queries
from services.reconciler.schemas import DiscrepancyPage, DiscrepancyRead
from shared.auth import Principal
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.vocabulary import Kind
from shared.web.deps import ClockDep, EngineDep, Offset, forbidden_unit, require_role
from shared.web.openapi import comma_separated, documented_as, error_responses

router = APIRouter(prefix="/api/v1", tags=["discrepancies"])
ReaderKey = Annotated[Principal, Depends(require_role("desk", "officer"))]
OfficerKey = Annotated[Principal, Depends(require_role("officer"))]
STATUSES = ("open", "acknowledged", "resolved")
MAX_LIMIT = 500
MAX_ID_DIGITS = 18  # ids are 64-bit integers
KINDS = tuple(kind.value for kind in Kind)
Statuses = Annotated[
    str | None,
    Query(alias="status", description="one or several, comma-separated"),
    comma_separated(STATUSES),
]
Kinds = Annotated[
    str | None, Query(description="one or several, comma-separated"), comma_separated(KINDS)
]
# Anything else names no discrepancy: 404, as for an unknown id.
DiscrepancyId = Annotated[
    str, Path(), documented_as({"type": "string", "pattern": rf"^[0-9]{{1,{MAX_ID_DIGITS}}}$"})
]


def _split(value: str | None, allowed: tuple[str, ...], name: str) -> list[str]:
    """``a,b`` → ``["a", "b"]``, each one of ``allowed`` (an empty value: no filter).

    As documented (an array, comma-separated): an empty item (``a,,b``) is refused; blanks
    around an item are ignored.
    """
    if not value:
        return []
    items = [item.strip() for item in value.split(",")]
    unknown = ", ".join(item or "''" for item in items if item not in allowed)
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Giá trị {name} không hợp lệ: {unknown}. / "
            f"Unknown {name}: {unknown} (allowed: {', '.join(allowed)}).",
        )
    return items


@router.get("/discrepancies", response_model=DiscrepancyPage)
async def list_discrepancies(
    principal: ReaderKey,
    engine: EngineDep,
    status_filter: Statuses = None,
    kind: Kinds = None,
    unit: str | None = None,
    dossier: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Offset = 0,
) -> DiscrepancyPage:
    statuses = _split(status_filter, STATUSES, "status")
    kinds = _split(kind, KINDS, "kind")
    async with unit_of_work(engine, "list_discrepancies") as connection:
        directory = await load_directory(connection)
        units: set[str] | None = None
        if unit is not None:
            if not principal.may_act_for(unit, directory):
                raise forbidden_unit(unit)
            units = queries.covered_codes(directory, [unit])
        elif not principal.is_admin:
            units = queries.covered_codes(directory, principal.units)
        rows, total = await queries.list_discrepancies(
            connection,
            queries.DiscrepancyFilter(statuses, kinds, units, dossier),
            limit=limit,
            offset=offset,
        )
    return DiscrepancyPage(items=[queries.read_model(row, directory) for row in rows], total=total)


@router.post(
    "/discrepancies/{discrepancy_id}/ack",
    response_model=DiscrepancyRead,
    responses=error_responses(
        404, 409, descriptions={409: "Sai lệch đã được giải quyết / Already resolved"}
    ),
)
async def acknowledge(
    discrepancy_id: DiscrepancyId, principal: OfficerKey, engine: EngineDep, clock: ClockDep
) -> DiscrepancyRead:
    async with unit_of_work(engine, "acknowledge") as connection:
        row = None
        if (
            discrepancy_id.isascii()
            and discrepancy_id.isdecimal()
            and (len(discrepancy_id) <= MAX_ID_DIGITS)
        ):
            row = await queries.get_discrepancy(connection, int(discrepancy_id))
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"Không có sai lệch {discrepancy_id}. / No discrepancy {discrepancy_id}.",
            )
        directory = await load_directory(connection)
        if not principal.may_act_for(row.unit_code, directory):
            raise forbidden_unit(directory.answering_unit(row.unit_code))
        if row.status == "resolved":
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "Sai lệch đã được giải quyết, không cần xác nhận. / "
                "The discrepancy is already resolved.",
            )
        await queries.acknowledge(connection, row, account=principal.account, now=clock())
        row = await queries.get_discrepancy(connection, row.id)
    return queries.read_model(row, directory)
