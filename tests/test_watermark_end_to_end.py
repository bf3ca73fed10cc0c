"""Judging only what the stream has delivered (contract §4), with every service a real process.

The desk's word is compared with the system's only once the Kafka stream has delivered the
system's side of that moment: a consumer that is still joining its group, has not started, or
was killed in the middle of a backlog must never turn into officers' alerts about dossiers the
system did in fact return. Each test runs ``doisoat api``, ``ingest``, ``reconciler`` (and
``alerts``) apart on a fresh PostgreSQL database and a topic of the tansu broker, and reads the
outcome both through the API and straight from the tables (resolved discrepancies and their
history included: a false alarm that was opened and later resolved is still a false alarm).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.dvcqg import format_thoi_diem
from shared.models import (
    Discrepancy,
    DiscrepancyHistory,
    Dossier,
    Event,
    Notification,
    ReconcileSchedule,
)
from tests.factories import dossier_code, encode, progress, snapshot
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.zalo_server import FakeZaloServer
from tests.support.broker import Broker, create_topic, produce
from tests.support.pipeline import (
    DESK_KEY,
    SOURCE_KEY,
    UNIT,
    OfficerSeed,
    Pipeline,
    desk_report,
    pipeline_env,
    register_directory,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

HANDLER = "tranthib.vpdkdd"
DESK = "lethic.motcua"
GRACE = timedelta(hours=2)  # DOISOAT_RETURN_GRACE_MINUTES' default
DESK_KINDS = ("RETURNED_BUT_OPEN", "NOT_IN_SYSTEM", "STATUS_CONFLICT", "TIME_MISMATCH")
WATERMARK_LAG = "doisoat_ingest_watermark_lag_seconds"
Message = tuple[bytes, bytes]

# --------------------------------------------------------------------------- the stream


def returned_dossier(
    code: str, *, received: datetime, returned_at: datetime
) -> list[dict[str, Any]]:
    """The system's whole story of a dossier handed back at ``returned_at``: received and being
    processed (4), a handler's step, then finished and returned (10), published a few minutes
    after the desk handed it over."""
    dates = {
        "NgayTiepNhan": format_thoi_diem(received),
        "NgayHenTra": format_thoi_diem(returned_at + timedelta(days=10)),
    }
    step_at = received + timedelta(minutes=30)
    return [
        snapshot(code, event_id=f"{code}.1", emitted_at=received, status=4, **dates),
        progress(code, event_id=f"{code}.2", emitted_at=step_at, step_at=step_at, officer=HANDLER),
        snapshot(
            code,
            event_id=f"{code}.3",
            emitted_at=returned_at + timedelta(minutes=5),
            status=10,
            NgayKetThucXuLy=format_thoi_diem(returned_at - timedelta(hours=1)),
            NgayTra=format_thoi_diem(returned_at),
            **dates,
        ),
    ]


def stories(returns: Mapping[str, datetime], *, received_before: timedelta) -> list[dict[str, Any]]:
    """The stories of dossiers returned at the given moments, each received that long before."""
    return [
        envelope
        for code, returned_at in returns.items()
        for envelope in returned_dossier(
            code, received=returned_at - received_before, returned_at=returned_at
        )
    ]


def in_stream_order(envelopes: Iterable[dict[str, Any]]) -> list[Message]:
    """Keyed by MaHoSo and in the order the procedure system emitted them, as it publishes."""
    ordered = sorted(envelopes, key=lambda e: (e["emitted_at"], e["event_id"]))
    return [(e["data"]["MaHoSo"].encode(), encode(e)) for e in ordered]


def new_topic(broker: Broker, partitions: int) -> str:
    name = f"tthc.hoso.events.watermark.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, partitions)
    return name


# --------------------------------------------------------------------------- the tables


async def stored_events(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(Event))).scalar_one()


async def desk_discrepancies(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    """Every discrepancy comparing the desk with the system ever opened, resolved ones too:
    (dossier, kind, status)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Discrepancy.dossier_code, Discrepancy.kind, Discrepancy.status)
            .where(Discrepancy.kind.in_(DESK_KINDS))
            .order_by(Discrepancy.dossier_code, Discrepancy.kind)
        )
        return [(code, kind, status) for code, kind, status in rows.all()]


