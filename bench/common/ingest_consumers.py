"""The ingest benchmark's consumers: ``doisoat ingest`` processes started and watched (RSS and
CPU, the group's committed offsets, the events stored) and their ``/metrics`` read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as KafkaPartition
from prometheus_client.parser import text_string_to_metric_families

from bench.common.sampling import ProcessSampler
from tests.support.postgres import asyncpg_dsn


class RssSampler(ProcessSampler[str]):
    """Peak resident set size of each consumer (``peak[name]``), sampled every 100 ms.

    Also keeps the CPU time of the consumers (summed), of the PostgreSQL backends serving
    ``database`` (they exit with their connections, so they are sampled while alive) and of the
    machine.
    """

    def __init__(self, pids: dict[str, int], database: str, interval: float = 0.1) -> None:
        super().__init__(pids, interval, name="rss-sampler")
        self._database = database
        self._machine_start = psutil.cpu_times()
        self._backends: dict[int, psutil.Process] = {}
        self._backend_cpu: dict[int, float] = {}
        self.cpu_seconds = 0.0
        self.machine_busy = 0.0
        self.machine_seconds = 0.0
        self._steady_start: Any = None
        self.machine_busy_steady = 0.0

    def mark_steady(self) -> None:
        """From now on also measure the machine's busy share of the steady state alone."""
        self._steady_start = psutil.cpu_times()

    @property
    def postgres_cpu_seconds(self) -> float:
        return sum(self._backend_cpu.values())

    def _sample_backends(self) -> None:
        if self.samples % 10 == 0:  # new connections: look for them once a second
            for process in psutil.process_iter(["name", "cmdline"]):
                cmdline = " ".join(process.info["cmdline"] or ())
                if process.pid not in self._backends and self._database in cmdline:
                    self._backends[process.pid] = process
        for pid, process in list(self._backends.items()):
            try:
                times = process.cpu_times()
            except psutil.Error:
                del self._backends[pid]
                continue
            self._backend_cpu[pid] = times.user + times.system

    @staticmethod
    def _busy_since(start: Any, now: Any) -> tuple[float, float]:
        """CPU seconds elapsed (all CPUs) and the busy share of them between two samples."""
        total = sum(now) - sum(start)
        idle = (now.idle + getattr(now, "iowait", 0.0)) - (
            start.idle + getattr(start, "iowait", 0.0)
        )
        return total, (total - idle) / total if total > 0 else 0.0

    def _sample_machine(self) -> None:
        now = psutil.cpu_times()
        self.machine_seconds, self.machine_busy = self._busy_since(self._machine_start, now)
        if self._steady_start is not None:
            _, self.machine_busy_steady = self._busy_since(self._steady_start, now)

    def sample(self) -> None:
        super().sample()
        self.cpu_seconds = max(self.cpu_seconds, sum(self.cpu().values()))
        self._sample_backends()
        self._sample_machine()


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _doisoat_command() -> list[str]:
    script = Path(sys.executable).parent / "doisoat"
    if script.exists():
        return [str(script), "ingest"]
    return [sys.executable, "-m", "services.app.cli", "ingest"]


