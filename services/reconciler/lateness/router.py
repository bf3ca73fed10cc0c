"""``GET /api/v1/lateness``: the period's late dossiers, grouped by who answers (contract §7).

Read as ``GET /api/v1/kpis`` is (same keys, units and period), so the late dossiers here are the
ones the on-time share counted as late. Extension beyond the contract: ``period`` (the dates
used, useful when ``from``/``to`` were left out) at the top level of the answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from services.reconciler.kpis.days import Day, PeriodRead, asked_period, asked_scope
from services.reconciler.kpis.formulas import MAX_PERIOD_DAYS
from services.reconciler.lateness import service
from shared.auth import Principal
from shared.db import unit_of_work
from shared.events import EARLIEST_YEAR, LATEST_YEAR
from shared.web.deps import CalendarDep, ClockDep, EngineDep, require_role
from shared.web.openapi import documented_as, error_responses

router = APIRouter(prefix="/api/v1", tags=["lateness"])
OfficerKey = Annotated[Principal, Depends(require_role("officer"))]
DEFAULT_GROUPING: service.GroupBy = "unit"
# Read by _grouping (its own message on an unknown value); an empty value is the default.
Grouping = Annotated[
    str | None,
    Query(description="unit (mặc định / default), officer, field (TenLinhVuc) or procedure"),
    documented_as(
        {"type": "string", "enum": list(service.GROUPINGS), "default": DEFAULT_GROUPING},
        empty_is_absent=True,
    ),
]


class LatenessItemRead(BaseModel):
    """One group: its late dossiers and the working time they overran."""

    key: str = Field(
        description="mã đơn vị, tài khoản cán bộ, tên lĩnh vực hoặc mã thủ tục / the unit "
        "code, the officer's account, the field's name or the procedure's code"
    )
    label: str = Field(
        description="tên hiển thị / what to show: the officer's full name when the directory "
        "knows it, the procedure's name; else the key"
    )
    late_dossiers: int = Field(description="hồ sơ trễ hạn / late dossiers counted here")
    overrun_working_hours: float = Field(
        description="giờ làm việc quá hạn / working hours overrun, charged here (§7)"
    )
    without_apology: int = Field(description="hồ sơ trễ chưa có văn bản xin lỗi")
    late_apology: int = Field(
        description="xin lỗi muộn / late dossiers with an apology made after the due date it "
        "apologises for"
    )


class LatenessPage(BaseModel):
    items: list[LatenessItemRead] = Field(description="most overrun first")
    total: int = Field(
        description="hồ sơ trễ hạn, mỗi hồ sơ đếm một lần / late dossiers, each counted once "
        "(grouped by officer, one dossier may count for several officers)"
    )
    period: PeriodRead


def _grouping(value: str | None) -> service.GroupBy:
    """The asked grouping (``unit`` when left out or empty); 422 for any other word."""
    if not value:
        return DEFAULT_GROUPING
    if value not in service.GROUPINGS:
        allowed = ", ".join(service.GROUPINGS)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Tham số 'group_by' phải là một trong {allowed}, nhận được {value!r}. / "
            f"'group_by' must be one of {allowed}, got {value!r}.",
        )
    return value


@router.get(
    "/lateness",
    response_model=LatenessPage,
    responses=error_responses(
        422,
        descriptions={
            422: f"Ngày không hợp lệ, 'from' sau 'to', kỳ dài quá {MAX_PERIOD_DAYS} ngày hoặc "
            f"'group_by' không hợp lệ / Not a date of {EARLIEST_YEAR}–{LATEST_YEAR}, 'from' "
            f"after 'to', a period longer than {MAX_PERIOD_DAYS} days, or an unknown 'group_by'"
        },
    ),
)
async def read_lateness(
    principal: OfficerKey,
    engine: EngineDep,
    clock: ClockDep,
    calendar: CalendarDep,
    unit: str | None = None,
    from_day: Annotated[Day, Query(alias="from", description="YYYY-MM-DD, inclusive")] = None,
    to_day: Annotated[Day, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
    group_by: Grouping = None,
) -> LatenessPage:
    """Late dossiers received ``from``..``to`` (inclusive, Vietnam dates), grouped.

    ``to`` defaults to today and ``from`` to the first day of ``to``'s month. Without ``unit``
    the answer covers every unit of the key (admin: all units). A dossier is late when it ended
    after its effective due date or is still open past it (measured now); each group carries
    the working hours overrun there (§7), most first.
    """
    grouping = _grouping(group_by)
    now = clock()
    period = asked_period(from_day, to_day, now=now)
    async with unit_of_work(engine, "read_lateness") as connection:
        scope, directory = await asked_scope(connection, principal, unit)
        report = await service.lateness_by(
            connection,
            period=period,
            units=scope.source_codes(),
            group_by=grouping,
            now=now,
            calendar=calendar,
            directory=directory,
        )
    return LatenessPage(
        items=[LatenessItemRead(**item) for item in report.items],
        total=report.total,
        period=PeriodRead(from_=period.first_day, to=period.last_day),
    )
