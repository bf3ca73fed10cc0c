"""The desk's register (``/returns``) in the reports service: scan, read the day, take back.

Each test runs on PostgreSQL and SQLite (the ``engine`` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from services.reconciler.directory.schemas import OfficerUpdate
from services.reconciler.directory.service import put_officer
from services.reconciler.reports import desk, service
from services.reconciler.reports.schemas import FieldReportCreate, dossier_code_problem
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.events import DossierEvent, parse_envelope
from shared.models import ReconcileSchedule
from tests.factories import snapshot
from tests.services.reconciler.reports.conftest import clear_reports, schedule, stored_reports

UNIT = "000.00.12.H08"
OTHER_UNIT = "000.23.12.H08"
DESK = "vothithuha.vpdkdd"
OTHER_DESK = "lethic.motcua"
KNOWN = f"{UNIT}-241106-0042"
UNKNOWN = f"{UNIT}-241106-0099"
NOW = datetime(2024, 11, 6, 9, 15, tzinfo=VN_TZ)  # a Wednesday morning at the desk


async def seed(engine: AsyncEngine) -> None:
    """A desk officer in the directory and one dossier the system has sent."""
    event = parse_envelope(
        snapshot(
            KNOWN,
            event_id="snap-1",
            emitted_at=NOW - timedelta(days=1),
            TenTTHC="Đăng ký biến động quyền sử dụng đất",
        )
    )
    assert isinstance(event, DossierEvent)
    async with unit_of_work(engine, "test") as connection:
        await put_officer(
            connection,
            account=DESK,
            officer_in=OfficerUpdate(full_name="Võ Thị Thu Hà", unit_code=UNIT, role="desk"),
            now=NOW,
        )
        await store_events(connection, [event], now=NOW)


async def scan(
    engine: AsyncEngine,
    code: str,
    *,
    kind: str = "returned",
    officer: str = DESK,
    unit: str = UNIT,
    now: datetime = NOW,
) -> desk.DeskRecord:
    async with unit_of_work(engine, "test") as connection:
        return await desk.record_at_desk(
            connection,
            dossier_code=code,
            kind=kind,  # type: ignore[arg-type]
            officer=officer,
            unit_code=unit,
            now=now,
        )


async def withdraw(
    engine: AsyncEngine,
    report_id: str,
    *,
    code: str,
    officer: str = DESK,
    unit: str = UNIT,
    now: datetime = NOW,
) -> desk.Withdrawal:
    async with unit_of_work(engine, "test") as connection:
        return await desk.withdraw_at_desk(
            connection,
            report_id=report_id,
            dossier_code=code,
            officer=officer,
            unit_code=unit,
            now=now,
        )


async def clear_schedule(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(delete(ReconcileSchedule))


async def day(engine: AsyncEngine, *, units: set[str], now: datetime = NOW) -> list[str]:
    async with engine.connect() as connection:
        entries = await desk.register_of_day(connection, units=units, now=now)
    return [entry.dossier_code for entry in entries]


async def test_a_scan_records_a_report_of_the_officer_for_their_unit_now(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    await clear_reports(engine)  # the snapshot's own mark is not this test's business

    done = await scan(engine, KNOWN)

    assert done.outcome == "recorded"
    assert done.entry.known and done.entry.procedure_name == "Đăng ký biến động quyền sử dụng đất"
    assert done.entry.officer_name == "Võ Thị Thu Hà"
    [stored] = await stored_reports(engine)
    assert stored["report_id"].startswith("web-") and stored["report_id"] == done.entry.report_id
    assert (stored["dossier_code"], stored["kind"], stored["officer"], stored["unit_code"]) == (
        KNOWN,
        "returned",
        DESK,
        UNIT,
    )
    assert stored["occurred_at"] == stored["received_at"] == NOW.astimezone(UTC)
    assert stored["channel"] == "web"
    assert await schedule(engine) == {KNOWN: NOW.astimezone(UTC)}


async def test_the_same_dossier_and_kind_again_the_same_day_records_nothing_new(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    first = await scan(engine, KNOWN)

    again = await scan(engine, KNOWN, now=NOW + timedelta(hours=3))
    withdrawn_too = await scan(engine, KNOWN, kind="withdrawn", now=NOW + timedelta(hours=4))
    tomorrow = await scan(engine, KNOWN, now=NOW + timedelta(days=1))

    assert again.outcome == "already"
    assert again.entry == first.entry  # when and by whom: the first scan of the day
    assert withdrawn_too.outcome == "recorded"  # the other kind is another fact
    assert tomorrow.outcome == "recorded"
    assert len(await stored_reports(engine)) == 3


async def test_a_double_submit_stores_one_report(engine: AsyncEngine) -> None:
    await seed(engine)
    outcomes = [(await scan(engine, UNKNOWN)).outcome for _ in range(2)]
    assert outcomes == ["recorded", "already"]
    assert [row["dossier_code"] for row in await stored_reports(engine)] == [UNKNOWN]


async def test_a_report_of_the_day_sent_through_the_api_counts_as_already_recorded(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    earlier = FieldReportCreate(
        report_id="motcua-0001",
        dossier_code=KNOWN,
        kind="returned",
        occurred_at=(NOW - timedelta(hours=1)).astimezone(UTC),
        officer=OTHER_DESK,
        unit_code=UNIT,
    )
    async with unit_of_work(engine, "test") as connection:
        await service.store_report(connection, earlier, channel="api", now=NOW)

    done = await scan(engine, KNOWN)

    assert done.outcome == "already"
    assert (done.entry.report_id, done.entry.officer_name) == ("motcua-0001", OTHER_DESK)
    another_desk = await scan(engine, KNOWN, unit=OTHER_UNIT, officer=OTHER_DESK)
    assert another_desk.outcome == "recorded"  # the register is the unit's


async def test_the_day_is_the_units_vietnam_day_newest_first_unknown_dossiers_marked(
    engine: AsyncEngine,
) -> None:
    await seed(engine)
    midnight = NOW.replace(hour=0, minute=0)
    await scan(engine, f"{UNIT}-241105-0001", now=midnight - timedelta(minutes=1))  # yesterday
    await scan(engine, f"{UNIT}-241106-0001", now=midnight)
    await scan(engine, UNKNOWN, now=NOW - timedelta(minutes=5))
    await scan(engine, KNOWN)
    await scan(engine, f"{OTHER_UNIT}-241106-0003", unit=OTHER_UNIT, officer=OTHER_DESK)

    assert await day(engine, units={UNIT}) == [KNOWN, UNKNOWN, f"{UNIT}-241106-0001"]
    assert len(await day(engine, units={UNIT, OTHER_UNIT})) == 4
    assert await day(engine, units=set()) == []
    async with engine.connect() as connection:
        entries = await desk.register_of_day(connection, units={UNIT}, now=NOW)
    known = {entry.dossier_code: (entry.known, entry.procedure_name) for entry in entries}
    assert known[KNOWN] == (True, "Đăng ký biến động quyền sử dụng đất")
    assert known[UNKNOWN] == (False, None)


async def test_only_the_author_may_withdraw_within_thirty_minutes(engine: AsyncEngine) -> None:
    await seed(engine)
    report_id = (await scan(engine, UNKNOWN)).entry.report_id
    late = (await scan(engine, KNOWN, now=NOW - timedelta(minutes=31))).entry.report_id
    await clear_schedule(engine)

    assert (await withdraw(engine, report_id, code=UNKNOWN, officer=OTHER_DESK)).outcome == (
        "not_author"
    )
    assert (await withdraw(engine, late, code=KNOWN)).outcome == "too_late"
    assert (await withdraw(engine, report_id, code=KNOWN)).outcome == "not_found"  # wrong code
    assert (await withdraw(engine, "web-unknown", code=UNKNOWN)).outcome == "not_found"
    assert len(await stored_reports(engine)) == 2
    assert await schedule(engine) == {}

    at_the_limit = NOW + desk.DESK_WITHDRAWAL_WINDOW
    done = await withdraw(engine, report_id, code=UNKNOWN, now=at_the_limit)

    assert done.outcome == "withdrawn"
    assert done.report is not None and done.report.dossier_code == UNKNOWN
    assert [row["report_id"] for row in await stored_reports(engine)] == [late]
    assert await schedule(engine) == {UNKNOWN: at_the_limit.astimezone(UTC)}
    again = await withdraw(engine, report_id, code=UNKNOWN, now=at_the_limit)
    assert again.outcome == "not_found"
    assert (await scan(engine, UNKNOWN, now=at_the_limit)).outcome == "recorded"  # scan anew


def test_withdrawable_is_the_authors_for_thirty_minutes() -> None:
    row = service.FieldReportRow(
        report_id="web-1",
        dossier_code=KNOWN,
        kind="returned",
        occurred_at=NOW,
        officer=DESK,
        unit_code=UNIT,
        note=None,
        channel="web",
        received_at=NOW,
    )

    def may(officer: str, unit: str, now: datetime) -> bool:
        return desk.withdrawable(row, officer=officer, unit_code=unit, now=now)

    assert may(DESK, UNIT, NOW + timedelta(minutes=30))
    assert not may(DESK, UNIT, NOW + timedelta(minutes=30, seconds=1))
    assert not may(OTHER_DESK, UNIT, NOW)
    assert not may(DESK, OTHER_UNIT, NOW)  # the author, moved to another unit's desk


def test_the_desk_report_id_is_one_per_unit_dossier_kind_and_day() -> None:
    key = {"unit_code": UNIT, "dossier_code": KNOWN, "kind": "returned"}
    today = NOW.date()
    assert desk.desk_report_id(**key, day=today) == desk.desk_report_id(**key, day=today)
    assert desk.desk_report_id(**key, day=today) != desk.desk_report_id(
        **key, day=today + timedelta(days=1)
    )
    assert len(desk.desk_report_id(**key, day=today)) <= 128


@pytest.mark.parametrize(
    "code",
    [
        "000.00.12.H08-241021-0042",
        "G22.39-240101-000123",
        "H08.22-250630-7",
    ],
)
def test_dossier_codes_as_the_systems_issue_them_are_accepted(code: str) -> None:
    assert dossier_code_problem(code) is None


@pytest.mark.parametrize(
    "code",
    [
        "8934563138165",  # a product's barcode
        "000.00.12.H08-241341-0042",  # no 41st of a 13th month
        "000.00.12.H08 241021 0042",
        "000.00.12.H08-241021-0042\n",
        "000.00.12.H08-241021-",
        "hồ-sơ-241021-0042",
        "000.00.12.H08-２４１０２１-0042",  # full-width digits
        "0" * 60 + "-241021-0042",
    ],
)
def test_what_cannot_be_a_dossier_code_is_refused_in_vietnamese(code: str) -> None:
    problem = dossier_code_problem(code)
    assert problem is not None and "không phải mã hồ sơ" in problem
    assert "Chưa ghi nhận gì" in problem


def test_an_empty_code_asks_for_a_scan() -> None:
    assert "Chưa có mã hồ sơ" in (dossier_code_problem("") or "")
