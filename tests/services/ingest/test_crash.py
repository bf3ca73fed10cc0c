"""``doisoat ingest`` killed or stopped mid-stream: nothing lost, nothing applied twice.

Real processes, a real PostgreSQL, a real Kafka-protocol broker. A stream of tens of thousands
of events (snapshots and progress steps of thousands of dossiers, slightly out of order, as
contract §1 allows) is produced by an independent client; ``doisoat ingest`` consumes it and
is SIGKILLed (a crash) or SIGTERMed (a graceful stop) in the middle; a new process in the same
consumer group finishes the stream. The database must then hold exactly the produced events,
and the second process's counters must account exactly for what was redelivered.

The signal lands at the worst moment on purpose: the process is paused (SIGSTOP) at random
instants until one finds a batch committed in the database whose offsets are not yet committed
to Kafka, then killed (its batch must come back as duplicates) or stopped (it must commit
those offsets before exiting).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from shared.dvcqg import format_thoi_diem
from shared.models import DeadLetter, Dossier, Event, ProgressStep
from tests.factories import BASE_TIME, dossier_code, encode, progress, snapshot
from tests.support.broker import Broker, create_topic, end_offsets, produce
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.slow

Message = tuple[bytes, bytes]

UNITS = ("000.00.12.H08", "000.00.31.H08", "000.20.01.H08")
OFFICERS = ("tranthib.vpdkdd", "nguyenvana.tnmt", "lethic.motcua", "phamvand.tuphap")
#: Lifecycles of a dossier (TrangThaiHoSo, in order); a dossier may still be midway.
LIFECYCLES = (
    (2, 4, 9, 10),
    (1, 2, 4, 9, 10),
    (2, 4, 5, 4, 9, 10),
    (2, 4, 6, 4, 9, 10),
    (2, 3),
    (1, 7),
    (2, 4, 8),
)
TEST_APP_NAME = "doisoat-crash-test"
OUTCOMES = ("stored", "duplicate", "stale", "dead_letter")
EVENTS_TOTAL = "doisoat_ingest_events_total"


# --------------------------------------------------------------------------- the stream


@dataclass
class Stream:
    """What was produced, and what the database must hold once all of it is consumed."""

    messages: list[Message] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    step_ids: set[str] = field(default_factory=set)
    status: dict[str, int | None] = field(default_factory=dict)
    responsible: dict[str, str | None] = field(default_factory=dict)


def build_stream(dossiers: int, events: int, seed: int) -> Stream:
    """``events`` events over ``dossiers`` dossiers: every dossier's snapshots along a
    lifecycle (truncated at random: many are still open), progress steps in between, 2 % of
    dossiers known only through steps; produced in time order with a few hours of jitter, so
    that a dossier's events often arrive out of order. The expectations follow contract §1:
    status of the newest snapshot by (emitted_at, event_id), responsible officer of the newest
    step by (ThoiDiemXuLy, emitted_at, event_id)."""
    rng = random.Random(seed)
    plans: list[tuple[str, list[int]]] = []
    for number in range(dossiers):
        code = dossier_code(number, unit=rng.choice(UNITS))
        if rng.random() < 0.02:
            statuses: list[int] = []
        else:
            lifecycle = rng.choice(LIFECYCLES)
            statuses = list(lifecycle[: rng.randint(1, len(lifecycle))])
        plans.append((code, statuses))
    steps_left = events - sum(len(statuses) for _, statuses in plans)
    assert steps_left >= dossiers, "too few events for that many dossiers"
    step_counts = {code: 0 for code, _ in plans}
    for code, statuses in plans:
        if not statuses:
            step_counts[code] = 1
            steps_left -= 1
    for code in rng.choices([code for code, _ in plans], k=steps_left):
        step_counts[code] += 1

    stream = Stream()
    timed: list[tuple[datetime, dict[str, Any]]] = []
    for code, statuses in plans:
        unit = code.split("-")[0]
        received = BASE_TIME + timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
        kinds = ["snapshot"] * len(statuses) + ["step"] * step_counts[code]
        if statuses:  # the first event is the snapshot of the received dossier
            rest = kinds[1:]
            rng.shuffle(rest)
            kinds = [kinds[0], *rest]
        moment = received
        status_index = 0
        current: int | None = None
        newest_step: tuple[datetime, datetime, str] | None = None
        for index, kind in enumerate(kinds):
            moment += timedelta(minutes=rng.randrange(5, 600), seconds=rng.randrange(60))
            event_id = f"{code}.{index:03d}.{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
            if kind == "snapshot":
                current = statuses[status_index]
                status_index += 1
                envelope = snapshot(
                    code,
                    event_id=event_id,
                    emitted_at=moment,
                    status=current,
                    unit=unit,
                    KenhThucHien=rng.choice((1, 2, 2, 3)),
                    NgayTiepNhan=format_thoi_diem(received),
                    NgayHenTra=format_thoi_diem(received + timedelta(days=rng.choice((3, 7, 15)))),
                    **_status_dates(current, moment),
                )
                stream.status[code] = current
            else:
                officer = rng.choice(OFFICERS)
                step_at = moment - timedelta(seconds=rng.randrange(0, 120))
                envelope = progress(
                    code,
                    event_id=event_id,
                    emitted_at=moment,
                    step_at=step_at,
                    officer=officer,
                    status=current or 4,
                )
                stream.step_ids.add(event_id)
                order = (step_at.replace(microsecond=0), moment, event_id)
                if newest_step is None or order > newest_step:
                    newest_step = order
                    stream.responsible[code] = officer
            stream.event_ids.add(event_id)
            jitter = timedelta(minutes=rng.randrange(0, 6 * 60))
            timed.append((moment + jitter, envelope))
        stream.status.setdefault(code, None)
        stream.responsible.setdefault(code, None)
    timed.sort(key=lambda pair: pair[0])
    stream.messages = [(e["data"]["MaHoSo"].encode(), encode(e)) for _, e in timed]
    assert len(stream.messages) == len(stream.event_ids) == events
    return stream


def _status_dates(status: int, moment: datetime) -> dict[str, str]:
    if status == 3:
        return {"NgayTuChoi": format_thoi_diem(moment)}
    if status == 9:
        return {"NgayKetThucXuLy": format_thoi_diem(moment)}
    if status == 10:
        return {
            "NgayKetThucXuLy": format_thoi_diem(moment - timedelta(days=1)),
            "NgayTra": format_thoi_diem(moment),
        }
    return {}


# --------------------------------------------------------------------------- the group


class GroupOffsets:
    """Reads a consumer group's committed offsets over one connection, fast enough to poll
    every few milliseconds. It never subscribes, so it never joins the group under test."""

    def __init__(self, bootstrap: str, group_id: str, topic: str, partitions: int) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False}
        )
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]

    def committed(self) -> dict[int, int]:
        answer = self._consumer.committed(self._partitions, timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in answer}

    def total(self) -> int:
        return sum(self.committed().values())

    def settled_total(self) -> int:
        """After the committing process is gone: the total once it stops moving (a commit
        request already on the wire is still applied by the broker)."""
        previous = self.total()
        while True:
            time.sleep(0.3)
            current = self.total()
            if current == previous:
                return current
            previous = current

    def close(self) -> None:
        self._consumer.close()


@contextmanager
def group_offsets(
    broker: Broker, group_id: str, topic: str, partitions: int
) -> Iterator[GroupOffsets]:
    offsets = GroupOffsets(broker.bootstrap, group_id, topic, partitions)
    try:
        yield offsets
    finally:
        offsets.close()


def ingest_env(broker: Broker, database_url: str, topic: str, group_id: str) -> dict[str, str]:
    return {
        "DOISOAT_DATABASE_URL": database_url,
        "DOISOAT_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DOISOAT_KAFKA_TOPIC": topic,
        "DOISOAT_KAFKA_GROUP_ID": group_id,
        "DOISOAT_KAFKA_BATCH_MAX_MESSAGES": "200",
        "DOISOAT_KAFKA_POLL_TIMEOUT_MS": "100",
        "DOISOAT_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "DOISOAT_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
        "DOISOAT_KAFKA_RETRY_BACKOFF_SECONDS": "0.2",
    }


@dataclass(frozen=True)
class Frozen:
    """The world while the process is paused: its committed offsets and stored rows."""

    committed: int
    rows: int
    probes: int


async def freeze_at_worst_moment(
    offsets: GroupOffsets,
    engine: AsyncEngine,
    process: ServiceProcess,
    low: int,
    high: int,
    rng: random.Random,
) -> Frozen:
    """Pause the process (SIGSTOP) at the worst moment to die: a batch committed in the
    database, its offsets not yet committed to Kafka. Once the committed total reaches ``low``,
    the process is paused at random instants; while paused, whatever it had already sent
    lands (the settle delay), nothing more can leave it, and the test compares the committed
    offsets with the rows in ``events``. More rows than offsets: caught in the window, return
    with the process still paused. Otherwise resume and try again; at ``high`` give up on the
    window and return paused anyway. Call within a timeout."""
    probes = 0
    async with engine.connect() as connection:

        async def rows() -> int:
            count = await connection.execute(select(func.count()).select_from(Event))
            await connection.rollback()
            return count.scalar_one()

        while offsets.total() < low:
            assert process.is_running(), f"ingest died:\n{process.log_tail()}"
            await asyncio.sleep(0.02)
        while True:
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            process.pause()
            probes += 1
            await asyncio.sleep(0.05)
            committed, stored = offsets.total(), await rows()
            assert committed <= stored, "offsets committed before the rows they cover"
            if stored > committed or committed >= high:
                assert committed <= high + 1_000, f"committed {committed} before the test acted"
                return Frozen(committed, stored, probes)
            process.resume()
            assert process.is_running(), f"ingest died:\n{process.log_tail()}"


def wait_for_end(offsets: GroupOffsets, ends: dict[int, int], process: ServiceProcess) -> None:
    deadline = time.monotonic() + 60
    while (committed := offsets.committed()) != ends:
        assert process.is_running(), f"ingest died:\n{process.log_tail()}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"committed {committed}, end {ends}:\n{process.log_tail()}")
        time.sleep(0.1)


def outcome_counts(process: ServiceProcess, expected_total: int) -> dict[str, int]:
    """The process's ``doisoat_ingest_events_total`` by outcome, once they add up (the
    counters move right after the offset commit that the test has already seen)."""
    deadline = time.monotonic() + 10
    while True:
        samples = process.metrics()
        counts = {
            outcome: int(samples.get((EVENTS_TOTAL, frozenset({("outcome", outcome)})), 0))
            for outcome in OUTCOMES
        }
        if sum(counts.values()) >= expected_total or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


# --------------------------------------------------------------------------- the database


def observer_engine(database_url: str) -> AsyncEngine:
    """The test's own connections, named so they can be told apart from the service's."""
    return create_engine(
        database_url, connect_args={"server_settings": {"application_name": TEST_APP_NAME}}
    )


async def settled_event_count(engine: AsyncEngine) -> int:
    """Rows in ``events`` once no other session is left on the database: a transaction whose
    COMMIT reached the server before the kill is then either visible or gone, never pending."""
    deadline = time.monotonic() + 15
    async with engine.connect() as connection:
        while True:
            others = (
                await connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND backend_type = 'client backend' AND application_name <> :mine"
                    ),
                    {"mine": TEST_APP_NAME},
                )
            ).scalar_one()
            await connection.rollback()
            if others == 0:
                break
            assert time.monotonic() < deadline, f"{others} sessions still open on the database"
            await asyncio.sleep(0.05)
        return (await connection.execute(select(func.count()).select_from(Event))).scalar_one()


async def assert_database_holds(engine: AsyncEngine, stream: Stream) -> None:
    async with engine.connect() as connection:
        event_ids = (await connection.execute(select(Event.event_id))).scalars().all()
        step_ids = (await connection.execute(select(ProgressStep.event_id))).scalars().all()
        dead_letters = (
            await connection.execute(select(func.count()).select_from(DeadLetter))
        ).scalar_one()
        dossiers = (
            await connection.execute(select(Dossier.code, Dossier.status, Dossier.responsible))
        ).all()
    assert len(event_ids) == len(stream.event_ids)
    assert set(event_ids) == stream.event_ids
    assert dead_letters == 0
    assert len(step_ids) == len(stream.step_ids)
    assert set(step_ids) == stream.step_ids
    assert {code: status for code, status, _ in dossiers} == stream.status
    assert {code: responsible for code, _, responsible in dossiers} == stream.responsible


def new_topic(broker: Broker, partitions: int) -> str:
    name = f"tthc.hoso.events.crash.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, partitions)
    return name


# --------------------------------------------------------------------------- the tests


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    broker: Broker, pg_database_url: str, tmp_path: Path
) -> None:
    total_events = 50_000
    stream = build_stream(dossiers=5_000, events=total_events, seed=20241021)
    topic = new_topic(broker, partitions=3)
    group_id = f"doisoat-crash-{uuid.uuid4().hex[:8]}"
    produce(broker.bootstrap, topic, stream.messages)
    ends = await end_offsets(broker.bootstrap, topic)
    assert sum(ends.values()) == total_events
    env = ingest_env(broker, pg_database_url, topic, group_id)
    engine = observer_engine(pg_database_url)
    try:
        with group_offsets(broker, group_id, topic, 3) as offsets:
            with start_service("ingest", env=env, log_path=tmp_path / "first.log") as first:
                try:
                    async with asyncio.timeout(45):
                        frozen = await freeze_at_worst_moment(
                            offsets, engine, first, 10_000, 35_000, random.Random(7)
                        )
                except TimeoutError:
                    pytest.fail(f"no moment to kill within 45 s:\n{first.log_tail()}")
                first.kill()
            assert first.returncode == -9
            committed_at_kill = offsets.settled_total()
            rows_at_kill = await settled_event_count(engine)
            print(
                f"\nSIGKILL: {frozen}, committed at kill {committed_at_kill}, "
                f"rows at kill {rows_at_kill}"
            )
            assert 0 < committed_at_kill < total_events
            assert committed_at_kill <= rows_at_kill < total_events

            with start_service("ingest", env=env, log_path=tmp_path / "second.log") as second:
                wait_for_end(offsets, ends, second)
                redelivered = total_events - committed_at_kill
                counts = outcome_counts(second, redelivered)
            print(f"restart: {counts}")
        await assert_database_holds(engine, stream)
    finally:
        await engine.dispose()
    assert counts["dead_letter"] == 0
    assert counts["stored"] + counts["stale"] + counts["duplicate"] == redelivered
    assert counts["duplicate"] == rows_at_kill - committed_at_kill


async def test_sigterm_during_stream_commits_or_redelivers_never_half_applies(
    broker: Broker, pg_database_url: str, tmp_path: Path
) -> None:
    total_events = 20_000
    stream = build_stream(dossiers=2_000, events=total_events, seed=20241106)
    topic = new_topic(broker, partitions=3)
    group_id = f"doisoat-crash-{uuid.uuid4().hex[:8]}"
    produce(broker.bootstrap, topic, stream.messages)
    ends = await end_offsets(broker.bootstrap, topic)
    assert sum(ends.values()) == total_events
    env = ingest_env(broker, pg_database_url, topic, group_id)
    engine = observer_engine(pg_database_url)
    try:
        with group_offsets(broker, group_id, topic, 3) as offsets:
            with start_service("ingest", env=env, log_path=tmp_path / "first.log") as first:
                try:
                    async with asyncio.timeout(45):
                        frozen = await freeze_at_worst_moment(
                            offsets, engine, first, 5_000, 14_000, random.Random(11)
                        )
                except TimeoutError:
                    pytest.fail(f"no moment to stop within 45 s:\n{first.log_tail()}")
                signalled = time.monotonic()
                first.terminate()  # pending while paused, delivered on resume
                first.resume()
                exit_code = first.wait(30)
                stop_seconds = time.monotonic() - signalled
                log = first.log_text()
            committed_at_stop = offsets.settled_total()
            rows_at_stop = await settled_event_count(engine)
            print(
                f"\nSIGTERM: {frozen}, exit {exit_code} after {stop_seconds:.2f}s, "
                f"committed at stop {committed_at_stop}, rows at stop {rows_at_stop}"
            )
            assert 0 < committed_at_stop < total_events
            assert rows_at_stop == committed_at_stop, "a graceful stop commits what it stored"

            with start_service("ingest", env=env, log_path=tmp_path / "second.log") as second:
                wait_for_end(offsets, ends, second)
                redelivered = total_events - committed_at_stop
                counts = outcome_counts(second, redelivered)
            print(f"restart: {counts}")
        await assert_database_holds(engine, stream)
    finally:
        await engine.dispose()
    assert counts["dead_letter"] == 0
    assert counts["stored"] + counts["stale"] + counts["duplicate"] == redelivered
    assert counts["duplicate"] == 0
    assert exit_code == 0, f"graceful stop must exit 0, got {exit_code}:\n{log[-3000:]}"
