"""``GET /api/v1/kpis``: the QĐ 766 indicators per unit for a period (contract §4).

Extensions beyond the contract: ``targets`` (98, 50, 80, 100) and ``period`` (the dates used,
useful when ``from``/``to`` were left out) at the top level of the answer.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from services.reconciler.kpis import service
from services.reconciler.kpis.formulas import Period, PeriodError, check_period
from shared.auth import Principal
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.vocabulary import KPI_TARGETS
from shared.web.deps import ClockDep, EngineDep, forbidden_unit, require_role

router = APIRouter(prefix="/api/v1", tags=["kpis"])
OfficerKey = Annotated[Principal, Depends(require_role("officer"))]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class KpiItemRead(BaseModel):
    unit_code: str
    received: int
    on_time_pct: float | None
    online_pct: float | None
    digitised_pct: float | None
    in_system_pct: float | None
    without_due_date: int
    active_discrepancies: dict[str, int]


class KpiTargets(BaseModel):
    on_time_pct: int
    online_pct: int
    digitised_pct: int
    in_system_pct: int


class KpiPeriodRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class KpiPage(BaseModel):
    items: list[KpiItemRead]
    targets: KpiTargets
    period: KpiPeriodRead


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if not _DATE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Tham số {name!r} phải là ngày dạng YYYY-MM-DD, nhận được {value!r}. / "
            f"{name!r} must be a date YYYY-MM-DD, got {value!r}.",
        ) from None


@router.get("/kpis", response_model=KpiPage)
async def read_kpis(
    principal: OfficerKey,
    engine: EngineDep,
    clock: ClockDep,
    unit: str | None = None,
    from_day: Annotated[str | None, Query(alias="from")] = None,
    to_day: Annotated[str | None, Query(alias="to")] = None,
) -> KpiPage:
    """KPIs per unit for the dossiers received ``from``..``to`` (inclusive, Vietnam dates).

    ``to`` defaults to today and ``from`` to the first day of ``to``'s month. Without ``unit``
    the answer covers every unit of the key (admin: all units).
    """
    now = clock()
    last_day = _parse_day(to_day, "to") or now.astimezone(VN_TZ).date()
    first_day = _parse_day(from_day, "from") or last_day.replace(day=1)
    try:
        check_period(first_day, last_day)
    except PeriodError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    unit = unit.strip() if unit and unit.strip() else None
    period = Period(first_day, last_day, as_of=now)
    async with unit_of_work(engine, "read_kpis") as connection:
        directory = await load_directory(connection)
        if unit is not None and not principal.may_act_for(unit, directory):
            raise forbidden_unit(unit)
        scope = service.Scope.of(
            directory, unit=unit, key_units=None if principal.is_admin else principal.units
        )
        items = await service.unit_kpis(connection, scope=scope, period=period)
    return KpiPage(
        items=[KpiItemRead(**item) for item in items],
        targets=KpiTargets(**KPI_TARGETS),
        period=KpiPeriodRead(from_=first_day, to=last_day),
    )