@dataclass
class Consumer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    watchdog: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def logged_at(self, message: str) -> float | None:
        """Wall-clock time of the first log line with ``message`` (the JSON logs' ``time``)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = orjson.loads(line)
                if isinstance(entry, dict) and entry.get("message") == message:
                    return datetime.fromisoformat(entry["time"]).timestamp()
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.watchdog.poll() is None:
            self.watchdog.kill()
            self.watchdog.wait()


def start_consumer(env: dict[str, str], log_dir: Path, name: str = "ingest") -> Consumer:
    port = _free_port()
    log_path = log_dir / f"{name}.log"
    full_env = {
        **os.environ,
        **env,
        "DOISOAT_HTTP_PORT": str(port),
        "DOISOAT_HTTP_HOST": "127.0.0.1",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            _doisoat_command(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_dir,  # no stray .env from the caller's directory
            env=full_env,
            start_new_session=True,  # Ctrl-C reaches us; we stop it ourselves, in order
        )
    watchdog = subprocess.Popen(  # reap it should this process die without cleaning up
        [
            "sh",
            "-c",
            'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -KILL "$2" 2>/dev/null',
            "bench-watchdog",
            str(os.getpid()),
            str(process.pid),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Consumer(process, port, log_path, watchdog)


@dataclass
class Progress:
    first_commit_at: float | None = None
    first_commit_count: int = 0
    first_commit_cpu: float = 0.0
    first_commit_postgres_cpu: float = 0.0
    done_at: float | None = None
    committed: int = 0
    rows: int = 0


async def _count_events(db_url: str) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM events"))
    finally:
        await connection.close()


class OffsetWatcher(threading.Thread):
    """Sum of the group's committed offsets, read every 100 ms without joining the group.

    In a thread of its own: librdkafka calls can swallow a pending KeyboardInterrupt (an error
    raised after the signal replaces it), and signals are only handled in the main thread.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: list[int]) -> None:
        super().__init__(name="offset-watcher", daemon=True)
        self._config = {"bootstrap.servers": bootstrap, "group.id": group}
        self._partitions = [KafkaPartition(topic, partition) for partition in partitions]
        self._stop_event = threading.Event()
        self.committed = 0
        self.first_commit_at: float | None = None
        self.first_commit_count = 0
        self.error: str | None = None
        self.on_first_commit: list[Any] = []

    def run(self) -> None:
        watcher = KafkaConsumer({**self._config, "enable.auto.commit": False})
        try:
            while not self._stop_event.is_set():
                try:
                    answer = watcher.committed(self._partitions, timeout=5)
                except KafkaException as error:
                    self.error = str(error)
                else:
                    self.error = None
                    committed = sum(max(tp.offset, 0) for tp in answer if not tp.error)
                    if committed and self.first_commit_at is None:
                        self.first_commit_at = time.perf_counter()
                        self.first_commit_count = committed
                        for callback in self.on_first_commit:
                            callback()
                    self.committed = max(self.committed, committed)
                self._stop_event.wait(0.1)
        finally:
            watcher.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def wait_until_ingested(
    consumers: list[Consumer],
    watcher: OffsetWatcher,
    total: int,
    db_url: str,
    unique: int,
    started: float,
    limit_seconds: float,
    sampler: RssSampler,
) -> Progress:
    """Wait until the committed offsets reach the end offsets and ``events`` holds every event.

    Offsets are committed only after the database transaction of their batch, so offsets at the
    end mean every event is in PostgreSQL; ``count(*)`` then confirms it (and is polled until it
    does). Polling offsets rather than ``count(*)`` keeps the observer's CPU cost low.
    """
    progress = Progress()

    def first_commit() -> None:
        progress.first_commit_cpu = sampler.cpu_seconds
        progress.first_commit_postgres_cpu = sampler.postgres_cpu_seconds
        sampler.mark_steady()

    watcher.on_first_commit.append(first_commit)
    watcher.start()
    last_report = time.perf_counter()
    while True:
        now = time.perf_counter()
        for consumer in consumers:
            if consumer.process.poll() is not None:
                raise RuntimeError(
                    f"doisoat ingest exited with {consumer.process.returncode}:\n"
                    f"{consumer.log_tail()}"
                )
        if now - started > limit_seconds:
            tails = "\n".join(consumer.log_tail() for consumer in consumers)
            raise TimeoutError(
                f"not all events ingested after {limit_seconds:.0f} s "
                f"({watcher.committed:,}/{total:,} committed)\n{tails}"
            )
        committed = watcher.committed
        if committed >= total:
            progress.rows = asyncio.run(_count_events(db_url))
            if progress.rows >= unique:
                progress.done_at = time.perf_counter()
                progress.committed = committed
                progress.first_commit_at = watcher.first_commit_at
                progress.first_commit_count = watcher.first_commit_count
                return progress
        if now - last_report >= 2.0:
            last_report = now
            note = f"; offsets not readable: {watcher.error}" if watcher.error else ""
            print(
                f"  … {committed:>9,}/{total:,} committed after {now - started:5.1f} s "
                f"({committed / (now - started):,.0f} ev/s so far){note}",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(0.1)


# ------------------------------------------------------------------------------- metrics


@dataclass
class ConsumerMetrics:
    batches: int = 0
    batch_seconds: float = 0.0
    batch_events: float = 0.0
    batch_buckets: list[tuple[float, float]] = field(default_factory=list)
    tx_count: int = 0
    tx_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def quantile(self, q: float) -> str:
        """Upper bound of the histogram bucket holding quantile ``q``."""
        if not self.batches:
            return "-"
        for bound, cumulative in self.batch_buckets:
            if cumulative >= q * self.batches:
                return "> 30 s" if bound == float("inf") else f"≤ {bound:g} s"
        return "-"


def read_metrics(ports: list[int]) -> ConsumerMetrics:
    """The consumers' batch and outcome metrics, summed over the processes."""
    result = ConsumerMetrics()
    buckets: dict[float, float] = {}
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        _add_metrics(result, buckets, text)
    result.batch_buckets = sorted(buckets.items())
    return result


def _add_metrics(result: ConsumerMetrics, buckets: dict[float, float], text: str) -> None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if family.name == "doisoat_ingest_batch_duration_seconds":
                if labels.get("transport") != "kafka":
                    continue
                if sample.name.endswith("_count"):
                    result.batches += int(sample.value)
                elif sample.name.endswith("_sum"):
                    result.batch_seconds += sample.value
                elif sample.name.endswith("_bucket"):
                    bound = float(labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
            elif family.name == "doisoat_ingest_batch_size_events":
                if labels.get("transport") == "kafka" and sample.name.endswith("_sum"):
                    result.batch_events += sample.value
            elif family.name == "doisoat_db_transaction_duration_seconds":
                if labels.get("name") == "ingest_batch":
                    if sample.name.endswith("_count"):
                        result.tx_count += int(sample.value)
                    elif sample.name.endswith("_sum"):
                        result.tx_seconds += sample.value
            elif family.name == "doisoat_ingest_events" and sample.name.endswith("_total"):
                outcome = labels["outcome"]
                result.outcomes[outcome] = result.outcomes.get(outcome, 0) + int(sample.value)
