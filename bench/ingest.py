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
import gc
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

if __package__ in (None, ""):  # run as a script (``python bench/ingest.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.console import ignore_interrupts, sigterm_as_interrupt
from bench.common.database import BenchDatabase, postgres_summary
from bench.common.figures import mib
from bench.common.pyspy import start_py_spy, stop_py_spy
from bench.common.sampling import ProcessSampler
from services.ingest.config import IngestSettings
from tests.support.broker import Broker, create_topic, end_offsets, produce
from tests.support.postgres import asyncpg_dsn

SOURCE = "motcua-tinh"
BASE_TIME = datetime(2024, 9, 2, 7, 30)  # naive, Asia/Ho_Chi_Minh wall time

UNITS = [f"000.{a:02d}.{b:02d}.H08" for a in (0, 1, 2, 3) for b in range(10, 20)]
PROCEDURES = [
    ("1.004227", "Đăng ký biến động quyền sử dụng đất", "G09-TN01", "Đất đai", 7),
    ("1.001612", "Cấp giấy chứng nhận đăng ký hộ kinh doanh", "G09-KH02", "Thành lập hộ KD", 3),
    ("2.000908", "Chứng thực bản sao từ bản chính", "G09-TP05", "Chứng thực", 1),
    ("1.000894", "Đăng ký khai sinh", "G09-TP01", "Hộ tịch", 1),
    ("1.010733", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "G09-XD03", "Xây dựng", 15),
    ("2.001711", "Cấp đổi giấy phép lái xe", "G09-GT01", "Đường bộ", 5),
]
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thu Dung", "Võ Minh Đức"]
DEPARTMENTS = [
    "Bộ phận tiếp nhận và trả kết quả",
    "Chi nhánh Văn phòng đăng ký đất đai",
    "Phòng Tư pháp",
    "Phòng Kinh tế - Hạ tầng",
]
STEP_TEXTS = ["Tiếp nhận hồ sơ", "Thẩm định hồ sơ", "Trình ký", "Phê duyệt", "Chuyển trả kết quả"]
#: Status paths of a dossier's snapshots (DVCQG ``TrangThaiHoSo``) and their weights.
PATHS: list[tuple[tuple[int, ...], int]] = [
    ((2, 4, 9, 10), 45),
    ((2, 5, 9, 10), 15),
    ((2, 4, 5, 9), 10),
    ((2, 4, 9), 15),
    ((2, 4, 5), 10),
    ((4, 9, 10), 5),
]
DUPLICATE_SHARE = 0.01
#: ``--py-spy FILE``: py-spy's output format by the file's suffix.
PY_SPY_FORMATS = {".svg": "flamegraph", ".txt": "raw", ".json": "speedscope"}
OUT_OF_ORDER_SHARE = 0.03


# ------------------------------------------------------------------------------- workload


@dataclass
class Workload:
    messages: list[tuple[bytes, bytes]]
    dossiers: int
    snapshots: int
    steps: int
    duplicates: int
    out_of_order: int
    payload_bytes: int

    @property
    def unique(self) -> int:
        return self.snapshots + self.steps


