"""Ingest throughput benchmark: Kafka → ``doisoat ingest`` → PostgreSQL, against a COPY baseline.

1. generates N contract-shaped envelopes (snapshots and progress steps of ``--dossiers`` dossiers,
   ~1 % redelivered duplicates, some snapshots out of order) and produces them, keyed by MaHoSo,
   to a fresh topic (on a tansu broker started here unless ``--bootstrap`` is given);
2. creates and migrates a fresh PostgreSQL database, starts ``doisoat ingest`` as a separate OS
   process (``--consumers N``: N of them in one group; RSS sampled every 100 ms) and times it
   from spawn until every event is in PostgreSQL and the group's committed offsets equal the
   end offsets;
3. loads the very same rows (read back from ``events``, ``progress_steps``, ``dossiers``) into
   ``bench_*`` tables of the same shape with COPY, as the floor of what PostgreSQL can take;
4. prints the figures, and cleans up (consumer, database, broker or topic) even on Ctrl-C.

Run from the repository root: ``.venv/bin/python bench/ingest.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson
from confluent_kafka.admin import AdminClient

if __package__ in (None, ""):  # run as a script (``python bench/ingest.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.console import ignore_interrupts, sigterm_as_interrupt
from bench.common.database import BenchDatabase, postgres_summary
from bench.common.figures import mib
from bench.common.ingest_consumers import (
    Consumer,
    OffsetWatcher,
    RssSampler,
    read_metrics,
    start_consumer,
    wait_until_ingested,
)
from bench.common.ingest_workload import DUPLICATE_SHARE, generate
from bench.common.pyspy import start_py_spy, stop_py_spy
from services.ingest.config import IngestSettings
from tests.support.broker import Broker, create_topic, end_offsets, produce
from tests.support.postgres import asyncpg_dsn

#: ``--py-spy FILE``: py-spy's output format by the file's suffix.
PY_SPY_FORMATS = {".svg": "flamegraph", ".txt": "raw", ".json": "speedscope"}


# ---------------------------------------------------------------------------------- COPY


@dataclass
class CopyResult:
    seconds: float
    per_table: dict[str, tuple[int, float]]
    counts: dict[str, int]


async def copy_baseline(db_url: str) -> CopyResult:
    """COPY the rows ingest wrote into empty ``bench_*`` tables of the same shape (and indexes).

    The rows are read back first (untimed), so both paths write exactly the same data; only the
    COPY statements, in one transaction, are timed. ``LIKE … INCLUDING ALL`` copies the primary
    keys and indexes but not the foreign key of ``progress_steps`` to ``events``.
    """
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        tables = ("events", "progress_steps", "dossiers")
        rows: dict[str, list[asyncpg.Record]] = {}
        columns: dict[str, list[str]] = {}
        for table in tables:
            rows[table] = await connection.fetch(f"SELECT * FROM {table}")
            attributes = await connection.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                table,
            )
            columns[table] = [row["attname"] for row in attributes]
            await connection.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
        records = {table: [tuple(record) for record in rows[table]] for table in tables}
        counts = {table: len(rows[table]) for table in tables}
        await connection.execute("CHECKPOINT")
        per_table: dict[str, tuple[int, float]] = {}
        started = time.perf_counter()
        async with connection.transaction():
            for table in tables:
                table_started = time.perf_counter()
                await connection.copy_records_to_table(
                    f"bench_{table}",
                    records=records[table],
                    columns=columns[table],
                )
                per_table[table] = (counts[table], time.perf_counter() - table_started)
        seconds = time.perf_counter() - started
        return CopyResult(seconds, per_table, counts)
    finally:
        await connection.close()


# ---------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Kafka → doisoat ingest → PostgreSQL throughput, against a COPY baseline."
    )
    parser.add_argument("--events", type=int, default=200_000, help="messages (default 200000)")
    parser.add_argument("--dossiers", type=int, default=20_000, help="dossiers (default 20000)")
    parser.add_argument("--partitions", type=int, default=4, help="topic partitions (default 4)")
    parser.add_argument(
        "--consumers",
        type=int,
        default=1,
        help="`doisoat ingest` processes in one consumer group (default 1; the scale-out)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="DOISOAT_KAFKA_BATCH_MAX_MESSAGES for the consumer (default: the service's)",
    )
    parser.add_argument(
        "--bootstrap", default=None, help="use this Kafka broker instead of starting tansu"
    )
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the benchmark database afterwards"
    )
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        default=None,
        help="also sample the consumer with py-spy into FILE (.svg flame graph, .txt collapsed "
        "stacks, .json speedscope); py-spy must be installed (pip install py-spy)",
    )
    parser.add_argument("--seed", type=int, default=20241021, help="workload seed")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (seconds)")
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="write the headline figures here"
    )
    args = parser.parse_args(argv)
    if args.dossiers < 1 or args.partitions < 1 or args.consumers < 1:
        parser.error("--dossiers, --partitions and --consumers must be positive")
    if args.events - int(args.events * DUPLICATE_SHARE) < 4 * args.dossiers:
        parser.error("need at least about 4 events per dossier (3 snapshots and a step)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sigterm_as_interrupt()
    batch = args.batch or int(
        os.environ.get("DOISOAT_KAFKA_BATCH_MAX_MESSAGES")
        or IngestSettings.model_fields["kafka_batch_max_messages"].default
    )
    tag = f"{time.strftime('%Y%m%d%H%M%S')}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    topic = f"bench.ingest.{tag}"
    group = f"doisoat-bench-{tag}"
    db_name = f"doisoat_bench_{tag}"
    work_dir = Path(tempfile.mkdtemp(prefix="doisoat-bench-"))
    broker: Broker | None = None
    database: BenchDatabase | None = None
    consumers: list[Consumer] = []
    sampler: RssSampler | None = None
    profiler: subprocess.Popen[bytes] | None = None
    watcher: OffsetWatcher | None = None
    try:
        # -- workload and broker
        started = time.perf_counter()
        workload = generate(args.events, args.dossiers, args.seed)
        generation_seconds = time.perf_counter() - started
        print(
            f"generated {len(workload.messages):,} messages "
            f"({mib(workload.payload_bytes, 1)}, {workload.snapshots:,} snapshots, "
            f"{workload.steps:,} steps, "
            f"{workload.duplicates:,} duplicates, {workload.out_of_order:,} late snapshots) "
            f"in {generation_seconds:.2f} s",
            file=sys.stderr,
        )
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            broker = Broker()
            broker.start()
            bootstrap = broker.bootstrap
        create_topic(bootstrap, topic, args.partitions)
        started = time.perf_counter()
        produce(
            bootstrap,
            topic,
            workload.messages,
            config={
                "linger.ms": 50,
                "batch.size": 1_000_000,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 1_048_576,
            },
            timeout=300,
        )
        production_seconds = time.perf_counter() - started
        ends = asyncio.run(end_offsets(bootstrap, topic))
        if sum(ends.values()) != len(workload.messages):
            raise RuntimeError(f"topic holds {sum(ends.values())} messages, expected {args.events}")
        print(
            f"produced to {topic} ({args.partitions} partitions) in {production_seconds:.2f} s",
            file=sys.stderr,
        )
        messages_total = len(workload.messages)
        workload.messages = []  # free the memory before the consumer runs

        # -- database
        database = BenchDatabase(db_name)
        db_url = database.create()
        settings = ("synchronous_commit", "fsync", "shared_buffers")
        pg_info = asyncio.run(postgres_summary(db_url, settings))

        # -- the consumer, timed from spawn
        load_at_start = os.getloadavg()[0]
        env = {
            "DOISOAT_DATABASE_URL": db_url,
            "DOISOAT_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DOISOAT_KAFKA_TOPIC": topic,
            "DOISOAT_KAFKA_GROUP_ID": group,
            "DOISOAT_KAFKA_BATCH_MAX_MESSAGES": str(batch),
        }
        started, spawned_at = time.perf_counter(), time.time()
        consumers = [
            start_consumer(env, work_dir, f"ingest-{number}") for number in range(args.consumers)
        ]
        sampler = RssSampler(
            {f"ingest-{number}": c.process.pid for number, c in enumerate(consumers)}, db_name
        )
        sampler.start()
        if args.py_spy:
            output = Path(args.py_spy)
            profiler = start_py_spy(
                consumers[0].process.pid,
                output,
                rate=100,
                output_format=PY_SPY_FORMATS.get(output.suffix, "flamegraph"),
                options=("--idle",),  # waits on PostgreSQL and Kafka show up as time too
                quiet=False,
                own_session=True,  # Ctrl-C reaches us; we stop it ourselves, in order
            )
        watcher = OffsetWatcher(bootstrap, group, topic, sorted(ends))
        progress = wait_until_ingested(
            consumers,
            watcher,
            sum(ends.values()),
            db_url,
            workload.unique,
            started,
            args.timeout,
            sampler,
        )
        watcher.stop()
        assert progress.done_at is not None and progress.first_commit_at is not None
        end_to_end = progress.done_at - started
        sampler.stop()
        if profiler is not None:
            stop_py_spy(profiler)
        figures = read_metrics([consumer.port for consumer in consumers])
        peak_rss = max(sampler.peak.values())
        for consumer in consumers:
            consumer.stop()

        # The group join, from the first consumer's log: it logs the (empty) revocation just
        # before its JoinGroup and the assignment once the group has formed.
        joining_at = consumers[0].logged_at("partitions revoked")
        assigned_at = consumers[0].logged_at("partitions assigned")
        startup_split = (
            f"spawn → join sent {joining_at - spawned_at:.2f} s, join held "
            f"{assigned_at - joining_at:.2f} s, assigned → first commit "
            f"{progress.first_commit_at - started - (assigned_at - spawned_at):.2f} s"
            if joining_at is not None and assigned_at is not None
            else "join not logged"
        )

        # -- the COPY floor
        copy = asyncio.run(copy_baseline(db_url))

        # -- report
        rate = messages_total / end_to_end
        startup = progress.first_commit_at - started
        steady = progress.done_at - progress.first_commit_at
        steady_events = messages_total - progress.first_commit_count
        copy_rate = messages_total / copy.seconds
        ingest_us = (
            1e6 * (sampler.cpu_seconds - progress.first_commit_cpu) / steady_events
            if steady_events
            else 0.0
        )
        postgres_us = (
            1e6
            * (sampler.postgres_cpu_seconds - progress.first_commit_postgres_cpu)
            / steady_events
            if steady_events
            else 0.0
        )
        mean_batch = figures.batch_seconds / figures.batches if figures.batches else 0.0
        mean_size = figures.batch_events / figures.batches if figures.batches else 0.0
        mean_tx = figures.tx_seconds / figures.tx_count if figures.tx_count else 0.0
        expected = {
            "events": workload.unique,
            "progress_steps": workload.steps,
            "dossiers": workload.dossiers,
        }
        checks = ", ".join(
            f"{table} {copy.counts[table]:,} "
            + ("ok" if copy.counts[table] == want else f"≠ expected {want:,}")
            for table, want in expected.items()
        )
        per_table = ", ".join(
            f"{table} {count:,} rows {seconds:.2f} s"
            for table, (count, seconds) in copy.per_table.items()
        )
        outcomes = ", ".join(
            f"{name} {count:,}" for name, count in sorted(figures.outcomes.items())
        )
        uncounted = messages_total - sum(figures.outcomes.values())
        if uncounted:
            outcomes += f"; {uncounted:,} messages in no counter (a repeat inside one batch)"
        lines = [
            ("events", f"{messages_total:,} ({workload.unique:,} distinct, "
             f"{workload.duplicates:,} duplicates, {workload.out_of_order:,} late snapshots)"),
            ("dossiers", f"{workload.dossiers:,}"),
            ("partitions", f"{args.partitions}, consumed by {args.consumers} "
             f"`doisoat ingest` process{'es' if args.consumers > 1 else ''}"),
            ("batch size", f"{batch:,} (DOISOAT_KAFKA_BATCH_MAX_MESSAGES)"),
            ("generate / produce", f"{generation_seconds:.2f} s / {production_seconds:.2f} s "
             f"({messages_total / production_seconds:,.0f} msg/s produced)"),
            ("end-to-end", f"{end_to_end:.2f} s (spawn of `doisoat ingest` → all committed)"),
            ("events/s", f"{rate:,.0f}"),
            ("  startup", f"{startup:.2f} s (spawn → first offset commit, "
             f"{progress.first_commit_count:,} events by then)"),
            ("", startup_split),
            ("  steady state", f"{steady:.2f} s, {steady_events / steady:,.0f} events/s "
             "(first commit → all committed)" if steady > 0 else "-"),
            ("COPY", f"{copy.seconds:.2f} s ({per_table})"),
            ("COPY events/s", f"{copy_rate:,.0f}"),
            ("ratio ours/COPY", f"{end_to_end / copy.seconds:.1f}× the time "
             f"({rate / copy_rate:.1%} of COPY's rate)"),
            ("peak RSS (ingest)", f"{mib(peak_rss, 1)} ({sampler.samples} samples"
             f"{', the largest process' if args.consumers > 1 else ''})"),
            ("CPU (ingest)", f"{sampler.cpu_seconds:.1f} s user+system "
             f"({sampler.cpu_seconds / end_to_end:.0%} of one core over the run)"),
            ("CPU (PostgreSQL)", f"{sampler.postgres_cpu_seconds:.1f} s in the backends of "
             f"the bench database ({sampler.postgres_cpu_seconds / end_to_end:.0%} of one core)"),
            ("CPU per event", f"ingest {ingest_us:.0f} µs + PostgreSQL {postgres_us:.0f} µs "
             f"in steady state: one ingest core alone caps at {1e6 / ingest_us:,.0f} events/s"
             if ingest_us > 0 else "-"),
            ("CPU (machine)", f"{sampler.machine_busy:.0%} busy over the run, "
             f"{sampler.machine_busy_steady:.0%} in steady state "
             f"(all {os.cpu_count()} CPUs, everything running)"),
            ("host", f"{os.cpu_count()} CPUs, load average {load_at_start:.2f} at start, "
             f"PostgreSQL {pg_info}"),
            ("batches", f"{figures.batches:,}, mean {mean_batch:.3f} s "
             f"(sum {figures.batch_seconds:.2f} s, p50 {figures.quantile(0.5)}, "
             f"p95 {figures.quantile(0.95)}), mean {mean_size:,.0f} events/batch"),
            ("  of which DB tx", f"mean {mean_tx:.3f} s (sum {figures.tx_seconds:.2f} s, "
             f"{figures.tx_seconds / figures.batch_seconds:.0%} of batch time)"
             if figures.batch_seconds else "-"),
            ("outcomes", outcomes),
            ("rows", checks),
        ]  # fmt: skip
        if args.json is not None:
            headline = {
                "end_to_end_events_per_s": round(rate),
                "startup_s": round(startup, 2),
                "join_held_s": (
                    round(assigned_at - joining_at, 2)
                    if joining_at is not None and assigned_at is not None
                    else None
                ),
                "steady_events_per_s": round(steady_events / steady) if steady > 0 else None,
                "copy_events_per_s": round(copy_rate),
                "share_of_copy_rate": round(rate / copy_rate, 3),
                "ingest_us_per_event": round(ingest_us, 1),
                "postgres_us_per_event": round(postgres_us, 1),
                "machine_busy": round(sampler.machine_busy, 3),
                "machine_busy_steady": round(sampler.machine_busy_steady, 3),
                "steady_share_of_copy_rate": (
                    round(steady_events / steady / copy_rate, 3) if steady > 0 else None
                ),
                "peak_rss_mib": round(peak_rss / 2**20, 1),
                "consumers": args.consumers,
                "load_at_start": round(load_at_start, 2),
                "rows_as_expected": all(copy.counts[t] == want for t, want in expected.items()),
            }
            args.json.write_bytes(orjson.dumps(headline, option=orjson.OPT_INDENT_2))
        width = max(len(label) for label, _ in lines)
        print()
        for label, value in lines:
            print(f"{label:<{width}}  {value}")
        if args.keep_db:
            print(f"{'database':<{width}}  {db_url} (kept)")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        ignore_interrupts()
        if watcher is not None and watcher.is_alive():
            watcher.stop()
        if sampler is not None:
            sampler.stop()
        if profiler is not None:
            stop_py_spy(profiler)
        for consumer in consumers:
            consumer.stop()
        if database is not None and not args.keep_db:
            with contextlib.suppress(Exception):
                database.drop()
        if broker is not None:
            broker.cleanup()
        elif args.bootstrap:
            admin = AdminClient({"bootstrap.servers": args.bootstrap})  # must outlive the future
            try:
                admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)
            except Exception as error:
                print(f"topic {topic} not deleted: {error}", file=sys.stderr)
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
