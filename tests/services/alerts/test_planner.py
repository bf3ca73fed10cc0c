"""The planner writes the right outbox rows, in the reconciler's transaction, at the right times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.channels.base import Recipient
from services.alerts.config import AlertsSettings
from services.alerts.content.rendering import render
from services.alerts.planner import AlertPlanner
from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.schedule import mark_for_reconcile
from services.reconciler.worker import Reconciler
from services.reconciler.writes import Change
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.events import DossierEvent, parse_envelope
from shared.models import (
    AlertTrack,
    Discrepancy,
    DiscrepancyHistory,
    FieldReport,
    Notification,
    Officer,
    Unit,
)
from tests.factories import dossier_code, progress, snapshot

UNIT = "000.00.12.H08"
CODE = dossier_code(8)
WEDNESDAY_9 = datetime(2026, 11, 25, 9, 0, tzinfo=VN_TZ)


class Clock:
    def __init__(self) -> None:
        self.moment = WEDNESDAY_9

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


def alerts_settings(database_url: str) -> AlertsSettings:
    return AlertsSettings(
        database_url=database_url,
        smtp_host="127.0.0.1",
        zalo_app_id="app",
        zalo_secret_key="secret",
        zalo_refresh_token="refresh",
        zalo_zns_template_id="tpl",
        _env_file=None,
    )


@pytest.fixture
def planner(database_url: str) -> AlertPlanner:
    return AlertPlanner(alerts_settings(database_url))


@pytest.fixture
def reconciler(
    engine: AsyncEngine, database_url: str, clock: Clock, planner: AlertPlanner
) -> Reconciler:
    settings = ReconcilerSettings(database_url=database_url, _env_file=None)
    return Reconciler(
        settings, engine, clock, on_changes=lambda c, ch, now: planner.on_changes(c, ch, now=now)
    )


# account, full name, role, email, Zalo user id, phone
OfficerRow = tuple[str, str, str, str | None, str | None, str | None]
OFFICERS: list[OfficerRow] = [
    ("tranthib.vpdkdd", "Trần Thị B", "handler", "b@x.vn", "uid-b", "84912345678"),
    ("lethic.motcua", "Lê Thị C", "desk", None, None, "84987654321"),
    ("phamvand.lanhdao", "Phạm Văn D", "leader", "d@x.vn", None, None),
]


async def directory(
    engine: AsyncEngine, clock: Clock, officers: Sequence[OfficerRow] = OFFICERS
) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit).values(
                code=UNIT,
                name="Chi nhánh VPĐKĐĐ Tuy Phong",
                parent_code=None,
                replaced_by=None,
                updated_at=clock(),
            )
        )
        await connection.execute(
            insert(Officer),
            [
                {
                    "account": a,
                    "full_name": n,
                    "unit_code": UNIT,
                    "role": r,
                    "email": e,
                    "zalo_user_id": z,
                    "phone": p,
                    "active": True,
                    "updated_at": clock(),
                }
                for a, n, r, e, z, p in officers
            ],
        )


async def returned_but_open(engine: AsyncEngine, clock: Clock) -> None:
    """The system says 4 (handled by tranthib), the desk returned it two hours ago."""
    events = [
        parse_envelope(e)
        for e in (
            snapshot(
                CODE,
                event_id="s1",
                emitted_at=clock() - timedelta(days=2),
                status=4,
                ChuHoSo="Nguyễn Văn An",
                SoGiayToChuHoSo="079123456789",
                NgayHenTra="20261210170000",
            ),
            progress(
                CODE,
                event_id="p1",
                emitted_at=clock() - timedelta(days=2),
                step_at=clock() - timedelta(days=2),
            ),
        )
    ]
    async with unit_of_work(engine, "test") as connection:
        await store_events(
            connection, [e for e in events if isinstance(e, DossierEvent)], now=clock()
        )
        await connection.execute(
            insert(FieldReport).values(
                report_id="r1",
                dossier_code=CODE,
                kind="returned",
                occurred_at=clock() - timedelta(hours=2, minutes=1),
                officer="lethic.motcua",
                unit_code=UNIT,
                note=None,
                channel="api",
                received_at=clock(),
            )
        )
        await mark_for_reconcile(connection, [CODE], at=clock())


async def outbox(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return list(
            (
                await connection.execute(
                    select(Notification).order_by(Notification.recipient, Notification.channel)
                )
            ).all()
        )


async def test_opened_discrepancy_notifies_handler_and_reporter_on_every_channel(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    rows = await outbox(engine)
    assert [(r.recipient, r.channel, r.address, r.purpose) for r in rows] == [
        ("lethic.motcua", "zalo_zns", "84987654321", "opened"),
        ("tranthib.vpdkdd", "email", "b@x.vn", "opened"),
        ("tranthib.vpdkdd", "zalo_oa", "uid-b", "opened"),
    ]
    assert {r.not_before for r in rows} == {clock() + timedelta(seconds=30)}
    content = rows[0].content
    assert content["dossier_code"] == CODE
    assert "079123456789" not in str(content) and "Nguyễn Văn An" not in str(content)


async def test_unreachable_handler_is_reported_to_the_units_leaders(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(engine, clock, [o for o in OFFICERS if o[0] != "tranthib.vpdkdd"])
    await returned_but_open(engine, clock)
    await reconciler.drain()
    unreachable = [r for r in await outbox(engine) if r.purpose == "unreachable"]
    assert [(r.recipient, r.channel) for r in unreachable] == [("phamvand.lanhdao", "email")]
    assert unreachable[0].content["unreachable"] == "tranthib.vpdkdd"


async def test_severity_rises_only_upwards(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler, planner: AlertPlanner
) -> None:
    """A severity change is told again only when it rose to critical, never when it fell."""
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    async with engine.connect() as connection:
        found = (await connection.execute(select(Discrepancy))).one()

    def changed_to(severity: str) -> Change:
        return Change(
            found.id, found.dossier_code, found.kind, severity, "severity_changed", found.unit_code
        )

    async with unit_of_work(engine, "test") as connection:
        fell = await planner.on_changes(connection, [changed_to("warning")], now=clock())
        rose = await planner.on_changes(connection, [changed_to("critical")], now=clock())
    assert fell == 0
    severity = [r for r in await outbox(engine) if r.purpose == "severity"]
    assert rose == len(severity) > 0
    assert sorted({r.recipient for r in severity}) == ["lethic.motcua", "tranthib.vpdkdd"]


async def test_resolved_before_sending_cancels_and_tells_nobody(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    await catch_up(engine, clock)
    await reconciler.drain()
    rows = await outbox(engine)
    assert {r.status for r in rows} == {"cancelled"}
    async with engine.connect() as connection:
        assert (await connection.execute(select(AlertTrack))).all() == []


async def catch_up(engine: AsyncEngine, clock: Clock) -> None:
    event = parse_envelope(
        snapshot(CODE, event_id="s2", emitted_at=clock(), status=10, NgayTra="20261125070000")
    )
    assert isinstance(event, DossierEvent)
    async with unit_of_work(engine, "test") as connection:
        await store_events(connection, [event], now=clock())


async def test_resolved_after_sending_tells_those_who_were_told(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(update(Notification).values(status="sent", sent_at=clock()))
    clock.moment += timedelta(minutes=5)
    await catch_up(engine, clock)
    await reconciler.drain()
    resolved = [r for r in await outbox(engine) if r.purpose == "resolved"]
    assert sorted({r.recipient for r in resolved}) == ["lethic.motcua", "tranthib.vpdkdd"]
    assert "Tự động đóng" in resolved[0].content["resolution"]


async def test_unacknowledged_discrepancy_escalates_to_leaders_after_the_window(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler, planner: AlertPlanner
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    clock.moment += timedelta(hours=3, minutes=59)  # 13:00 - 4 working hours not yet passed
    async with unit_of_work(engine, "test") as connection:
        assert await planner.due_tracks(connection, now=clock(), limit=100) == 0
    clock.moment = WEDNESDAY_9 + timedelta(hours=6)  # 15:00: 9-11:30 + 13:30-15:00 = 4 h
    async with unit_of_work(engine, "test") as connection:
        assert await planner.due_tracks(connection, now=clock(), limit=100) == 1
    escalations = [r for r in await outbox(engine) if r.purpose == "escalation"]
    assert [(r.recipient, r.channel) for r in escalations] == [("phamvand.lanhdao", "email")]


async def test_acknowledged_discrepancy_is_neither_escalated_nor_reminded(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler, planner: AlertPlanner
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(update(Discrepancy).values(status="acknowledged"))
    clock.moment += timedelta(days=3)
    async with unit_of_work(engine, "test") as connection:
        await planner.due_tracks(connection, now=clock(), limit=100)
    assert {r.purpose for r in await outbox(engine)} == {"opened"}
    async with engine.connect() as connection:
        assert (await connection.execute(select(AlertTrack))).all() == []


async def test_open_discrepancy_is_reminded_at_the_repeat_interval(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler, planner: AlertPlanner
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    clock.moment = WEDNESDAY_9 + timedelta(days=1, hours=1)  # 8 working hours later
    async with unit_of_work(engine, "test") as connection:
        await planner.due_tracks(connection, now=clock(), limit=100)
    reminders = [r for r in await outbox(engine) if r.purpose == "reminder"]
    assert sorted({r.recipient for r in reminders}) == ["lethic.motcua", "tranthib.vpdkdd"]


async def test_weekly_digest_is_planned_once_per_unit_and_week(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler, planner: AlertPlanner
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    monday = datetime(2026, 11, 30, 7, 29, tzinfo=VN_TZ)
    for moment, expected in (
        (monday, 0),
        (monday + timedelta(minutes=1), 1),
        (monday + timedelta(hours=2), 0),
    ):
        async with unit_of_work(engine, "test") as connection:
            planned = await planner.plan_digests(connection, now=moment, weekday=0, at=time(7, 30))
        assert planned == expected
    [digest] = [r for r in await outbox(engine) if r.purpose == "digest"]
    assert digest.recipient == "phamvand.lanhdao"
    assert digest.content["week"] == "2026-W49"
    assert [i["dossier_code"] for i in digest.content["returned_open"]] == [CODE]


HANDED_TO = "nguyenvane.vpdkdd"


async def hand_over(engine: AsyncEngine, clock: Clock) -> None:
    """A new step: the dossier now sits with another handler of the same unit."""
    clock.moment += timedelta(minutes=5)
    event = parse_envelope(
        progress(CODE, event_id="p2", emitted_at=clock(), step_at=clock(), officer=HANDED_TO)
    )
    assert isinstance(event, DossierEvent)
    async with unit_of_work(engine, "test") as connection:
        await store_events(connection, [event], now=clock())


async def test_a_hand_off_moves_the_discrepancy_to_the_new_holder(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(
        engine, clock, [*OFFICERS, (HANDED_TO, "Nguyễn Văn E", "handler", "e@x.vn", None, None)]
    )
    await returned_but_open(engine, clock)
    await reconciler.drain()
    await hand_over(engine, clock)
    await reconciler.drain()

    async with engine.connect() as connection:
        found = (await connection.execute(select(Discrepancy))).one()
        history = (
            await connection.execute(
                select(DiscrepancyHistory.action, DiscrepancyHistory.note).order_by(
                    DiscrepancyHistory.id
                )
            )
        ).all()
    assert found.responsible == HANDED_TO
    assert [action for action, _ in history] == ["opened", "handed_over"]
    assert "tranthib.vpdkdd" in history[1].note and HANDED_TO in history[1].note

    rows = await outbox(engine)
    previous = [r for r in rows if r.recipient == "tranthib.vpdkdd"]
    assert {r.status for r in previous} == {"cancelled"}  # not sent yet: never sent
    told = [r for r in rows if r.recipient == HANDED_TO]
    assert [(r.purpose, r.channel, r.status) for r in told] == [("handover", "email", "pending")]
    # The desk officer who reported it is still told about it: nothing of theirs is cancelled.
    assert {r.status for r in rows if r.recipient == "lethic.motcua"} == {"pending"}


async def test_the_new_holder_reads_that_the_dossier_was_handed_to_them(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(
        engine, clock, [*OFFICERS, (HANDED_TO, "Nguyễn Văn E", "handler", "e@x.vn", None, None)]
    )
    await returned_but_open(engine, clock)
    await reconciler.drain()
    await hand_over(engine, clock)
    await reconciler.drain()

    [row] = [r for r in await outbox(engine) if r.recipient == HANDED_TO]
    message = render(
        "handover",
        [row.content],
        recipient=Recipient(HANDED_TO, "Nguyễn Văn E", "e@x.vn", None, None),
        notification_id=str(row.id),
        channel="email",
        ack_links={},
    )
    assert "được chuyển cho anh/chị" in message.subject
    assert "đã được chuyển cho anh/chị xử lý và đang có sai lệch" in message.text
    assert CODE in message.text


async def test_a_change_of_deciding_unit_moves_the_discrepancy_to_that_unit(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(engine, clock)
    await returned_but_open(engine, clock)
    await reconciler.drain()
    clock.moment += timedelta(minutes=5)
    moved = parse_envelope(
        snapshot(CODE, event_id="s9", emitted_at=clock(), status=4, unit="000.00.13.H08")
    )
    assert isinstance(moved, DossierEvent)
    async with unit_of_work(engine, "test") as connection:
        await store_events(connection, [moved], now=clock())
    await reconciler.drain()
    async with engine.connect() as connection:
        found = (await connection.execute(select(Discrepancy))).one()
    assert found.unit_code == "000.00.13.H08"


async def test_rewritten_dates_are_told_to_the_units_leaders_directly(
    engine: AsyncEngine, clock: Clock, reconciler: Reconciler
) -> None:
    await directory(engine, clock)
    promised = clock() + timedelta(days=2)
    events = [
        parse_envelope(
            snapshot(
                CODE,
                event_id=f"s{n}",
                emitted_at=at,
                status=4,
                NgayHenTra=due.strftime("%Y%m%d%H%M%S"),
            )
        )
        for n, (at, due) in enumerate(
            [
                (clock() - timedelta(days=1), promised),
                (clock(), promised + timedelta(days=5)),  # moved later, nothing explains it
            ]
        )
    ]
    async with unit_of_work(engine, "test") as connection:
        await store_events(
            connection, [e for e in events if isinstance(e, DossierEvent)], now=clock()
        )
    await reconciler.drain()
    rows = [r for r in await outbox(engine) if r.content.get("kind") == "DATES_REWRITTEN"]
    assert {r.recipient for r in rows} == {"phamvand.lanhdao"}  # not the handler
    assert rows[0].severity == "critical"
    problem = rows[0].content["problem"]
    assert "Ngày hẹn trả kết quả trên hệ thống đã bị sửa từ" in problem
