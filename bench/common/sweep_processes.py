"""The full re-judgement by ``doisoat reconciler`` OS processes, as the service runs it."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.console import load_average, say
from bench.common.figures import Report, mib, target_verdict
from bench.common.planted import Seeded
from bench.common.pyspy import start_py_spy, stop_py_spy
from bench.common.sampling import ProcessSampler
from bench.common.sweep_diagnostics import py_spy_summary
from bench.common.sweeps import (
    SWEEP_TARGET,
    SWEEP_TARGET_SECONDS,
    due_left,
    kind_table,
    open_by_kind,
    reschedule,
    reset_discrepancies,
)
from tests.support.processes import ServiceProcess, start_service


async def sweep_processes(
    engine: AsyncEngine,
    db_url: str,
    seeded: Seeded,
    report: Report,
    *,
    processes: int,
    chunk_size: int,
    py_spy_dir: Path | None = None,
) -> None:
    """``processes`` × ``doisoat reconciler``: wall time from the reschedule to no due row."""
    await reset_discrepancies(engine)
    env = {
        "DOISOAT_DATABASE_URL": db_url,
        "DOISOAT_RECONCILE_CHUNK_SIZE": str(chunk_size),
        "DOISOAT_RECONCILE_POLL_SECONDS": "0.2",
    }
    what = "py-spy sweep (not a timing)" if py_spy_dir else "first sweep"
    report.add(
        f"(a) {processes} × `doisoat reconciler` {what}: chunk {chunk_size}, load {load_average()}"
    )
    started_processes: list[ServiceProcess] = []
    spies: list[subprocess.Popen[bytes]] = []
    sampler: ProcessSampler[int] | None = None
    try:
        for _ in range(processes):
            started_processes.append(await asyncio.to_thread(start_service, "reconciler", env=env))
        pids = [p.pid for p in started_processes]
        startup = await wait_idle(started_processes)
        report.add(
            "    startup: each process refreshes its gauges (KPIs included) before it idles: "
            + ", ".join(f"{seconds:.1f} s" for seconds in startup)
            + " after /healthz; the sweep starts after that"
        )
        sampler = ProcessSampler({pid: pid for pid in pids})
        sampler.start()
        cpu_before = sampler.cpu()
        # A process may judge every dossier at start-up already (a new rules revision, or a
        # database no reconciler process has judged): only what follows the reschedule counts.
        judged_at_start = [_judged(p) for p in started_processes]
        if any(judged_at_start):
            report.add(f"    dossiers judged during start-up: {judged_at_start} (not counted)")
        if py_spy_dir is not None:
            spies = [start_py_spy(pid, py_spy_dir / f"reconciler-{pid}.txt") for pid in pids]
            await asyncio.sleep(1.0)
        started = time.perf_counter()
        reschedule_seconds = await reschedule(engine)
        while await due_left(engine):  # noqa: ASYNC110 (polling another process's progress)
            await asyncio.sleep(0.1)
        wall = time.perf_counter() - started
        sampler.stop()
        cpu_after = sampler.cpu()
        cpu = {pid: cpu_after[pid] - cpu_before[pid] for pid in pids}
        judged = [
            _judged(p) - at_start
            for p, at_start in zip(started_processes, judged_at_start, strict=True)
        ]
        for spy in spies:
            stop_py_spy(spy)
    finally:
        if sampler is not None:
            sampler.stop()
        for spy in spies:
            stop_py_spy(spy)
        for process in started_processes:
            if report.failures or process.returncode not in (None, 0):
                say(process.log_tail(10))
            await asyncio.to_thread(process.cleanup)
    report.add(
        f"    wall {wall:.1f} s from reschedule_all to no due row (reschedule_all "
        f"{reschedule_seconds:.1f} s of it)  "
        + target_verdict(wall <= SWEEP_TARGET_SECONDS, SWEEP_TARGET)
        + f"; {sum(judged) / wall:,.0f} dossiers/s"
    )
    report.add(
        "    per process: "
        + "; ".join(
            f"{count:,} judged, CPU {cpu[pid]:.1f} s, RSS peak {mib(sampler.peak[pid])} "
            f"(start {mib(sampler.first[pid])})"
            for count, pid in zip(judged, pids, strict=True)
        )
    )
    if py_spy_dir is None:
        report.figures[f"rejudge_{processes}_processes_chunk_{chunk_size}_s"] = wall
    found = await open_by_kind(engine)
    ok, lines = kind_table(found, seeded.planted)
    report.add(f"    unresolved discrepancies by kind: {'as planted' if ok else 'NOT AS PLANTED'}")
    if not ok:
        for line in lines:
            report.add(line)
        report.failures.append(f"{processes} processes, chunk {chunk_size}: not as planted")
    if sum(judged) != seeded.codes:
        report.failures.append(
            f"{processes} processes, chunk {chunk_size}: judged {sum(judged):,} of {seeded.codes:,}"
        )
    if py_spy_dir is not None:
        for line in py_spy_summary([py_spy_dir / f"reconciler-{pid}.txt" for pid in pids], wall):
            report.add(line)
    report.add()


def _judged(process: ServiceProcess) -> int:
    return int(process.metric("doisoat_reconcile_dossiers_total"))


async def wait_idle(
    processes: Sequence[ServiceProcess], limit_seconds: float = 600.0
) -> list[float]:
    """Until each process has finished its first pass (the last-sweep gauge is set)."""
    started = time.perf_counter()
    waited: list[float] = []
    for process in processes:
        while not await asyncio.to_thread(
            process.metric, "doisoat_reconcile_last_sweep_timestamp_seconds"
        ):
            if time.perf_counter() - started > limit_seconds:
                raise TimeoutError(f"{process!r} did not finish its first pass")
            await asyncio.sleep(0.2)
        waited.append(time.perf_counter() - started)
    return waited
