"""Memory and CPU of the processes under test, sampled beside the load the main thread drives."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

import psutil

K = TypeVar("K", bound=Hashable)


class ProcessSampler(threading.Thread, Generic[K]):
    """Resident memory of some processes every ``interval`` seconds: ``first`` (at creation),
    ``peak`` and ``last``; CPU seconds read on demand with :meth:`cpu`.

    A thread of its own, because the main thread is busy producing the load and a peak lasts
    less than one of its steps. Processes are keyed as the caller likes (a name, a pid). A
    process that is gone keeps its last figures. Subclasses watch more by extending
    :meth:`sample`.
    """

    def __init__(
        self, processes: Mapping[K, int], interval: float = 0.05, name: str = "sampler"
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._processes = {key: psutil.Process(pid) for key, pid in processes.items()}
        self.first = {key: self._rss(key) for key in self._processes}
        self.peak = dict(self.first)
        self.last = dict(self.first)
        self.samples = 0
        self._interval = interval
        self._halt = threading.Event()

    def _rss(self, key: K) -> int:
        try:
            return int(self._processes[key].memory_info().rss)
        except psutil.Error:
            return 0

    def sample(self) -> None:
        """One pass over the processes (``samples`` counts the passes done before this one)."""
        for key in self._processes:
            rss = self._rss(key)
            if rss:
                self.last[key] = rss
                self.peak[key] = max(self.peak[key], rss)

    def run(self) -> None:
        while True:
            self.sample()
            self.samples += 1
            if self._halt.wait(self._interval):
                return

    def cpu(self) -> dict[K, float]:
        """User + system CPU seconds so far of each process still there."""
        seconds: dict[K, float] = {}
        for key, process in self._processes.items():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                seconds[key] = times.user + times.system
        return seconds

    def stop(self) -> None:
        """Idempotent, and harmless before :meth:`start`: cleanup paths call it again."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)
