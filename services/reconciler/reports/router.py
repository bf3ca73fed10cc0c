"""``POST /api/v1/field-reports`` and ``/field-reports/import`` (contract §2): thin HTTP edges.

One report answers 201 (new), 200 (same id, same content: nothing changes) or 409 (same id,
other content). A register import answers every row; a bad row never blocks the good ones, and
all accepted rows are stored in one transaction.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from services.reconciler.reports import csv_import, schemas, service
from services.reconciler.reports.schemas import FieldReportRead, ImportRead
from shared import metrics
from shared.auth import Principal
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.events import EARLIEST_YEAR, LATEST_YEAR, Rejection
from shared.web.deps import ClockDep, EngineDep, forbidden_unit, require_role
from shared.web.limits import MAX_UPLOAD_BYTES, csv_request_body, read_body, read_csv_upload
from shared.web.openapi import error_responses

MAX_REPORT_BYTES: Final = 64 * 1024

router = APIRouter(prefix="/api/v1", tags=["field reports"])
DeskKey = Annotated[Principal, Depends(require_role("desk"))]


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _documented_schema() -> dict[str, Any]:
    return {
        name: value
        for name, value in schemas.contract_schema().items()
        if name not in ("$schema", "$id")
    }


@router.post(
    "/field-reports",
    status_code=status.HTTP_201_CREATED,
    response_model=FieldReportRead,
    responses={
        200: {
            "description": "Đã có, cùng nội dung / already stored with the same content",
            "model": FieldReportRead,
        },
        **error_responses(
            403,
            409,
            413,
            422,
            descriptions={
                403: "Khóa không có quyền với đơn vị / The key does not cover unit_code",
                409: "report_id đã dùng cho nội dung khác / report_id already used with other "
                "content",
                413: "Quá 64 KiB / Body over 64 KiB",
                422: "Không phải báo cáo hợp lệ (hợp đồng §2) / Not a valid field report "
                "(contract §2): not JSON, off the schema, or occurred_at in the future or "
                f"outside the years {EARLIEST_YEAR}–{LATEST_YEAR}",
            },
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _documented_schema()}},
        }
    },
)
async def post_field_report(
    request: Request, response: Response, principal: DeskKey, engine: EngineDep, clock: ClockDep
) -> dict[str, Any]:
    """Record one field report; idempotent on ``report_id``."""
    body = await read_body(request, MAX_REPORT_BYTES)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise _unprocessable(f"JSON không hợp lệ. / Invalid JSON: {error}") from error
    now = clock()
    report = schemas.parse_report(document, now=now)
    if isinstance(report, Rejection):
        metrics.FIELD_REPORTS.labels("api", "refused").inc()
        raise _unprocessable(str(report))
    async with unit_of_work(engine, "http_field_report") as connection:
        directory = await load_directory(connection)
        if not principal.may_act_for(report.unit_code, directory):
            raise forbidden_unit(report.unit_code)
        result = await service.store_report(connection, report, channel="api", now=now)
    metrics.FIELD_REPORTS.labels("api", result.outcome).inc()
    if result.outcome == "accepted":
        request.app.state.on_new_facts()
    if result.outcome == "conflict":
        fields = ", ".join(result.differing)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"report_id {report.report_id!r} đã được dùng cho một báo cáo khác "
            f"(khác ở: {fields}); hãy dùng report_id mới. / report_id {report.report_id!r} "
            f"is already used by a report with other content (differs in: {fields}); "
            "send it under a new report_id.",
        )
    if result.outcome == "duplicate":
        response.status_code = status.HTTP_200_OK
    return service.report_read(result.stored)


@router.post(
    "/field-reports/import",
    response_model=ImportRead,
    responses=error_responses(
        403,
        413,
        415,
        422,
        descriptions={
            403: "Không phải khóa một cửa hay quản trị / Not a desk or admin key",
            413: "Quá 10 MiB hoặc quá 50.000 dòng / Body over 10 MiB or more than 50,000 rows",
            422: "Không phải sổ CSV UTF-8 hoặc thiếu cột bắt buộc / Not a UTF-8 CSV register, "
            "or a required column is missing",
        },
    ),
    openapi_extra={
        "requestBody": csv_request_body(
            "Sổ theo dõi hồ sơ / the desk's register, a UTF-8 CSV (contract §2); every row "
            "is answered"
        )
    },
)
async def import_field_reports(
    request: Request, principal: DeskKey, engine: EngineDep, clock: ClockDep
) -> ImportRead:
    """Import the desk's register (Sổ theo dõi hồ sơ); every row is answered."""
    data = await read_csv_upload(request, MAX_UPLOAD_BYTES)
    now = clock()
    try:
        rows = await asyncio.to_thread(csv_import.parse_register, data, now=now)
    except csv_import.RegisterTooLarge as error:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(error)) from error
    except csv_import.RegisterError as error:
        raise _unprocessable(str(error)) from error
    async with unit_of_work(engine, "http_field_report_import") as connection:
        directory = await load_directory(connection)
        answer = await service.import_register(
            connection, rows, principal=principal, directory=directory, now=now
        )
    for outcome in ("accepted", "duplicate", "refused"):
        metrics.FIELD_REPORTS.labels("csv", outcome).inc(getattr(answer, outcome))
    if answer.accepted:
        request.app.state.on_new_facts()
    return answer
