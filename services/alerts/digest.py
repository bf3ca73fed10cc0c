"""The weekly digest for leaders: late, stalled, returned-but-open, rewritten and mismatched
dossiers, the KPIs, who the late dossiers' time went to (contract §7) and the month's forecast.

Planned once per (unit, ISO week) — the ``digests`` table's unique key lets any number of
alerts processes race for it — as outbox rows to the unit's leaders, sent by the dispatcher.

Periods: the KPIs and the late-dossier accountability cover the week before the digest (the
dossiers received Monday..Sunday, measured at the week's end, as the board shows that week);
the forecast covers this month up to today, as the board's "Dự báo tháng này" and
``GET /api/v1/kpis`` without dates.
Every figure is computed by the reconciler's services, so the digest says what the API says.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.alerts import officers, routing
from services.reconciler.kpis import review
from services.reconciler.kpis.forecast import Forecast
from services.reconciler.kpis.formulas import Period, month_so_far
from services.reconciler.kpis.service import Scope, holder_names, tally_scope
from services.reconciler.lateness.service import GroupBy, lateness_by
from services.reconciler.queries import covered_codes
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.db import insert_for
from shared.directory import Directory, OfficerRecord, load_directory
from shared.models import Digest, Discrepancy, Dossier, Notification, Officer
from shared.vocabulary import Kind, local_iso

SECTIONS = {
    "late": ("OVERDUE_NO_APOLOGY",),
    "stalled": ("STALLED",),
    "returned_open": ("RETURNED_BUT_OPEN",),
    "mismatches": ("TIME_MISMATCH", "STATUS_CONFLICT", "NOT_IN_SYSTEM"),
}
MAX_LISTED = 50  # rows kept per list in a digest's content; the rest are only counted
# The accountability tables of the digest: content key → how the late dossiers are grouped.
LATENESS_GROUPS: Final[Mapping[str, GroupBy]] = {
    "units": "unit",
    "officers": "officer",
    "fields": "field",
}
# The forecast's units, those whose month is still in play first (contract: forecast outlook).
OUTLOOK_ORDER: Final[Mapping[str, int]] = {"at_risk": 0, "under": 1, "safe": 2}

NotBefore = Callable[[datetime, str], datetime]  # (created, channel) -> earliest send moment


def digest_moment(now: datetime, *, weekday: int, at: time) -> datetime:
    """This ISO week's digest moment (local time), e.g. Monday 07:30."""
    local = now.astimezone(VN_TZ)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday + timedelta(days=weekday), at, tzinfo=VN_TZ)


def week_label(moment: datetime) -> str:
    year, week, _ = moment.astimezone(VN_TZ).isocalendar()
    return f"{year}-W{week:02d}"


def previous_week(moment: datetime) -> tuple[date, date]:
    local = moment.astimezone(VN_TZ).date()
    monday = local - timedelta(days=local.weekday())
    return monday - timedelta(days=7), monday - timedelta(days=1)


async def _leaders_by_unit(
    connection: AsyncConnection, directory: Directory
) -> dict[str, list[OfficerRecord]]:
    """Active leaders by the unit that answers for theirs today (after mergers)."""
    leaders: dict[str, list[OfficerRecord]] = {}
    active_leaders = (Officer.role == "leader", Officer.active.is_(True))
    for contact in await officers.load_contacts(connection, *active_leaders):
        unit = directory.answering_unit(contact.unit_code)
        if unit is not None:
            leaders.setdefault(unit, []).append(contact)
    return leaders


async def _claim(connection: AsyncConnection, unit: str, week: str, now: datetime) -> bool:
    claimed = await connection.execute(
        insert_for(connection, Digest)
        .values(unit_code=unit, week=week, created_at=now)
        .on_conflict_do_nothing(index_elements=["unit_code", "week"])
        .returning(Digest.id)
    )
    return claimed.first() is not None


def _period(period: Period) -> dict[str, str]:
    return {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()}


