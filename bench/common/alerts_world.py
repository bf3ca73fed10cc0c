"""The alerts benchmark's world: units, their desk officers and handlers, the dossiers and desk
reports that open discrepancies, and the outbox rows of a backlog."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.database import (
    autocommit,
    fetch_all,
    scalar,
)
from bench.common.figures import counts_text
from services.alerts.content import alert_content
from services.reconciler.schedule import mark_for_reconcile
from shared.db import unit_of_work
from shared.models import Dossier, FieldReport, Notification, Officer, Unit

DESK = "motcua"  # desk officers (one per unit) report; no contact: only the handler is told


PROCEDURE = ("1.004227", "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền")


SECRET = "bench-alerts-secret-key-0123456789"


def unit_code(number: int) -> str:
    """The agency code of unit ``number`` (mã định danh shape, province H08)."""
    return f"000.{number // 100:02d}.{number % 100:02d}.H08"


def unit_name(code: str) -> str:
    return f"Chi nhánh Văn phòng đăng ký đất đai {code}"


def desk_of(unit: str) -> str:
    return f"{DESK}.{unit}"


async def seed_directory(engine: AsyncEngine, officers: Sequence[tuple[str, str]]) -> None:
    """Handlers ``(account, unit)`` with an email and a Zalo OA id; their units and desks."""
    now = datetime.now(UTC)
    async with unit_of_work(engine, "bench") as connection:
        known = set((await connection.execute(text("SELECT code FROM units"))).scalars().all())
        units = sorted({unit for _, unit in officers} - known)
        if units:
            await connection.execute(
                insert(Unit),
                [
                    {
                        "code": unit,
                        "name": unit_name(unit),
                        "parent_code": None,
                        "replaced_by": None,
                        "updated_at": now,
                    }
                    for unit in units
                ],
            )
        rows = [
            {
                "account": desk_of(unit),
                "full_name": f"Một cửa {unit}",
                "unit_code": unit,
                "role": "desk",
                "email": None,
                "zalo_user_id": None,
                "phone": None,
                "active": True,
                "updated_at": now,
            }
            for unit in units
        ]
        rows += [
            {
                "account": account,
                "full_name": f"Cán bộ {account}",
                "unit_code": unit,
                "role": "handler",
                "email": f"{account}@tinh.gov.vn",
                "zalo_user_id": f"zuid{account}",
                "phone": None,
                "active": True,
                "updated_at": now,
            }
            for account, unit in officers
        ]
        for start in range(0, len(rows), 5000):
            await connection.execute(insert(Officer), rows[start : start + 5000])
    await autocommit(engine, "ANALYZE")


async def outbox_counts(engine: AsyncEngine) -> dict[tuple[str, str], int]:
    rows = await fetch_all(
        engine, "SELECT channel, status, count(*) FROM notifications GROUP BY 1, 2"
    )
    return {(channel, status): count for channel, status, count in rows}


def describe_outbox(counts: dict[tuple[str, str], int]) -> str:
    return counts_text((f"{c} {s}", n) for (c, s), n in sorted(counts.items())) or "empty"


async def commit_desk_report(engine: AsyncEngine, code: str, handler: str, unit: str) -> None:
    """One desk report arriving for a dossier the system still shows as processing."""
    now = datetime.now(UTC)
    async with unit_of_work(engine, "bench_desk_report") as connection:
        await connection.execute(
            insert(Dossier).values(
                code=code,
                status=4,
                unit_code=unit,
                procedure_code=PROCEDURE[0],
                procedure_name=PROCEDURE[1],
                channel=1,
                digitised=True,
                received_at=now - timedelta(days=5),
                due_at=now + timedelta(days=10),
                snapshot={"MaHoSo": code, "TrangThaiHoSo": 4, "ChuHoSo": "Nguyễn Văn An"},
                snapshot_emitted_at=now - timedelta(days=1),
                snapshot_event_id=f"s-{code}",
                latest_step_at=now - timedelta(days=1),
                responsible=handler,
            )
        )
        await connection.execute(
            insert(FieldReport).values(
                report_id=f"r-{code}",
                dossier_code=code,
                kind="returned",
                occurred_at=now - timedelta(minutes=1),
                officer=desk_of(unit),
                unit_code=unit,
                note=None,
                channel="api",
                received_at=now,
            )
        )
        await mark_for_reconcile(connection, [code], at=now)


async def insert_backlog(
    engine: AsyncEngine, count: int, recipients: int, channel: str, unit_count: int
) -> list[str]:
    """``count`` due pending rows of ``channel`` for ``recipients`` officers (round robin)."""
    accounts = [f"bk{number:06d}" for number in range(recipients)]
    units = [unit_code(number % unit_count) for number in range(recipients)]
    existing = await scalar(engine, "SELECT count(*) FROM officers WHERE account LIKE 'bk%'")
    if existing < recipients:
        await seed_directory(engine, list(zip(accounts, units, strict=True))[existing:])
    created = datetime.now(UTC) - timedelta(minutes=10)
    rows = []
    for number in range(count):
        account, unit = accounts[number % recipients], units[number % recipients]
        content = backlog_content(number, account, unit)
        address = f"{account}@tinh.gov.vn" if channel == "email" else f"zuid{account}"
        rows.append(
            {
                "discrepancy_id": number + 1,
                "purpose": "opened",
                "severity": "critical",
                "recipient": account,
                "channel": channel,
                "address": address,
                "unit_code": unit,
                "content": content,
                "status": "pending",
                "not_before": created,
                "attempts": 0,
                "created_at": created,
            }
        )
    async with unit_of_work(engine, "bench") as connection:
        await connection.execute(text("TRUNCATE notifications"))
        for start in range(0, len(rows), 2000):
            await connection.execute(insert(Notification), rows[start : start + 2000])
    await autocommit(engine, "VACUUM ANALYZE notifications")
    return accounts


def backlog_content(number: int, account: str, unit: str) -> dict[str, Any]:
    """The stored content of one "opened" alert (what the planner would have written)."""
    occurred = datetime.now(UTC) - timedelta(hours=1)
    code = f"{unit}-000000-{number:07d}"
    discrepancy = {
        "id": number + 1,
        "dossier_code": code,
        "kind": "RETURNED_BUT_OPEN",
        "severity": "critical",
        "unit_code": unit,
        "since": occurred,
        "responsible": account,
        "details": {
            "report_id": f"r-{code}",
            "desk_kind": "returned",
            "occurred_at": occurred.isoformat(),
            "officer": desk_of(unit),
            "system_status": 4,
            "grace_minutes": 0,
        },
    }
    dossier = {"procedure_name": PROCEDURE[1], "status": 4, "snapshot": {}}
    content = alert_content(discrepancy=discrepancy, dossier=dossier, unit_name=unit_name(unit))
    content["responsible_name"] = f"Cán bộ {account}"
    return content