async def desk_history(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    """Every change of those discrepancies: (dossier, kind, action)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Discrepancy.dossier_code, Discrepancy.kind, DiscrepancyHistory.action)
            .join(Discrepancy, Discrepancy.id == DiscrepancyHistory.discrepancy_id)
            .where(Discrepancy.kind.in_(DESK_KINDS))
            .order_by(Discrepancy.dossier_code, DiscrepancyHistory.id)
        )
        return [(code, kind, action) for code, kind, action in rows.all()]


async def count_open(engine: AsyncEngine, codes: Sequence[str]) -> int:
    """How many of ``codes`` the system shows as being processed (status 4)."""
    async with engine.connect() as connection:
        count = select(func.count()).where(Dossier.code.in_(codes), Dossier.status == 4)
        return (await connection.execute(count)).scalar_one()


async def notifications(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = select(func.count()).select_from(Notification)
        return (await connection.execute(count)).scalar_one()


async def schedule_of(engine: AsyncEngine, codes: Sequence[str]) -> dict[str, bool]:
    """The reconcile marks of ``codes``: dossier → whether it waits for the ingest watermark."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(ReconcileSchedule.dossier_code, ReconcileSchedule.waits_for_watermark).where(
                ReconcileSchedule.dossier_code.in_(codes)
            )
        )
        return {code: waits for code, waits in rows.all()}


async def post_reports(pipeline: Pipeline, reports: Iterable[dict[str, Any]]) -> None:
    async with pipeline.api(DESK_KEY) as desk:
        for report in reports:
            answer = await desk.post("/api/v1/field-reports", json=report)
            assert answer.status_code == 201, answer.text


# --------------------------------------------------------------------------- the tests


