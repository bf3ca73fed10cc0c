"""The directory over HTTP (contract §3): units and officers, admin keys only (contract §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from services.reconciler.directory import service
from services.reconciler.directory.schemas import (
    ACCOUNT_PATTERN,
    CODE_PATTERN,
    CSV_COLUMNS,
    CsvFileError,
    CsvTooManyRows,
    ImportRead,
    ImportRowRead,
    OfficerPage,
    OfficerRole,
    OfficerUpdate,
    UnitDetailRead,
    UnitPage,
    UnitRead,
    UnitUpdate,
    read_officer_csv,
)
from shared.auth import Principal
from shared.db import unit_of_work
from shared.directory import OfficerRecord, load_directory
from shared.web.deps import ClockDep, EngineDep, Offset, require_role
from shared.web.limits import csv_request_body, read_csv_upload
from shared.web.openapi import error_responses

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 20_000

router = APIRouter(prefix="/api/v1", tags=["directory"])
AdminKey = Annotated[Principal, Depends(require_role("admin"))]
UnitCode = Annotated[str, Path(min_length=1, max_length=64, pattern=CODE_PATTERN)]
AccountPath = Annotated[str, Path(min_length=1, max_length=128, pattern=ACCOUNT_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=500)]


def _not_found(what: str, key: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"Không có {'đơn vị' if what == 'unit' else 'cán bộ'} {key!r}. / No {what} {key!r}.",
    )


@router.put(
    "/units/{code}",
    response_model=UnitRead,
    responses=error_responses(
        409,
        422,
        descriptions={
            409: "Tạo thành vòng cha–con / It would close a cycle of units",
            422: "Dữ liệu không hợp lệ, hoặc đơn vị là cha hay đơn vị thay thế của chính nó / "
            "Invalid request, or the unit would be its own parent or successor",
        },
    ),
)
async def put_unit(
    code: UnitCode, unit_in: UnitUpdate, principal: AdminKey, engine: EngineDep, clock: ClockDep
) -> UnitRead:
    """Create or replace a unit; its parent and successor need not be loaded yet."""
    if code in (unit_in.parent_code, unit_in.replaced_by):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Đơn vị {code!r} không thể là cha hay đơn vị thay thế của chính nó. / "
            f"Unit {code!r} cannot be its own parent or successor.",
        )
    try:
        async with unit_of_work(engine, "directory_put_unit") as connection:
            unit = await service.put_unit(
                connection,
                code=code,
                name=unit_in.name,
                parent_code=unit_in.parent_code,
                replaced_by=unit_in.replaced_by,
                now=clock(),
            )
    except service.DirectoryCycle as cycle:
        raise HTTPException(status.HTTP_409_CONFLICT, str(cycle)) from cycle
    return UnitRead.of(unit)


@router.get("/units", response_model=UnitPage)
async def list_units(
    principal: AdminKey, engine: EngineDep, limit: Limit = 50, offset: Offset = 0
) -> UnitPage:
    async with unit_of_work(engine, "directory_list_units") as connection:
        units, total = await service.list_units(connection, limit=limit, offset=offset)
    return UnitPage(items=[UnitRead.of(unit) for unit in units], total=total)


@router.get("/units/{code}", response_model=UnitDetailRead, responses=error_responses(404))
async def read_unit(code: str, principal: AdminKey, engine: EngineDep) -> UnitDetailRead:
    """The unit and ``answering_unit``: who answers for its dossiers today (via replaced_by)."""
    async with unit_of_work(engine, "directory_read_unit") as connection:
        unit = await service.get_unit(connection, code)
        if unit is None:
            raise _not_found("unit", code)
        directory = await load_directory(connection)
    return UnitDetailRead.of_unit(unit, answering_unit=directory.answering_unit(code) or code)


@router.put(
    "/officers/{account}",
    response_model=OfficerRecord,
    responses=error_responses(
        422,
        descriptions={
            422: "Dữ liệu không hợp lệ (email, số di động Việt Nam…) / Invalid request: e.g. "
            "not an e-mail address, not a Vietnamese mobile number"
        },
    ),
)
async def put_officer(
    account: AccountPath,
    officer_in: OfficerUpdate,
    principal: AdminKey,
    engine: EngineDep,
    clock: ClockDep,
) -> OfficerRecord:
    """Create or replace an officer; the unit need not be loaded yet."""
    async with unit_of_work(engine, "directory_put_officer") as connection:
        row = await service.put_officer(
            connection, account=account, officer_in=officer_in, now=clock()
        )
    return row.in_local_time()


@router.get("/officers", response_model=OfficerPage)
async def list_officers(
    principal: AdminKey,
    engine: EngineDep,
    unit: str | None = None,
    role: OfficerRole | None = None,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> OfficerPage:
    """Officers by account; ``unit`` is an exact unit code."""
    async with unit_of_work(engine, "directory_list_officers") as connection:
        officers, total = await service.list_officers(
            connection, unit=unit, role=role, active=active, limit=limit, offset=offset
        )
    return OfficerPage(items=[row.in_local_time() for row in officers], total=total)


@router.get("/officers/{account}", response_model=OfficerRecord, responses=error_responses(404))
async def read_officer(account: str, principal: AdminKey, engine: EngineDep) -> OfficerRecord:
    async with unit_of_work(engine, "directory_read_officer") as connection:
        row = await service.officer(connection, account)
    if row is None:
        raise _not_found("officer", account)
    return row.in_local_time()


@router.post(
    "/officers/import",
    response_model=ImportRead,
    responses=error_responses(
        413,
        415,
        422,
        descriptions={
            413: f"Tệp quá {MAX_CSV_BYTES >> 20} MiB hoặc quá {MAX_CSV_ROWS} dòng / A file "
            f"over {MAX_CSV_BYTES >> 20} MiB or more than {MAX_CSV_ROWS} rows",
            422: "Không đọc được tệp CSV (UTF-8, dòng tiêu đề) / Not a UTF-8 CSV with the "
            "header row",
        },
    ),
    openapi_extra={
        "requestBody": csv_request_body(
            "UTF-8 CSV (`,` or `;`), a header naming each column once: "
            + ", ".join(CSV_COLUMNS)
            + "; every row is answered"
        )
    },
)
async def import_officers(
    request: Request, principal: AdminKey, engine: EngineDep, clock: ClockDep
) -> ImportRead:
    """Upsert officers from a CSV; each row is accepted, duplicate or refused with its reason."""
    data = await read_csv_upload(request, MAX_CSV_BYTES)
    try:
        rows = read_officer_csv(data, max_rows=MAX_CSV_ROWS)
    except CsvTooManyRows as error:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(error)) from error
    except CsvFileError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    async with unit_of_work(engine, "directory_import_officers") as connection:
        results = await service.import_officers(connection, rows=rows, now=clock())
    items = [
        ImportRowRead(row=item.row, outcome=item.outcome, reason=item.reason) for item in results
    ]
    return ImportRead(
        accepted=sum(item.outcome == "accepted" for item in items),
        duplicate=sum(item.outcome == "duplicate" for item in items),
        refused=sum(item.outcome == "refused" for item in items),
        rows=items,
    )