async def _sections(
    connection: AsyncConnection, codes: Collection[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """The unresolved discrepancies of the unit's dossiers, by section, oldest first."""
    rows = await connection.execute(
        select(
            Discrepancy.dossier_code,
            Discrepancy.kind,
            Discrepancy.since,
            Dossier.procedure_name,
            Dossier.due_at,
            Dossier.status,
            Dossier.snapshot_emitted_at,
            Dossier.latest_step_at,
        )
        .outerjoin(Dossier, Dossier.code == Discrepancy.dossier_code)
        .where(Discrepancy.status != "resolved", Discrepancy.unit_code.in_(codes))
        .order_by(Discrepancy.since)
    )
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
    totals = dict.fromkeys(SECTIONS, 0)
    for row in rows.all():
        for name, kinds in SECTIONS.items():
            if row.kind in kinds:
                totals[name] += 1
                if len(sections[name]) < MAX_LISTED:
                    activity = [m for m in (row.snapshot_emitted_at, row.latest_step_at) if m]
                    sections[name].append(
                        {
                            "dossier_code": row.dossier_code,
                            "kind": row.kind,
                            "procedure_name": row.procedure_name,
                            "status": row.status,
                            "due_at": local_iso(row.due_at),
                            "since": local_iso(row.since),
                            "last_activity_at": local_iso(max(activity, default=None)),
                        }
                    )
    return sections, totals


async def _rewritten(
    connection: AsyncConnection, codes: Collection[str]
) -> tuple[list[dict[str, Any]], int]:
    """Unresolved ``DATES_REWRITTEN`` of the unit's dossiers: which date moved, from what to
    what and when each was seen (the finding's details), oldest first; and how many."""
    rows = await connection.execute(
        select(
            Discrepancy.dossier_code,
            Discrepancy.status,
            Discrepancy.since,
            Discrepancy.details,
            Dossier.procedure_name,
        )
        .outerjoin(Dossier, Dossier.code == Discrepancy.dossier_code)
        .where(
            Discrepancy.kind == Kind.DATES_REWRITTEN.value,
            Discrepancy.status != "resolved",
            Discrepancy.unit_code.in_(codes),
        )
        .order_by(Discrepancy.since, Discrepancy.dossier_code)
    )
    found = rows.all()
    listed = []
    for row in found[:MAX_LISTED]:
        details: Mapping[str, Any] = row.details if isinstance(row.details, Mapping) else {}
        listed.append(
            {
                "dossier_code": row.dossier_code,
                "procedure_name": row.procedure_name,
                "status": row.status,
                "since": local_iso(row.since),
                **{
                    key: details.get(key)
                    for key in ("field", "before", "before_seen_at", "after", "after_seen_at")
                },
            }
        )
    return listed, len(found)


async def _lateness(
    connection: AsyncConnection,
    *,
    scope: Scope,
    period: Period,
    now: datetime,
    calendar: WorkingCalendar,
) -> dict[str, Any]:
    """The period's late dossiers, measured at ``now``, grouped by unit, officer and field
    (contract §7; the board's tables), most overrun first, the first :data:`MAX_LISTED` kept.
    Each group's ``label`` is the service's: the unit's or officer's name from the directory."""
    found: dict[str, Any] = {"period": _period(period), "total": 0}
    for name, group_by in LATENESS_GROUPS.items():
        report = await lateness_by(
            connection,
            period=period,
            units=scope.source_codes(),
            group_by=group_by,
            now=now,
            calendar=calendar,
            directory=scope.directory,
        )
        found["total"] = report.total
        found[name] = {"count": len(report.items), "items": report.items[:MAX_LISTED]}
        if group_by == "unit":  # each late dossier counts in one unit: the sums are totals
            for figure in ("overrun_working_hours", "without_apology", "late_apology"):
                found[figure] = sum(item[figure] for item in report.items)
    found["overrun_working_hours"] = round(found["overrun_working_hours"], 2)
    return found


def _forecast(
    forecasts: Mapping[str, Forecast], period: Period, names: Mapping[str, str]
) -> dict[str, Any]:
    """Each unit's month ahead, the units still in play first, then the lowest worst case;
    units with nothing to count are left out. Holders are accounts here, named later."""
    units: list[dict[str, Any]] = []
    for unit, found in forecasts.items():
        if found.outlook == "empty":
            continue
        units.append(
            {
                "unit_code": unit,
                "unit_name": names.get(unit),
                "on_time_pct": found.on_time_pct,
                "on_time_pct_best": found.on_time_pct_best,
                "on_time_pct_worst": found.on_time_pct_worst,
                "outlook": found.outlook,
                "undecided": found.undecided,
                "deciding_count": len(found.deciding),
                "deciding": [
                    {
                        "dossier_code": each.dossier_code,
                        "due_at": local_iso(each.due_at),
                        "responsible": each.responsible,
                    }
                    for each in found.deciding[:MAX_LISTED]
                ],
            }
        )
    units.sort(
        key=lambda u: (OUTLOOK_ORDER.get(u["outlook"], 9), u["on_time_pct_worst"], u["unit_code"])
    )
    return {"period": _period(period), "count": len(units), "units": units[:MAX_LISTED]}


async def _name_holders(connection: AsyncConnection, forecast: dict[str, Any]) -> None:
    """Name the deciding dossiers' holders from the directory (one query)."""
    holders = {d["responsible"] for u in forecast["units"] for d in u["deciding"]}
    names = await holder_names(connection, {holder for holder in holders if holder})
    for unit in forecast["units"]:
        for each in unit["deciding"]:
            each["responsible_name"] = names.get(each["responsible"] or "")


async def digest_content(
    connection: AsyncConnection,
    *,
    unit: str,
    directory: Directory,
    now: datetime,
    calendar: WorkingCalendar | None = None,
) -> dict[str, Any]:
    """Everything the digest of ``unit`` (and the units it covers) says, as JSON.

    ``calendar``: the deployment's working-day calendar (the planner's); without one, the
    default office hours and public holidays.
    """
    calendar = calendar or WorkingCalendar()
    codes = covered_codes(directory, [unit])
    sections, totals = await _sections(connection, codes)
    rewritten, totals["rewritten"] = await _rewritten(connection, codes)
    first, last = previous_week(now)
    week, month = Period(first, last, as_of=now), month_so_far(now)
    scope = Scope.of(directory, unit=unit, key_units=None)
    tallies = await tally_scope(connection, scope=scope, periods=(week,), forecast=month)
    kpis = next((item for item in tallies.items() if item["unit_code"] == unit), {})
    kpis.pop("forecast", None)  # the month's forecast has a section of its own
    forecasts = tallies.forecasts()
    lateness = await _lateness(
        connection,
        scope=scope,
        period=week,
        now=min(week.end_at, now),  # the week's end, as the board reads a past week
        calendar=calendar,
    )
    names = await review.unit_names(connection, {unit, *forecasts})
    forecast = _forecast(forecasts, month, names)
    await _name_holders(connection, forecast)
    return {
        "unit_code": unit,
        "unit_name": names.get(unit),
        "week": week_label(now),
        "period": _period(week),
        **sections,
        "rewritten": rewritten,
        "totals": totals,
        "kpis": kpis,
        "lateness": lateness,
        "forecast": forecast,
    }


async def plan_weekly_digests(
    connection: AsyncConnection,
    *,
    now: datetime,
    weekday: int,
    at: time,
    enabled: routing.EnabledChannels,
    not_before: NotBefore,
    calendar: WorkingCalendar | None = None,
) -> int:
    """Plan this week's digests that are due and not yet planned; returns units digested."""
    if now < digest_moment(now, weekday=weekday, at=at):
        return 0
    directory = await load_directory(connection)
    week = week_label(now)
    planned = 0
    for unit, leaders in sorted((await _leaders_by_unit(connection, directory)).items()):
        deliveries = [d for leader in leaders for d in routing.deliveries(leader, enabled)]
        if not deliveries or not await _claim(connection, unit, week, now):
            continue
        content = await digest_content(
            connection, unit=unit, directory=directory, now=now, calendar=calendar
        )
        await connection.execute(
            insert(Notification), _rows(deliveries, unit, content, now, not_before)
        )
        planned += 1
    return planned


def _rows(
    deliveries: Sequence[routing.Delivery],
    unit: str,
    content: dict[str, Any],
    now: datetime,
    not_before: NotBefore,
) -> list[dict[str, Any]]:
    return [
        {
            "discrepancy_id": None,
            "purpose": "digest",
            "severity": "info",
            "recipient": delivery.recipient,
            "channel": delivery.channel,
            "address": delivery.address,
            "unit_code": unit,
            "content": content,
            "status": "pending",
            "not_before": not_before(now, delivery.channel),
            "attempts": 0,
            "created_at": now,
        }
        for delivery in deliveries
    ]
