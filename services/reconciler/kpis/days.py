"""What the period reports (``/api/v1/kpis``, ``/api/v1/lateness``) read of a request alike:
the ``from``/``to`` days and the ``unit`` within the key's.

One reading for every report, so that ``?from=2024-10-1`` is refused with the same words
everywhere, both answer for the same period when the dates are left out (this month so far),
and a unit outside the key is refused the same way.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.formulas import Period, PeriodError, check_period
from services.reconciler.kpis.service import Scope
from shared.auth import Principal
from shared.clock import VN_TZ
from shared.directory import Directory, load_directory
from shared.events import EARLIEST_YEAR, LATEST_YEAR
from shared.web.deps import forbidden_unit
from shared.web.openapi import documented_as

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The years doisoat takes (shared.events): a period outside them overflows UTC moments.
_IN_YEARS = r"^(19|2[0-9])[0-9]{2}-"  # EARLIEST_YEAR 1900 .. LATEST_YEAR 2999
# Read by parse_day (its own message on a bad date); documented as the date it must be.
Day = Annotated[
    str | None,
    documented_as({"type": "string", "format": "date", "pattern": _IN_YEARS}, empty_is_absent=True),
]


class PeriodRead(BaseModel):
    """The days a report covers (useful when ``from``/``to`` were left out)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


def parse_day(value: str | None, name: str) -> date | None:
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


def asked_period(from_day: str | None, to_day: str | None, *, now: datetime) -> Period:
    """The period of ``from``..``to`` (inclusive): ``to`` defaults to today (Vietnam) and
    ``from`` to the first day of ``to``'s month; 422 for a bad date or period."""
    last_day = parse_day(to_day, "to") or now.astimezone(VN_TZ).date()
    first_day = parse_day(from_day, "from") or last_day.replace(day=1)
    try:
        check_period(first_day, last_day)
    except PeriodError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    return Period(first_day, last_day, as_of=now)


async def asked_scope(
    connection: AsyncConnection, principal: Principal, unit: str | None
) -> tuple[Scope, Directory]:
    """The units a report covers: ``unit`` (blank: every unit of the key; admin: all) and what
    it replaced; 403 for a unit outside the key."""
    unit = unit.strip() if unit and unit.strip() else None
    directory = await load_directory(connection)
    if unit is not None and not principal.may_act_for(unit, directory):
        raise forbidden_unit(unit)
    key_units = None if principal.is_admin else principal.units
    return Scope.of(directory, unit=unit, key_units=key_units), directory
