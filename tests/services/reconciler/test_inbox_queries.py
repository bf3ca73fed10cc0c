"""The inbox's queries: what an officer's scope holds, filtered, sorted, paged, acknowledged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler import queries
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.models import Discrepancy, DiscrepancyHistory, Dossier, Officer, Unit
from tests.conftest import TEST_NOW
from tests.factories import BASE_TIME

PROVINCE = "000.00.00.H08"
MY_UNIT = "000.00.12.H08"
OLD_UNIT = "000.00.05.H08"  # merged into MY_UNIT: its codes are MY_UNIT's
CHILD_UNIT = "000.12.12.H08"  # below MY_UNIT
OTHER_UNIT = "000.00.13.H08"
HANDLER = "tranthib.vpdkdd"


async def seed_directory(engine: AsyncEngine) -> None:
    units = [
        (PROVINCE, "UBND tỉnh", None, None),
        (MY_UNIT, "Chi nhánh VPĐKĐĐ", PROVINCE, None),
        (OLD_UNIT, "Huyện cũ", PROVINCE, MY_UNIT),
        (CHILD_UNIT, "Tổ tiếp nhận", MY_UNIT, None),
        (OTHER_UNIT, "UBND xã khác", PROVINCE, None),
    ]
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit),
            [
                {"code": c, "name": n, "parent_code": p, "replaced_by": r, "updated_at": TEST_NOW}
                for c, n, p, r in units
            ],
        )
        await connection.execute(
            insert(Officer).values(
                account=HANDLER,
                full_name="Trần Thị B",
                unit_code=MY_UNIT,
                role="handler",
                email=None,
                zalo_user_id=None,
                phone=None,
                active=True,
                updated_at=TEST_NOW,
            )
        )


async def seed(engine: AsyncEngine, *rows: dict[str, Any]) -> list[int]:
    """One dossier and one discrepancy per row (``procedure`` goes to the dossier, ``field`` to
    both, as the reconciler keeps it)."""
    dossiers, found = [], []
    for number, row in enumerate(rows):
        code = row.get("dossier_code", f"{MY_UNIT}-241021-{number:04d}")
        field = row.pop("field", "Đất đai")
        dossiers.append(
            {
                "code": code,
                "unit_code": row.get("unit_code", MY_UNIT),
                "procedure_name": row.pop("procedure", "Đăng ký biến động"),
                "field_name": field,
            }
        )
        found.append(
            {
                "dossier_code": code,
                "field_name": field,
                "kind": "OVERDUE_NO_APOLOGY",
                "severity": "critical",
                "status": "open",
                "unit_code": MY_UNIT,
                "responsible": HANDLER,
                "reporter": None,
                "since": BASE_TIME + timedelta(minutes=number),
                "opened_at": BASE_TIME + timedelta(minutes=number),
                "details": {},
                "updated_at": BASE_TIME,
                **row,
            }
        )
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(insert(Dossier), dossiers)
        result = await connection.execute(
            insert(Discrepancy).returning(Discrepancy.id, sort_by_parameter_order=True), found
        )
        return [row.id for row in result.all()]


async def scope_of(engine: AsyncEngine, unit: str = MY_UNIT) -> set[str]:
    async with unit_of_work(engine, "test") as connection:
        return queries.covered_codes(await load_directory(connection), [unit])


async def inbox(engine: AsyncEngine, where: queries.InboxFilter, **kw: Any) -> queries.InboxPage:
    async with unit_of_work(engine, "test") as connection:
        return await queries.inbox_page(connection, where, **{"status": "open", **kw})


async def test_the_inbox_counts_each_status_and_lists_only_the_scope(engine: AsyncEngine) -> None:
    await seed_directory(engine)
    ids = await seed(
        engine,
        {},
        {"unit_code": OLD_UNIT},
        {"unit_code": CHILD_UNIT, "responsible": "someone.else"},
        {"status": "acknowledged"},
        {"status": "resolved"},
        {"unit_code": OTHER_UNIT},
    )
    found = await inbox(engine, queries.InboxFilter(await scope_of(engine)))
    assert dict(found.counts) == {"open": 3, "acknowledged": 1, "resolved": 1}
    assert found.total == 3
    assert [row.id for row in found.rows] == [ids[2], ids[1], ids[0]]  # newest first
    first = found.rows[-1]
    assert (first.procedure_name, first.field_name, first.holder_name) == (
        "Đăng ký biến động",
        "Đất đai",
        "Trần Thị B",
    )
    assert found.rows[0].holder_name is None  # an account the directory does not know

    theirs = await inbox(engine, queries.InboxFilter(await scope_of(engine, OTHER_UNIT)))
    assert [row.id for row in theirs.rows] == [ids[5]]


async def test_the_resolved_count_is_capped_unless_its_tab_is_listed(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "RESOLVED_COUNT_CAP", 2)
    await seed_directory(engine)
    await seed(engine, {}, *({"status": "resolved"} for _ in range(3)))
    scope = await scope_of(engine)
    listing_open = await inbox(engine, queries.InboxFilter(scope))
    listing_resolved = await inbox(engine, queries.InboxFilter(scope), status="resolved")
    assert (listing_open.counts["resolved"], listing_open.at_least) == (2, frozenset({"resolved"}))
    assert (listing_resolved.counts["resolved"], listing_resolved.total) == (3, 3)
    assert listing_resolved.at_least == frozenset()
    assert len(listing_resolved.rows) == 3


async def test_filters_by_kind_severity_unit_and_field_combine(engine: AsyncEngine) -> None:
    await seed_directory(engine)
    ids = await seed(
        engine,
        {"field": "Hộ tịch"},
        {"kind": "STALLED", "severity": "warning"},
        {"kind": "STALLED", "severity": "warning", "field": "Hộ tịch"},
        {"kind": "DUE_SOON", "severity": "info", "unit_code": CHILD_UNIT},
        {"field": None, "kind": "NOT_IN_SYSTEM"},
    )
    scope = await scope_of(engine)

    async def listed(**kw: Any) -> list[int]:
        found = await inbox(engine, queries.InboxFilter(scope, **kw), sort="opened_at")
        assert found.total == len(found.rows) == found.counts["open"]
        return sorted(row.id for row in found.rows)

    assert await listed(kinds=["STALLED"]) == [ids[1], ids[2]]
    assert await listed(severities=["critical"]) == [ids[0], ids[4]]
    assert await listed(field="Hộ tịch") == [ids[0], ids[2]]
    assert await listed(field="Hộ tịch", kinds=["STALLED"]) == [ids[2]]
    assert await listed(field="Không có") == []
    child = await inbox(engine, queries.InboxFilter(await scope_of(engine, CHILD_UNIT)))
    assert [row.id for row in child.rows] == [ids[3]]


async def test_every_column_sorts_both_ways(engine: AsyncEngine) -> None:
    await seed_directory(engine)
    ids = await seed(
        engine,
        {"severity": "warning", "dossier_code": "B", "unit_code": CHILD_UNIT},
        {"severity": "info", "dossier_code": "C", "since": BASE_TIME - timedelta(days=2)},
        {"severity": "critical", "dossier_code": "A", "opened_at": BASE_TIME - timedelta(days=1)},
    )
    scope = await scope_of(engine)
    expected = {
        "opened_at": [ids[2], ids[0], ids[1]],
        "since": [ids[1], ids[0], ids[2]],
        "severity": [ids[1], ids[0], ids[2]],  # info, warning, critical
        "dossier": [ids[2], ids[0], ids[1]],
        "unit": [ids[1], ids[2], ids[0]],  # 000.00.12 (id order), then 000.12.12
    }
    for sort, ascending in expected.items():
        up = await inbox(engine, queries.InboxFilter(scope), sort=sort, descending=False)
        down = await inbox(engine, queries.InboxFilter(scope), sort=sort, descending=True)
        assert [row.id for row in up.rows] == ascending, sort
        assert [row.id for row in down.rows] == ascending[::-1], sort


async def test_pages_of_fifty(engine: AsyncEngine) -> None:
    await seed_directory(engine)
    ids = await seed(engine, *({} for _ in range(queries.INBOX_PAGE_SIZE + 3)))
    scope = await scope_of(engine)
    first = await inbox(engine, queries.InboxFilter(scope), sort="opened_at", descending=False)
    second = await inbox(
        engine, queries.InboxFilter(scope), sort="opened_at", descending=False, offset=50
    )
    beyond = await inbox(engine, queries.InboxFilter(scope), offset=100)
    assert [row.id for row in first.rows] == ids[:50]
    assert [row.id for row in second.rows] == ids[50:]
    assert (first.total, second.total, beyond.total, beyond.rows) == (53, 53, 53, [])


async def test_acknowledging_several_with_a_note(engine: AsyncEngine) -> None:
    await seed_directory(engine)
    ids = await seed(engine, {}, {"severity": "warning"}, {"status": "resolved"}, {})
    async with unit_of_work(engine, "test") as connection:
        rows = await queries.discrepancies_by_ids(connection, ids[:3], for_update=True)
        changed = await queries.acknowledge(
            connection, *rows, account=HANDLER, now=TEST_NOW, note="Đã nhắc chuyên viên"
        )
        again = await queries.acknowledge(connection, *rows, account="other", now=TEST_NOW)
    assert (changed, again) == (True, False)
    async with unit_of_work(engine, "test") as connection:
        found = await queries.discrepancies_by_ids(connection, ids)
        history = (
            await connection.execute(
                select(
                    DiscrepancyHistory.discrepancy_id,
                    DiscrepancyHistory.actor,
                    DiscrepancyHistory.severity,
                    DiscrepancyHistory.note,
                ).order_by(DiscrepancyHistory.discrepancy_id)
            )
        ).all()
    assert [(row.status, row.acknowledged_by) for row in found] == [
        ("acknowledged", HANDLER),
        ("acknowledged", HANDLER),
        ("resolved", None),
        ("open", None),
    ]
    assert found[0].acknowledged_at == TEST_NOW
    assert [tuple(row) for row in history] == [
        (ids[0], HANDLER, "critical", "Đã nhắc chuyên viên"),
        (ids[1], HANDLER, "warning", "Đã nhắc chuyên viên"),
    ]


async def test_one_row_is_acknowledged_as_the_api_and_links_do(engine: AsyncEngine) -> None:
    await seed_directory(engine)
    [ident] = await seed(engine, {})
    async with unit_of_work(engine, "test") as connection:
        row = await queries.get_discrepancy(connection, ident)
        assert await queries.acknowledge(connection, row, account=HANDLER, now=TEST_NOW)
        note = (await connection.execute(select(DiscrepancyHistory.note))).scalar_one()
    assert note is None


async def test_the_field_choices_and_unit_names_of_a_scope(engine: AsyncEngine) -> None:
    await seed_directory(engine)
    await seed(
        engine,
        {"field": "Hộ tịch"},
        {"field": "Đất đai", "unit_code": CHILD_UNIT},
        {"field": "Xây dựng", "status": "resolved"},  # nothing left to do in it
        {"field": "Đầu tư", "unit_code": OTHER_UNIT},
        {"field": None},
    )
    scope = await scope_of(engine)
    async with unit_of_work(engine, "test") as connection:
        fields = await queries.inbox_fields(connection, scope)
        names = await queries.unit_names(connection, scope)
    assert sorted(fields) == sorted(["Hộ tịch", "Đất đai"])
    assert names == {MY_UNIT: "Chi nhánh VPĐKĐĐ", OLD_UNIT: "Huyện cũ", CHILD_UNIT: "Tổ tiếp nhận"}
