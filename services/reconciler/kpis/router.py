"""``GET /api/v1/kpis``: the QĐ 766 indicators per unit for a period (contract §4).

Extensions beyond the contract: ``targets`` (98, 50, 80, 100) and ``period`` (the dates used,
useful when ``from``/``to`` were left out) at the top level of the answer, and each item's
``forecast`` (:mod:`services.reconciler.kpis.forecast`).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from services.reconciler.kpis import service
from services.reconciler.kpis.formulas import MAX_PERIOD_DAYS, Period, PeriodError, check_period
from shared.auth import Principal
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.events import EARLIEST_YEAR, LATEST_YEAR
from shared.vocabulary import KPI_TARGETS
from shared.web.deps import ClockDep, EngineDep, forbidden_unit, require_role
from shared.web.openapi import documented_as, error_responses

router = APIRouter(prefix="/api/v1", tags=["kpis"])
OfficerKey = Annotated[Principal, Depends(require_role("officer"))]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The years doisoat takes (shared.events): a period outside them overflows UTC moments.
_IN_YEARS = r"^(19|2[0-9])[0-9]{2}-"  # EARLIEST_YEAR 1900 .. LATEST_YEAR 2999
# Read by _parse_day (its own message on a bad date); documented as the date it must be.
Day = Annotated[
    str | None,
    documented_as({"type": "string", "format": "date", "pattern": _IN_YEARS}, empty_is_absent=True),
]


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


class KpiPeriodRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class KpiPage(BaseModel):
    items: list[KpiItemRead]
    targets: KpiTargets
    period: KpiPeriodRead


def _parse_day(value: str | None, name: str) -> date | None:
    """None for a missing or empty parameter (``?to=``), else the date (blank is no date)."""
    if not value:
        return None
    text = value.strip()
    try:
        if not _DATE.match(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Tham số {name!r} phải là ngày dạng YYYY-MM-DD, nhận được {value!r}. / "
            f"{name!r} must be a date YYYY-MM-DD, got {value!r}.",
        ) from None
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Tham số {name!r} phải trong các năm {EARLIEST_YEAR}–{LATEST_YEAR}, nhận được "
            f"{value!r}. / {name!r} must be in the years {EARLIEST_YEAR}–{LATEST_YEAR}, "
            f"got {value!r}.",
        )
    return day


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
        items = await service.unit_kpis(connection, scope=scope, period=period, forecast=True)
    return KpiPage(
        items=[KpiItemRead(**item) for item in items],
        targets=KpiTargets(**KPI_TARGETS),
        period=KpiPeriodRead(from_=first_day, to=last_day),
    )
