"""The reconciler on the database: discrepancies open, change in place and resolve themselves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Row, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from services.reconciler import schedule, service
from services.reconciler.config import ReconcilerSettings
from services.reconciler.schedule import mark_for_reconcile
from services.reconciler.worker import Reconciler
from shared.calendar import WorkingCalendar
from shared.db import unit_of_work
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, DiscrepancyHistory, FieldReport, ReconcileSchedule
from tests.factories import BASE_TIME, default_rule_settings, dossier_code, snapshot

CODE = dossier_code(5)
RETURNED_AT = BASE_TIME + timedelta(days=2, hours=2)  # a Wednesday, 10:00 local


class MutableClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(RETURNED_AT)


@pytest.fixture
def reconciler(engine: AsyncEngine, database_url: str, clock: MutableClock) -> Iterator[Reconciler]:
    settings = ReconcilerSettings(database_url=database_url, _env_file=None)
    yield Reconciler(settings, engine, clock)


async def ingest(engine: AsyncEngine, clock: MutableClock, *envelopes: dict[str, Any]) -> None:
    events = [parse_envelope(envelope) for envelope in envelopes]
    assert all(isinstance(event, DossierEvent) for event in events)
    async with unit_of_work(engine, "test") as connection:
        await store_events(connection, events, now=clock())  # type: ignore[arg-type]


async def desk_report(
    engine: AsyncEngine,
    clock: MutableClock,
    *,
    kind: str = "returned",
    code: str = CODE,
    occurred_at: datetime = RETURNED_AT,
    report_id: str = "r1",
) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(FieldReport).values(
                report_id=report_id,
                dossier_code=code,
                kind=kind,
                occurred_at=occurred_at,
                officer="lethic.motcua",
                unit_code="000.00.12.H08",
                note=None,
                channel="api",
                received_at=clock(),
            )
        )
        await mark_for_reconcile(connection, [code], at=clock())


async def discrepancies(engine: AsyncEngine) -> list[Row[Any]]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(Discrepancy).order_by(Discrepancy.id))).all())


async def history(engine: AsyncEngine, discrepancy_id: int) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(DiscrepancyHistory.action)
            .where(DiscrepancyHistory.discrepancy_id == discrepancy_id)
            .order_by(DiscrepancyHistory.id)
        )
        return list(rows.scalars().all())


async def test_returned_but_open_waits_for_the_grace_period_then_opens(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    await ingest(engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    await desk_report(engine, clock)
    clock.moment = RETURNED_AT + timedelta(minutes=119)
    await reconciler.drain()
    assert [d for d in await discrepancies(engine) if d.kind == "RETURNED_BUT_OPEN"] == []
    clock.moment = RETURNED_AT + timedelta(minutes=120)  # the grace's last instant: still in it
    await reconciler.drain()
    assert [d for d in await discrepancies(engine) if d.kind == "RETURNED_BUT_OPEN"] == []
    clock.moment = RETURNED_AT + timedelta(minutes=120, microseconds=1)
    await reconciler.drain()
    [found] = await discrepancies(engine)
    assert (found.kind, found.severity, found.status) == ("RETURNED_BUT_OPEN", "critical", "open")
    assert found.since == RETURNED_AT + timedelta(minutes=120, microseconds=1)
    assert found.reporter == "lethic.motcua"
    assert await history(engine, found.id) == ["opened"]


async def test_system_catching_up_to_returned_resolves_it_with_a_reason(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    await ingest(engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    await desk_report(engine, clock)
    clock.moment = RETURNED_AT + timedelta(hours=3)
    await reconciler.drain()
    await ingest(
        engine,
        clock,
        snapshot(
            CODE,
            event_id="s2",
            emitted_at=RETURNED_AT + timedelta(hours=3),
            status=10,
            NgayTra=RETURNED_AT.strftime("%Y%m%d%H%M%S"),
        ),
    )
    await reconciler.drain()
    [found] = await discrepancies(engine)
    assert found.status == "resolved"
    assert found.resolved_at == clock.moment
    assert "10 (Đã trả kết quả)" in found.resolution
    assert await history(engine, found.id) == ["opened", "resolved"]


async def test_resolving_never_waits_for_the_ingest_watermark(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    calendar = WorkingCalendar()
    settings = default_rule_settings(calendar)

    async def judge_with_the_watermark_unknown() -> None:
        async with unit_of_work(engine, "test") as connection:
            await service.reconcile(
                connection,
                [CODE],
                now=clock(),
                calendar=calendar,
                settings=settings,
                delivered_until=None,
            )

    await ingest(engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    await desk_report(engine, clock)
    clock.moment = RETURNED_AT + timedelta(hours=3)
    await reconciler.drain()
    await judge_with_the_watermark_unknown()  # the finding is held: what is open stays open
    [found] = await discrepancies(engine)
    assert (found.kind, found.status) == ("RETURNED_BUT_OPEN", "open")
    clock.moment += timedelta(minutes=5)
    await ingest(
        engine,
        clock,
        snapshot(
            CODE,
            event_id="s2",
            emitted_at=clock.moment,
            status=10,
            NgayTra=RETURNED_AT.strftime("%Y%m%d%H%M%S"),
        ),
    )
    await judge_with_the_watermark_unknown()
    [found] = await discrepancies(engine)
    assert (found.status, found.resolved_at) == ("resolved", clock.moment)


async def test_severity_change_updates_the_same_discrepancy_in_place(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    await ingest(engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=9))
    await desk_report(engine, clock)
    clock.moment = RETURNED_AT + timedelta(hours=3)
    await reconciler.drain()
    [warning] = await discrepancies(engine)
    assert warning.severity == "warning"
    await ingest(engine, clock, snapshot(CODE, event_id="s2", emitted_at=clock.moment, status=4))
    await reconciler.drain()
    [critical] = await discrepancies(engine)
    assert (critical.id, critical.severity, critical.status) == (warning.id, "critical", "open")
    assert await history(engine, critical.id) == ["opened", "severity_changed"]


async def test_unknown_dossier_reported_by_the_desk_is_not_in_system(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    await desk_report(engine, clock, code=dossier_code(99))
    clock.moment = RETURNED_AT + timedelta(hours=2, microseconds=1)
    await reconciler.drain()
    [found] = await discrepancies(engine)
    assert (found.kind, found.severity, found.unit_code) == (
        "NOT_IN_SYSTEM",
        "critical",
        "000.00.12.H08",
    )


async def test_overdue_opens_with_time_alone_through_the_schedule(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    clock.moment = BASE_TIME
    await ingest(engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    await reconciler.drain()
    async with engine.connect() as connection:
        check_at = (await connection.execute(select(ReconcileSchedule.check_at))).scalar_one()
    assert BASE_TIME < check_at <= BASE_TIME + timedelta(days=7)
    clock.moment = BASE_TIME + timedelta(days=7, minutes=1)
    await reconciler.drain()
    kinds = {d.kind for d in await discrepancies(engine) if d.status == "open"}
    assert "OVERDUE_NO_APOLOGY" in kinds
    assert "DUE_SOON" not in kinds


async def test_an_apologys_new_date_missed_is_overdue_again(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    """A date set by an apology that passes needs a new apology (contract §4)."""
    promised = BASE_TIME + timedelta(days=2)
    apology = {
        "NgayYeuCau": (promised - timedelta(hours=4)).strftime("%Y%m%d%H%M%S"),
        "NgayHenTraMoi": (promised + timedelta(days=3)).strftime("%Y%m%d%H%M%S"),
    }
    clock.moment = promised + timedelta(days=1)  # the apology's date still ahead
    await ingest(
        engine,
        clock,
        snapshot(
            CODE,
            event_id="s1",
            emitted_at=BASE_TIME,
            status=4,
            NgayHenTra=promised.strftime("%Y%m%d%H%M%S"),
            DanhSachXinLoi=[apology],
        ),
    )
    await reconciler.drain()
    assert "OVERDUE_NO_APOLOGY" not in {d.kind for d in await discrepancies(engine)}
    clock.moment = promised + timedelta(days=3, minutes=1)  # the apology's date has passed
    await reconciler.drain()
    [overdue] = [d for d in await discrepancies(engine) if d.kind == "OVERDUE_NO_APOLOGY"]
    assert overdue.since == promised + timedelta(days=3)


async def test_nothing_left_to_judge_removes_the_dossier_from_the_schedule(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    await ingest(engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=10))
    await reconciler.drain()
    async with engine.connect() as connection:
        assert (await connection.execute(select(ReconcileSchedule))).all() == []


async def test_the_database_refuses_a_second_unresolved_discrepancy_of_a_kind(
    engine: AsyncEngine, clock: MutableClock
) -> None:
    row = {
        "dossier_code": CODE,
        "kind": "STALLED",
        "severity": "warning",
        "status": "open",
        "since": BASE_TIME,
        "opened_at": BASE_TIME,
        "details": {},
        "updated_at": BASE_TIME,
    }
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(insert(Discrepancy).values(**{**row, "status": "resolved"}))
        await connection.execute(insert(Discrepancy).values(**row))
    with pytest.raises(IntegrityError):
        async with unit_of_work(engine, "test") as connection:
            await connection.execute(
                insert(Discrepancy).values(**{**row, "status": "acknowledged"})
            )


async def test_supplement_request_moves_the_due_date_so_nothing_is_overdue(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    original_due = BASE_TIME + timedelta(days=7)
    moved_due = BASE_TIME + timedelta(days=20)
    supplement = {
        "NgayYeuCau": (BASE_TIME + timedelta(days=3)).strftime("%Y%m%d%H%M%S"),
        "NgayHenTraTruoc": original_due.strftime("%Y%m%d%H%M%S"),
        "NgayHenTraMoi": moved_due.strftime("%Y%m%d%H%M%S"),
        "LyDo": "Thiếu bản sao giấy chứng nhận",
    }
    clock.moment = original_due + timedelta(days=1)
    await ingest(
        engine,
        clock,
        snapshot(
            CODE,
            event_id="s1",
            emitted_at=clock.moment - timedelta(hours=1),
            status=4,
            DanhSachHoSoBoSung=[supplement],
        ),
    )
    await reconciler.drain()
    assert "OVERDUE_NO_APOLOGY" not in {d.kind for d in await discrepancies(engine)}
    clock.moment = moved_due + timedelta(minutes=1)
    await reconciler.drain()
    assert "OVERDUE_NO_APOLOGY" in {d.kind for d in await discrepancies(engine)}


async def test_the_sweep_refreshes_per_unit_gauges_from_the_database(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    clock.moment = BASE_TIME + timedelta(days=1)
    await ingest(
        engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4, KenhThucHien=2)
    )
    await desk_report(engine, clock, occurred_at=BASE_TIME + timedelta(hours=1))
    clock.moment = BASE_TIME + timedelta(days=1, hours=4)
    await reconciler.drain()
    await reconciler.refresh_gauges()
    sample = REGISTRY.get_sample_value
    assert (
        sample(
            "doisoat_discrepancies_active_by_unit",
            {"unit": "000.00.12.H08", "kind": "RETURNED_BUT_OPEN"},
        )
        == 1
    )
    assert sample("doisoat_kpi_ratio", {"unit": "000.00.12.H08", "kpi": "online"}) == 1.0
    assert sample("doisoat_kpi_ratio", {"unit": "000.00.12.H08", "kpi": "in_system"}) == 1.0


async def test_facts_marked_while_a_chunk_is_judged_are_not_forgotten(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    """Without row locks (SQLite) a report can land between claim and write: its mark stays."""
    await ingest(engine, clock, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    async with engine.connect() as reader:
        claimed = await schedule.claim_due(reader, now=clock(), delivered_until=clock(), limit=10)
    clock.moment += timedelta(seconds=1)
    await desk_report(engine, clock)  # marks the dossier at the new "now"
    async with unit_of_work(engine, "test") as connection:
        await service.reconcile(
            connection,
            list(claimed),
            now=clock() - timedelta(seconds=1),
            calendar=reconciler.calendar,
            settings=reconciler.rule_settings,
            claimed=claimed,
        )
    async with engine.connect() as connection:
        mark = (await connection.execute(select(ReconcileSchedule.check_at))).scalar_one()
    assert mark == clock()


async def test_reschedule_all_marks_every_dossier_and_every_desk_only_code_once(
    engine: AsyncEngine, reconciler: Reconciler, clock: MutableClock
) -> None:
    other = dossier_code(6)
    desk_only = dossier_code(7)
    await ingest(
        engine,
        clock,
        snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4),
        snapshot(other, event_id="s2", emitted_at=BASE_TIME, status=10),
    )
    await desk_report(engine, clock)  # for CODE, which the system knows too
    await desk_report(engine, clock, code=desk_only, report_id="r2")
    await reconciler.drain()
    clock.moment = RETURNED_AT + timedelta(hours=1)
    async with unit_of_work(engine, "test") as connection:
        await service.reschedule_all(connection, now=clock())
    async with engine.connect() as connection:
        marks = (await connection.execute(select(ReconcileSchedule))).all()
    assert sorted((row.dossier_code, row.check_at) for row in marks) == sorted(
        (code, clock()) for code in (CODE, other, desk_only)
    )
