"""The weekly digest for leaders: late, stalled, returned-but-open and mismatched dossiers, KPIs.

Planned once per (unit, ISO week) — the ``digests`` table's unique key lets any number of
alerts processes race for it — as outbox rows to the unit's leaders, sent by the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.alerts import officers, routing
from services.reconciler.kpis.formulas import Period
from services.reconciler.kpis.service import Scope, unit_kpis
from services.reconciler.queries import covered_codes
from shared.clock import VN_TZ
from shared.db import insert_for
from shared.directory import Directory, OfficerRecord, load_directory
from shared.models import Digest, Discrepancy, Dossier, Notification, Officer, Unit
from shared.vocabulary import local_iso

SECTIONS = {
    "late": ("OVERDUE_NO_APOLOGY",),
    "stalled": ("STALLED",),
    "returned_open": ("RETURNED_BUT_OPEN",),
    "mismatches": ("TIME_MISMATCH", "STATUS_CONFLICT", "NOT_IN_SYSTEM"),
}
MAX_LISTED = 50

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


async def digest_content(
    connection: AsyncConnection, *, unit: str, directory: Directory, now: datetime
) -> dict[str, Any]:
    codes = covered_codes(directory, [unit])
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
    first, last = previous_week(now)
    items = await unit_kpis(
        connection,
        scope=Scope.of(directory, unit=unit, key_units=None),
        period=Period(first, last, as_of=now),
    )
    kpis = next((item for item in items if item["unit_code"] == unit), {})
    unit_name = (await connection.execute(select(Unit.name).where(Unit.code == unit))).scalar()
    return {
        "unit_code": unit,
        "unit_name": unit_name,
        "week": week_label(now),
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        **sections,
        "totals": totals,
        "kpis": kpis,
    }


async def plan_weekly_digests(
    connection: AsyncConnection,
    *,
    now: datetime,
    weekday: int,
    at: time,
    enabled: routing.EnabledChannels,
    not_before: NotBefore,
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
        content = await digest_content(connection, unit=unit, directory=directory, now=now)
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