async def test_desk_reports_made_while_the_consumer_joins_its_group_open_nothing(
    broker: Broker,
    pg_database_url: str,
    pg_engine: AsyncEngine,
    smtp_relay: FakeSmtpServer,
    zalo_api: FakeZaloServer,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    # The desk handed 15 dossiers back 3 to 4 hours ago (their grace is over); the system
    # published each return minutes later. Then came the last hour's busy counter: 1,200 more
    # dossiers received and returned. That backlog waits in Kafka, several batches deep on
    # every partition, and mostly newer than the moments the desk's reports may be judged at.
    reported = {dossier_code(n): now - timedelta(hours=3, minutes=4 * n) for n in range(15)}
    others = {
        dossier_code(100 + n): now - timedelta(minutes=50) + n * timedelta(minutes=45) / 1200
        for n in range(1200)
    }
    envelopes = [
        *stories(reported, received_before=timedelta(days=1)),
        *stories(others, received_before=timedelta(minutes=40)),
    ]
    topic = new_topic(broker, partitions=3)
    await asyncio.to_thread(produce, broker.bootstrap, topic, in_stream_order(envelopes))
    env = pipeline_env(
        database_url=pg_database_url,
        broker=broker,
        topic=topic,
        smtp=smtp_relay,
        zalo=zalo_api,
        # Batches of 50 over 3,600 events stand for production's 5,000 over a larger backlog.
        overrides={"DOISOAT_KAFKA_BATCH_MAX_MESSAGES": "50"},
    )
    reports = [
        desk_report(f"desk-{code}", code, occurred_at=returned_at, officer=DESK)
        for code, returned_at in reported.items()
    ]
    with Pipeline(env, tmp_path) as pipeline:
        pipeline.start("api")
        async with pipeline.api() as admin:
            await register_directory(
                admin,
                UNIT,
                "Chi nhánh VPĐKĐĐ Tuy Phong",
                [
                    OfficerSeed(HANDLER, "Trần Thị B", "handler", "b.tran@tinh.gov.vn", "zalo-b"),
                    OfficerSeed(DESK, "Lê Thị C", "desk", "c.le@tinh.gov.vn"),
                ],
            )
        for command in ("reconciler", "alerts", "ingest"):
            pipeline.spawn(command)
        await post_reports(pipeline, reports)
        stored_when_reported = await stored_events(pg_engine)
        pipeline.wait_healthy("reconciler", "alerts", "ingest")

        async def progress_made() -> tuple[int, float, dict[str, bool]]:
            return (
                await stored_events(pg_engine),
                await pipeline.metric("reconciler", WATERMARK_LAG),
                await schedule_of(pg_engine, list(reported)),
            )

        caught_up = await eventually(
            progress_made, lambda seen: seen == (len(envelopes), 0.0, {}), within=90
        )
        found = await desk_discrepancies(pg_engine)
        history = await desk_history(pg_engine)
        outbox = await notifications(pg_engine)
        logs = pipeline.logs()

    assert stored_when_reported == 0, "the reports must reach doisoat before any event does"
    assert caught_up == (len(envelopes), 0.0, {}), logs
    assert found == [], logs
    assert history == []
    assert outbox == 0
    assert smtp_relay.handler.messages() == []
    assert zalo_api.state.oa_messages == []


async def test_a_desk_report_waits_while_no_consumer_has_reported_then_is_judged_once(
    broker: Broker,
    pg_database_url: str,
    pg_engine: AsyncEngine,
    smtp_relay: FakeSmtpServer,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    returned_at = now - timedelta(hours=3)
    known, unknown = dossier_code(1), dossier_code(2)  # to doisoat, before ingest starts
    told = {
        code: returned_dossier(
            code, received=returned_at - timedelta(days=1), returned_at=returned_at
        )
        for code in (known, unknown)
    }
    topic = new_topic(broker, partitions=2)
    produce(broker.bootstrap, topic, in_stream_order([*told[known], *told[unknown]]))
    env = pipeline_env(database_url=pg_database_url, broker=broker, topic=topic, smtp=smtp_relay)

    with Pipeline(env, tmp_path) as pipeline:
        pipeline.start("api", "reconciler", "alerts")
        async with pipeline.api() as admin, pipeline.api(SOURCE_KEY) as source:
            await register_directory(
                admin,
                UNIT,
                "Chi nhánh VPĐKĐĐ Tuy Phong",
                [
                    OfficerSeed(HANDLER, "Trần Thị B", "handler", "b.tran@tinh.gov.vn"),
                    OfficerSeed(DESK, "Lê Thị C", "desk", "c.le@tinh.gov.vn"),
                ],
            )
            # doisoat heard over HTTP that one of them was being processed; both returns wait
            # in Kafka for a consumer that has not started.
            first_snapshot = told[known][0]
            answer = await source.post("/api/v1/events", json=[first_snapshot])
            assert answer.json()["results"][0]["outcome"] == "stored", answer.text
            await post_reports(
                pipeline,
                [
                    desk_report(f"desk-{code}", code, occurred_at=returned_at, officer=DESK)
                    for code in (known, unknown)
                ],
            )
            held = await eventually(
                lambda: admin.get(f"/api/v1/dossiers/{known}"),
                lambda answer: answer.json()["waiting_for_system"] is not None,
            )
            # The two reports were posted one after the other: a chunk may judge the first
            # before the second is marked, so the second's wait is awaited too.
            held_marks = await eventually(
                lambda: schedule_of(pg_engine, [known, unknown]),
                lambda marks: marks == {known: True, unknown: True},
            )
            lag_while_held = await pipeline.metric("reconciler", WATERMARK_LAG)
            found_while_held = await desk_discrepancies(pg_engine)

            pipeline.start("ingest")

            async def delivered() -> tuple[int, dict[str, bool], Any]:
                dossier = await admin.get(f"/api/v1/dossiers/{known}")
                return (
                    await stored_events(pg_engine),
                    await schedule_of(pg_engine, [known, unknown]),
                    dossier.json()["waiting_for_system"],
                )

            after = await eventually(delivered, lambda seen: seen == (6, {}, None))
            listed = await admin.get(
                "/api/v1/discrepancies", params={"status": "open,acknowledged,resolved"}
            )
            final = (await admin.get(f"/api/v1/dossiers/{known}")).json()
        history = await desk_history(pg_engine)
        outbox = await notifications(pg_engine)
        logs = pipeline.logs()

    waiting = held.json()["waiting_for_system"]
    judged_after = datetime.fromisoformat(waiting["judged_after"])
    assert returned_at + GRACE < judged_after <= returned_at + GRACE + timedelta(seconds=1)
    assert held.json()["status"] == 4
    assert held_marks == {known: True, unknown: True}
    assert lag_while_held == float("inf")
    assert found_while_held == []
    assert after == (6, {}, None), logs
    assert final["status"] == 10
    assert listed.json() == {"items": [], "total": 0}
    assert history == []
    assert outbox == 0
    assert smtp_relay.handler.messages() == []


async def test_desk_reports_made_while_a_burst_is_drained_open_nothing(
    broker: Broker, pg_database_url: str, pg_engine: AsyncEngine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    # The consumer has long caught up with the stream (it last saw dossiers returned two days
    # ago) when the procedure system, its outbox stuck since yesterday, publishes everything
    # at once: 15 dossiers the desk handed back 3 to 4 hours ago, and the last hour's 1,200.
    earlier = stories(
        {dossier_code(5000 + n): now - timedelta(days=2) for n in range(30)},
        received_before=timedelta(hours=4),
    )
    reported = {dossier_code(n): now - timedelta(hours=3, minutes=4 * n) for n in range(15)}
    others = {
        dossier_code(100 + n): now - timedelta(minutes=50) + n * timedelta(minutes=45) / 1200
        for n in range(1200)
    }
    burst = [
        *stories(reported, received_before=timedelta(days=1)),
        *stories(others, received_before=timedelta(minutes=40)),
    ]
    total = len(earlier) + len(burst)
    topic = new_topic(broker, partitions=3)
    produce(broker.bootstrap, topic, in_stream_order(earlier))
    env = pipeline_env(
        database_url=pg_database_url,
        broker=broker,
        topic=topic,
        overrides={"DOISOAT_KAFKA_BATCH_MAX_MESSAGES": "50"},
    )

    with Pipeline(env, tmp_path) as pipeline:
        pipeline.start("api", "reconciler", "ingest")

        async def idle_and_caught_up() -> tuple[int, float]:
            return (
                await stored_events(pg_engine),
                await pipeline.metric("reconciler", WATERMARK_LAG),
            )

        before = await eventually(idle_and_caught_up, lambda seen: seen == (len(earlier), 0.0))
        assert before == (len(earlier), 0.0), pipeline.logs()

        await asyncio.to_thread(produce, broker.bootstrap, topic, in_stream_order(burst))
        # The consumer has polled since the burst landed: the high-water marks it knows of
        # are past every message the desk's reports depend on.
        draining = await eventually(lambda: stored_events(pg_engine), lambda n: n > len(earlier))
        await post_reports(
            pipeline,
            [
                desk_report(f"desk-{code}", code, occurred_at=returned_at, officer=DESK)
                for code, returned_at in reported.items()
            ],
        )

        async def progress_made() -> tuple[int, float, dict[str, bool]]:
            return (
                await stored_events(pg_engine),
                await pipeline.metric("reconciler", WATERMARK_LAG),
                await schedule_of(pg_engine, list(reported)),
            )

        caught_up = await eventually(
            progress_made, lambda seen: seen == (total, 0.0, {}), within=90
        )
        found = await desk_discrepancies(pg_engine)
        history = await desk_history(pg_engine)
        logs = pipeline.logs()

    assert len(earlier) < draining < total
    assert caught_up == (total, 0.0, {}), logs
    assert found == [], logs
    assert history == []


async def test_a_consumer_killed_mid_backlog_leaves_the_desk_waiting_and_judges_each_once(
    broker: Broker, pg_database_url: str, pg_engine: AsyncEngine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    # Until three days ago the consumer kept up. Then it was stopped, and 1,000 dossiers of the
    # last two days piled up in Kafka. The desk reports 30 of them returned 3 to 6 hours ago:
    # received two days before, they open the backlog, and the system published their returns
    # a few minutes after the desk. The desk also reports one dossier the system never sent.
    earlier = stories(
        {dossier_code(5000 + n): now - timedelta(days=3) for n in range(30)},
        received_before=timedelta(hours=4),
    )
    reported = {dossier_code(n): now - timedelta(hours=3, minutes=6 * n) for n in range(30)}
    others = {
        dossier_code(100 + n): now - timedelta(minutes=5 + (n * 30 * 60) // 970) for n in range(970)
    }
    never_sent = dossier_code(9999)
    backlog = [
        *stories(reported, received_before=timedelta(days=2)),
        *stories(others, received_before=timedelta(hours=4)),
    ]
    total = len(earlier) + len(backlog)
    topic = new_topic(broker, partitions=3)
    produce(broker.bootstrap, topic, in_stream_order(earlier))
    env = pipeline_env(
        database_url=pg_database_url,
        broker=broker,
        topic=topic,
        overrides={
            "DOISOAT_KAFKA_BATCH_MAX_MESSAGES": "50",
            "DOISOAT_INGEST_WATERMARK_STALE_SECONDS": "3",
        },
    )
    desk_codes = [*reported, never_sent]
    reports = [
        desk_report(f"desk-{code}", code, occurred_at=returned_at, officer=DESK)
        for code, returned_at in [*reported.items(), (never_sent, now - timedelta(hours=3))]
    ]

    def watermark_lag() -> Awaitable[float]:
        return pipeline.metric("reconciler", WATERMARK_LAG)

    with Pipeline(env, tmp_path) as pipeline:
        pipeline.start("api", "reconciler", "ingest")
        kept_up = await eventually(
            lambda: stored_events(pg_engine), lambda n: n == len(earlier), within=60
        )
        assert kept_up == len(earlier), pipeline.logs()
        pipeline["ingest"].stop()
        await asyncio.to_thread(produce, broker.bootstrap, topic, in_stream_order(backlog))
        # Nobody reports the partitions any more: once they are stale the watermark is unknown.
        assert await eventually(watermark_lag, lambda lag: lag == float("inf")) == float("inf")
        await post_reports(pipeline, reports)
        marks = await eventually(
            lambda: schedule_of(pg_engine, desk_codes),
            lambda marks: marks == dict.fromkeys(desk_codes, True),
        )
        assert marks == dict.fromkeys(desk_codes, True), pipeline.logs()

        restarted = pipeline.spawn("ingest")
        stored = await eventually(
            lambda: stored_events(pg_engine),
            lambda n: n >= len(earlier) + len(backlog) // 10,
            interval=0.01,
        )
        restarted.kill()
        assert stored < total, "killed too late: the backlog was already consumed"

        lag_after_kill = await eventually(watermark_lag, lambda lag: lag == float("inf"))
        stored_at_outage = await stored_events(pg_engine)
        found_at_outage = await desk_discrepancies(pg_engine)
        still_processing = await count_open(pg_engine, list(reported))

        pipeline.start("ingest")

        async def progress_made() -> tuple[int, float, dict[str, bool]]:
            return (
                await stored_events(pg_engine),
                await watermark_lag(),
                await schedule_of(pg_engine, list(reported)),
            )

        caught_up = await eventually(
            progress_made, lambda seen: seen == (total, 0.0, {}), within=90
        )
        judged = await eventually(
            lambda: desk_discrepancies(pg_engine), lambda found: len(found) > 0
        )
        history = await desk_history(pg_engine)
        logs = pipeline.logs()

    assert restarted.returncode == -9
    assert lag_after_kill == float("inf"), logs
    assert stored_at_outage < total
    assert still_processing > 0, "at the kill the system still showed some returns as open"
    assert found_at_outage == [], logs
    assert caught_up == (total, 0.0, {}), logs
    assert judged == [(never_sent, "NOT_IN_SYSTEM", "open")], logs
    assert history == [(never_sent, "NOT_IN_SYSTEM", "opened")]
