"""Real ``doisoat`` processes for end-to-end and crash tests.

A :class:`ServiceProcess` is one ``doisoat <command>`` child (``ingest``, ``api``, ``run``, …)
started with an explicit environment and its own free HTTP port. The helpers wait for
``/healthz`` (or ``/readyz``), read ``/metrics``, and end the process the way production
ends it: SIGTERM (a graceful stop) or SIGKILL (a crash, an OOM kill, a pulled plug).

The child inherits no ``DOISOAT_*`` variable from the test run and runs in its own
directory, so neither the developer's shell nor a stray ``.env`` changes what is tested.
Its stdout and stderr go to a log file; failures quote its tail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self, cast

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "ProcessExitedError",
    "ServiceProcess",
    "doisoat_command",
    "free_port",
    "start_service",
]

_KEEP_LOGS_ENV = "DOISOAT_KEEP_TEST_LOGS"


class ProcessExitedError(RuntimeError):
    """The process ended while the test was waiting for it to serve."""


def free_port() -> int:
    """A loopback port free at the time of asking (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        # getsockname() is typed Any; an AF_INET socket answers (host, port).
        return cast(int, sock.getsockname()[1])


def doisoat_command() -> list[str]:
    """The installed ``doisoat`` entry point of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("doisoat")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("doisoat")
    if found:
        return [found]
    return [sys.executable, "-m", "services.app.cli"]


class ServiceProcess:
    """One ``doisoat`` process on a loopback port.

    ``env`` holds the ``DOISOAT_*`` settings; ``DOISOAT_HTTP_HOST`` and ``DOISOAT_HTTP_PORT``
    are set here. Use it as a context manager (or call :meth:`stop`) so that a failing test
    never leaves the process behind; a watchdog also kills it if the test run itself dies.
    """

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = list(args)
        self.env = dict(env or {})
        self.port = port if port is not None else free_port()
        self._own_dir = tempfile.mkdtemp(prefix="doisoat-proc-") if cwd is None else None
        self.cwd = cwd if cwd is not None else Path(self._own_dir or ".")
        self.log_path = log_path if log_path is not None else self.cwd / "process.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- state

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("process not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """None while running; negative ``-N`` when ended by signal N (Popen's convention)."""
        return None if self._proc is None else self._proc.poll()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        return f"ServiceProcess({' '.join(self.args)!r}, port={self.port}, log={self.log_path})"

    # -- lifecycle

    def start(self) -> Self:
        """Launch without waiting; see :meth:`wait_healthy` and :func:`start_service`."""
        if self.is_running():
            raise RuntimeError(f"{self!r} already running")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
        environment.update(self.env)
        environment["DOISOAT_HTTP_HOST"] = "127.0.0.1"
        environment["DOISOAT_HTTP_PORT"] = str(self.port)
        environment.setdefault("PYTHONUNBUFFERED", "1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} port {self.port}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [*doisoat_command(), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=environment,
                start_new_session=True,  # a Ctrl-C in the terminal is not a test's SIGINT
            )
        self._start_watchdog(self._proc.pid)
        return self

    def send_signal(self, signum: int) -> None:
        if self.is_running():
            assert self._proc is not None
            self._proc.send_signal(signum)

    def terminate(self) -> None:
        """SIGTERM: what systemd, Docker and Kubernetes send to stop a service."""
        self.send_signal(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: frozen mid-instruction (a stalled VM, a long GC pause); see :meth:`resume`.

        Nothing the process has not yet written to a socket leaves it while paused, so a test
        can look at the world "as of this instant" and then kill or resume it.
        """
        self.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self.send_signal(signal.SIGCONT)

    def kill(self) -> int:
        """SIGKILL, then reap: a crash with no chance to clean up. Returns the exit status."""
        self.send_signal(signal.SIGKILL)
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        """Wait for the process to end; raises ``subprocess.TimeoutExpired``."""
        if self._proc is None:
            raise RuntimeError("process not started")
        code = self._proc.wait(timeout)
        self._stop_watchdog()
        return code

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, SIGKILL after ``timeout`` s; idempotent. Returns the exit status."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.send_signal(signal.SIGCONT)  # in case it was paused
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stop_watchdog()
        return self._proc.returncode

    def cleanup(self) -> None:
        """Stop, and remove the private directory unless ``$DOISOAT_KEEP_TEST_LOGS`` is set."""
        self.stop(5.0)
        if self._own_dir is not None and not os.environ.get(_KEEP_LOGS_ENV):
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- waiting and reading

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until ``/healthz`` answers 200."""
        self._wait_for("/healthz", timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until ``/readyz`` answers 200 (database and, when configured, Kafka reachable)."""
        self._wait_for("/readyz", timeout)

    def _wait_for(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if not self.is_running():
                raise ProcessExitedError(
                    f"{self!r} exited with {self.returncode} before {path} answered:\n"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(self.base_url + path, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self!r}: {path} not 200 after {timeout}s ({last}):\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(self.base_url + path, timeout=timeout)

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of ``/metrics``, keyed by (sample name, labels)."""
        response = self.get("/metrics")
        response.raise_for_status()
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    def metric(self, name: str, **labels: str) -> float:
        """One sample of ``/metrics`` (0 when absent, as for a counter never incremented)."""
        return self.metrics().get((name, frozenset(labels.items())), 0.0)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- internals

    def _start_watchdog(self, child_pid: int) -> None:
        """Kill the child if the test run dies without cleaning up (SIGKILL, os._exit)."""
        self._stop_watchdog()
        self._watchdog = subprocess.Popen(
            [
                "sh",
                "-c",
                'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -KILL "$2" 2>/dev/null',
                "doisoat-watchdog",
                str(os.getpid()),
                str(child_pid),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.poll() is None:
            watchdog.kill()
            watchdog.wait()


def start_service(
    *args: str,
    env: Mapping[str, str] | None = None,
    ready: bool = False,
    timeout: float = 30.0,
    log_path: Path | None = None,
) -> ServiceProcess:
    """Start ``doisoat <args>`` and return once it is healthy (``ready=True``: ready).

    The port is chosen here; if another process grabbed it between choosing and binding,
    the start is retried on a new port. The caller owns the result (use ``with``).
    """
    last: ProcessExitedError | None = None
    for _ in range(3):
        process = ServiceProcess(*args, env=env, log_path=log_path).start()
        try:
            if ready:
                process.wait_ready(timeout)
            else:
                process.wait_healthy(timeout)
        except ProcessExitedError as error:
            process.cleanup()
            if "address already in use" not in str(error).lower():
                raise
            last = error
            continue
        except BaseException:
            process.cleanup()
            raise
        return process
    assert last is not None
    raise last