class _Clock:
    """Moments as whole seconds after :data:`BASE_TIME`, formatted from lookup tables.

    ``strftime`` on ~700,000 moments took longer than producing the whole topic.
    """

    DAY = 86_400

    def __init__(self) -> None:
        self._days: dict[int, tuple[str, str]] = {}
        self._compact = [
            f"{h:02d}{m:02d}{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]
        self._iso = [
            f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]

    def _day(self, day: int) -> tuple[str, str]:
        known = self._days.get(day)
        if known is None:
            date = BASE_TIME + timedelta(days=day)
            known = self._days[day] = (date.strftime("%Y%m%d"), date.strftime("%Y-%m-%dT"))
        return known

    def thoi_diem(self, seconds: int) -> str:
        """``yyyyMMddHHmmss`` (UTC+7), the DVCQG date format."""
        day, rest = divmod(seconds + self._base_seconds, self.DAY)
        return self._day(day)[0] + self._compact[rest]

    def rfc3339(self, seconds: int) -> str:
        day, rest = divmod(seconds + self._base_seconds, self.DAY)
        return self._day(day)[1] + self._iso[rest] + "+07:00"

    _base_seconds = BASE_TIME.hour * 3_600 + BASE_TIME.minute * 60 + BASE_TIME.second


def generate(total: int, dossiers: int, seed: int) -> Workload:
    """``total`` messages over ``dossiers`` dossiers, interleaved by emission time."""
    gc.disable()  # hundreds of thousands of live tuples: the cyclic GC would rescan them often
    try:
        return _generate(total, dossiers, seed)
    finally:
        gc.enable()


def _generate(total: int, dossiers: int, seed: int) -> Workload:
    rng = random.Random(seed)
    clock = _Clock()
    fmt = clock.thoi_diem
    duplicates = int(total * DUPLICATE_SHARE)
    base = total - duplicates
    per, extra = divmod(base, dossiers)
    officers = {unit: [f"canbo{k:02d}.{unit[4:9]}" for k in range(8)] for unit in UNITS}
    paths = [path for path, _ in PATHS]
    weights = [weight for _, weight in PATHS]
    stream: list[tuple[float, bytes, bytes]] = []
    snapshots = steps = out_of_order = 0
    hour, day = 3_600, 86_400

    for number in range(dossiers):
        budget = per + (1 if number < extra else 0)
        path = rng.choices(paths, weights)[0]
        while len(path) > budget - 1:
            path = path[: budget - 1]
        unit = UNITS[number % len(UNITS)]
        code = f"{unit}-{number:06d}"
        key = code.encode()
        procedure, name, field_code, field_name, days = PROCEDURES[number % len(PROCEDURES)]
        submitted = rng.randrange(0, 60 * day)
        received = submitted + rng.randrange(60, 4 * hour)
        due = received + days * day
        moments = [received]
        for _ in path[1:]:
            moments.append(moments[-1] + rng.randrange(hour, 4 * day))
        data: dict[str, Any] = {
            "MaHoSo": code,
            "MaTTHC": procedure,
            "TenTTHC": name,
            "MaLinhVuc": field_code,
            "TenLinhVuc": field_name,
            "KenhThucHien": rng.choices((1, 2, 3), (45, 50, 5))[0],
            "ChuHoSo": rng.choice(NAMES),
            "NgayNopHoSo": fmt(submitted),
            "NgayTiepNhan": fmt(received),
            "NgayHenTra": fmt(due),
            "DonViXuLy": unit,
            "NoiNopHoSo": unit,
            "HoSoCoThanhPhanSoHoa": rng.choices((0, 1), (2, 8))[0],
        }
        apology = rng.random() < 0.1  # late: an apology letter sets a new date (contract §1)
        sends: list[tuple[float, bytes, bytes]] = []
        for index, (status, moment) in enumerate(zip(path, moments, strict=True)):
            data = dict(data, TrangThaiHoSo=status)
            if apology and index == 2:
                data["DanhSachXinLoi"] = [
                    {
                        "NgayYeuCau": fmt(due - 4 * hour),
                        "NgayHenTraTruoc": fmt(due),
                        "NgayHenTraMoi": fmt(due + 3 * day),
                        "LyDo": "Chờ ý kiến phối hợp của cơ quan liên quan",
                    }
                ]
            if status == 5:
                data["DanhSachHoSoBoSung"] = [
                    {
                        "NgayYeuCau": fmt(moment),
                        "NgayHenTraTruoc": fmt(due),
                        "NgayHenTraMoi": fmt(due + 5 * day),
                        "LyDo": "Bổ sung bản sao giấy tờ tùy thân",
                    }
                ]
            elif status == 9:
                data["NgayKetThucXuLy"] = fmt(moment)
            elif status == 10:
                data["NgayTra"] = fmt(moment)
                data["DanhSachGiayToKetQua"] = [
                    {"MaGiayToKetQua": f"KQ-{number:06d}", "DuongDanTepTinKetQua": f"kq/{code}.pdf"}
                ]
            emitted = moment + rng.randrange(1, 30)
            envelope = {
                "event_id": f"igate-{number:06d}-s{index + 1}",
                "type": "dossier.snapshot",
                "source": SOURCE,
                "emitted_at": clock.rfc3339(emitted),
                "data": data,
            }
            sends.append((emitted, key, orjson.dumps(envelope)))
        if len(sends) >= 2 and rng.random() < OUT_OF_ORDER_SHARE:
            # an older snapshot delivered after a newer one: it must not overwrite it
            index = rng.randrange(len(sends) - 1)
            _, key_, value = sends[index]
            sends[index] = (sends[index + 1][0] + rng.uniform(1, 600), key_, value)
            out_of_order += 1
        snapshots += len(path)
        dossier_officers = rng.sample(officers[unit], 3)
        span = moments[-1] - received + hour
        count = budget - len(path)
        for index in range(count):
            moment = received + span * (index + 1) // count
            emitted = moment + rng.randrange(1, 30)
            envelope = {
                "event_id": f"igate-{number:06d}-p{index + 1}",
                "type": "dossier.progress",
                "source": SOURCE,
                "emitted_at": clock.rfc3339(emitted),
                "data": {
                    "MaHoSo": code,
                    "NguoiXuLy": dossier_officers[index % 3],
                    "ChucDanh": "Chuyên viên",
                    "ThoiDiemXuLy": fmt(moment),
                    "PhongBanXuLy": DEPARTMENTS[index % len(DEPARTMENTS)],
                    "NoiDungXuLy": STEP_TEXTS[index % len(STEP_TEXTS)],
                    "TrangThai": 4,
                    "NgayBatDau": fmt(moment),
                    "NgayKetThucTheoQuyDinh": fmt(due),
                },
            }
            # steps arrive with some jitter, so they are out of order among themselves too
            sends.append((emitted + rng.uniform(0, 900), key, orjson.dumps(envelope)))
        steps += count
        stream.extend(sends)
    for index in rng.sample(range(len(stream)), duplicates):
        order, key, value = stream[index]  # redelivered verbatim, some time later
        stream.append((order + rng.uniform(60, 86_400), key, value))
    stream.sort(key=lambda item: item[0])
    messages = [(key, value) for _, key, value in stream]
    return Workload(
        messages=messages,
        dossiers=dossiers,
        snapshots=snapshots,
        steps=steps,
        duplicates=duplicates,
        out_of_order=out_of_order,
        payload_bytes=sum(len(value) for _, value in messages),
    )


# ------------------------------------------------------------------------------ consumer


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
