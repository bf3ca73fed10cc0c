"""``GET /api/v1/kpis``: the QĐ 766 indicators per unit for a period (contract §4).

Extensions beyond the contract: ``targets`` (98, 50, 80, 100) and ``period`` (the dates used,
useful when ``from``/``to`` were left out) at the top level of the answer, and each item's
``forecast`` (:mod:`services.reconciler.kpis.forecast`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.reconciler.kpis import service
from services.reconciler.kpis.days import Day, PeriodRead, asked_period, asked_scope
from services.reconciler.kpis.formulas import MAX_PERIOD_DAYS
from shared.auth import Principal
from shared.db import unit_of_work
from shared.events import EARLIEST_YEAR, LATEST_YEAR
from shared.vocabulary import KPI_TARGETS
from shared.web.deps import ClockDep, EngineDep, require_role
from shared.web.openapi import error_responses

router = APIRouter(prefix="/api/v1", tags=["kpis"])
OfficerKey = Annotated[Principal, Depends(require_role("officer"))]


class DecidingDossierRead(BaseModel):
    """An undecided dossier that, late, takes the unit's month under the on-time target."""

    dossier_code: str
    due_at: str = Field(
        description="hạn trả hiệu lực / effective due date, ISO 8601, +07:00",
        json_schema_extra={"format": "date-time"},
    )
    responsible: str | None = Field(description="người đang giữ hồ sơ / the dossier's holder")


class KpiForecastRead(BaseModel):
    """The month's on-time share if every undecided dossier ends on time (best) or late
    (worst), and the fewest of them, due first, whose lateness takes it under 98 %."""

    on_time_pct_best: float | None = Field(description="0–100; null when nothing to count")
    on_time_pct_worst: float | None = Field(description="0–100; null when nothing to count")
    deciding: list[DecidingDossierRead] = Field(
        description="by due date; empty when under 98 already (best < 98) or safe (worst ≥ 98)"
    )


class KpiItemRead(BaseModel):
    unit_code: str
    received: int
    on_time_pct: float | None
    online_pct: float | None
    digitised_pct: float | None
    in_system_pct: float | None
    without_due_date: int
    active_discrepancies: dict[str, int]
    forecast: KpiForecastRead


class KpiTargets(BaseModel):
    on_time_pct: int
    online_pct: int
    digitised_pct: int
    in_system_pct: int


class KpiPage(BaseModel):
    items: list[KpiItemRead]
    targets: KpiTargets
    period: PeriodRead


@router.get(
    "/kpis",
    response_model=KpiPage,
    responses=error_responses(
        422,
        descriptions={
            422: f"Ngày không hợp lệ, 'from' sau 'to' hoặc kỳ dài quá {MAX_PERIOD_DAYS} ngày / "
            f"Not a date of {EARLIEST_YEAR}–{LATEST_YEAR}, 'from' after 'to', or a period "
            f"longer than {MAX_PERIOD_DAYS} days"
        },
    ),
)
async def read_kpis(
    principal: OfficerKey,
    engine: EngineDep,
    clock: ClockDep,
    unit: str | None = None,
    from_day: Annotated[Day, Query(alias="from", description="YYYY-MM-DD, inclusive")] = None,
    to_day: Annotated[Day, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
) -> KpiPage:
    """KPIs per unit for the dossiers received ``from``..``to`` (inclusive, Vietnam dates).

    ``to`` defaults to today and ``from`` to the first day of ``to``'s month. Without ``unit``
    the answer covers every unit of the key (admin: all units). ``forecast``: how the period's
    on-time share ends up by the end of ``to``'s month if the dossiers still undecided all end
    on time or all late, and which of them decide the 98 % target.
    """
    now = clock()
    period = asked_period(from_day, to_day, now=now)
    async with unit_of_work(engine, "read_kpis") as connection:
        scope, _ = await asked_scope(connection, principal, unit)
        items = await service.unit_kpis(connection, scope=scope, period=period, forecast=True)
    return KpiPage(
        items=[KpiItemRead(**item) for item in items],
        targets=KpiTargets(**KPI_TARGETS),
        period=PeriodRead(from_=period.first_day, to=period.last_day),
    )
