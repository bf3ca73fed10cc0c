"""The reconciler loop: drain due dossiers in chunks, and refresh the gauges every sweep interval.

Several loops may run side by side (processes or machines): each chunk is claimed with
``FOR UPDATE SKIP LOCKED``, so no dossier is judged by two at once, and the partial unique index
on unresolved (dossier, kind) is the last line of defence against doubles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reconciler import rejudge, schedule, service
from services.reconciler.config import ReconcilerSettings
from services.reconciler.kpis import stored
from services.reconciler.kpis.formulas import Period
from services.reconciler.kpis.service import Scope, unit_kpis
from services.reconciler.retention import PersonalDataRetention
from services.reconciler.watermark import current_watermark, lag_seconds
from services.reconciler.writes import Change
from shared import metrics
from shared.clock import VN_TZ, Clock
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.models import Discrepancy
from shared.vocabulary import Kind, Severity

log = logging.getLogger("doisoat.reconciler")

KPI_NAMES = ("on_time", "online", "digitised", "in_system")
PROGRESS_EVERY_SECONDS = 10.0

ChangeHook = Callable[[AsyncConnection, Sequence[Change], datetime], Awaitable[object]]


class Reconciler:
    name = "reconciler"

    def __init__(
        self,
        settings: ReconcilerSettings,
        engine: AsyncEngine,
        clock: Clock,
        *,
        on_changes: ChangeHook | None = None,
    ) -> None:
        """``on_changes`` runs in the same transaction as the changes (the alerts outbox)."""
        self._settings = settings
        self._on_changes = on_changes
        self._engine = engine
        self._clock = clock
        self.calendar = settings.calendar()
        self.rule_settings = settings.rule_settings(self.calendar)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_sweep = 0.0
        self._last_kpi_weeks = 0.0
        months = settings.personal_data_retention_months
        self._retention = (
            None if months is None else PersonalDataRetention(engine, clock, months=months)
        )

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Ask for a pass now (new facts were committed in this process)."""
        self._wake.set()

    async def run(self) -> None:
        settings_checked = False
        while not self._stopping.is_set():
            try:
                if not settings_checked:
                    await self.rejudge_if_settings_changed()
                    settings_checked = True
                await self.drain()
                if time.monotonic() - self._last_sweep >= self._settings.sweep_interval_seconds:
                    await self.refresh_gauges()
                    self._last_sweep = time.monotonic()
                    metrics.RECONCILE_LAST_SWEEP.set(time.time())
                    if self._retention is not None:
                        await self._retention.run_due()
                if (
                    time.monotonic() - self._last_kpi_weeks
                    >= self._settings.kpi_weeks_refresh_minutes * 60
                ):
                    await self.refresh_kpi_weeks()
                    self._last_kpi_weeks = time.monotonic()
            except Exception:
                log.exception("reconcile pass failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self._settings.reconcile_poll_seconds
                )

    async def rejudge_if_settings_changed(self) -> int:
        """Once at start: every dossier is judged again if the judging settings changed."""
        async with unit_of_work(self._engine, "rejudge_check") as connection:
            return await rejudge.rejudge_if_settings_changed(
                connection, self._settings, now=self._clock()
            )

    async def drain(self, on_chunk: Callable[[service.Judgement], None] | None = None) -> int:
        """Judge every dossier due now, chunk by chunk; returns how many were judged.

        A long drain (a re-judgement of everything, a backlog) logs its progress every
        :data:`PROGRESS_EVERY_SECONDS`; ``on_chunk`` sees each chunk's judgement.
        """
        started = time.perf_counter()
        last_progress = started
        judged = 0
        while not self._stopping.is_set():
            count = await self.reconcile_chunk(on_chunk)
            judged += count
            if count == 0:
                break
            if time.perf_counter() - last_progress >= PROGRESS_EVERY_SECONDS:
                last_progress = time.perf_counter()
                async with self._engine.connect() as connection:
                    remaining = await rejudge.due_count(connection, now=self._clock())
                log.info("reconciling", extra={"judged": judged, "remaining": remaining})
        if judged:
            metrics.RECONCILE_SWEEP_SECONDS.observe(time.perf_counter() - started)
            log.info("reconciled", extra={"dossiers": judged})
        return judged

    async def reconcile_chunk(
        self, on_chunk: Callable[[service.Judgement], None] | None = None
    ) -> int:
        started = time.perf_counter()
        now = self._clock()
        async with unit_of_work(self._engine, "reconcile") as connection:
            delivered_until = await current_watermark(
                connection,
                now=now,
                kafka_enabled=self._settings.kafka_enabled,
                stale_after=self._settings.watermark_stale_after,
            )
            metrics.INGEST_WATERMARK_LAG.set(lag_seconds(delivered_until, now=now))
            claimed = await schedule.claim_due(
                connection,
                now=now,
                delivered_until=delivered_until,
                limit=self._settings.reconcile_chunk_size,
            )
            if not claimed:
                return 0
            codes = list(claimed)
            outcome = await service.reconcile(
                connection,
                codes,
                now=now,
                calendar=self.calendar,
                settings=self.rule_settings,
                claimed=claimed,
                delivered_until=delivered_until,
            )
            if self._on_changes is not None and outcome.changes:
                await self._on_changes(connection, outcome.changes, now)
        if on_chunk is not None:
            on_chunk(outcome)
        metrics.RECONCILE_DOSSIERS.inc(outcome.evaluated)
        metrics.RECONCILE_CHUNK_SECONDS.observe(time.perf_counter() - started)
        for change in outcome.changes:
            if change.action == "opened":
                metrics.DISCREPANCIES_OPENED.labels(change.kind, change.severity).inc()
                if change.report_received_at is not None:
                    metrics.REPORT_TO_DISCREPANCY_SECONDS.observe(
                        max((now - change.report_received_at).total_seconds(), 0)
                    )
            elif change.action == "resolved":
                metrics.DISCREPANCIES_RESOLVED.labels(change.kind).inc()
            log.info(
                "discrepancy " + change.action,
                extra={
                    "discrepancy_id": change.discrepancy_id,
                    "dossier_code": change.dossier_code,
                    "kind": change.kind,
                    "severity": change.severity,
                },
            )
        return len(codes)

    async def refresh_kpi_weeks(self) -> None:
        """Count the past weeks the leaders' board reads again (:mod:`.kpis.stored`).

        With several reconcilers, one that finds them counted in the last half interval leaves
        them; two that start at once both count, and the one that commits second finds the rows
        taken and leaves the other's counts, taken at the same time.
        """
        started = time.perf_counter()
        now = self._clock()
        half = timedelta(minutes=self._settings.kpi_weeks_refresh_minutes) / 2
        try:
            async with unit_of_work(self._engine, "reconciler_kpi_weeks") as connection:
                if await stored.counted_recently(connection, now=now, within=half):
                    return
                directory = await load_directory(connection)
                rows = await stored.refresh(connection, directory=directory, now=now)
        except IntegrityError:
            log.info("past weeks' KPI counts refreshed by another reconciler")
            return
        seconds = time.perf_counter() - started
        metrics.KPI_WEEKS_REFRESH_SECONDS.observe(seconds)
        metrics.KPI_WEEKS_COUNTED.set(time.time())
        log.info("past weeks' KPI counts refreshed", extra={"rows": rows, "seconds": seconds})

    async def refresh_gauges(self) -> None:
        """Gauges read from the database, so every reconciler process reports the same truth."""
        now = self._clock()
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(Discrepancy.unit_code, Discrepancy.kind, Discrepancy.severity, func.count())
                .where(Discrepancy.status.in_(service.UNRESOLVED))
                .group_by(Discrepancy.unit_code, Discrepancy.kind, Discrepancy.severity)
            )
            grouped = rows.all()
            directory = await load_directory(connection)
            today = now.astimezone(VN_TZ).date()
            kpis = await unit_kpis(
                connection,
                scope=Scope.of(directory, unit=None, key_units=None),
                period=Period(today.replace(day=1), today, as_of=now),
            )
        by_kind: dict[tuple[str, str], int] = defaultdict(int)
        by_unit: dict[tuple[str, str], int] = defaultdict(int)
        for unit_code, kind, severity, count in grouped:
            by_kind[(kind, severity)] += count
            by_unit[(directory.answering_unit(unit_code) or "unknown", kind)] += count
        for kind in Kind:
            for severity in Severity:
                metrics.DISCREPANCIES_OPEN.labels(kind.value, severity.value).set(
                    by_kind.get((kind.value, severity.value), 0)
                )
        metrics.DISCREPANCIES_ACTIVE_BY_UNIT.clear()
        for (unit, kind), count in by_unit.items():
            metrics.DISCREPANCIES_ACTIVE_BY_UNIT.labels(unit, kind).set(count)
        metrics.KPI_RATIO.clear()
        for item in kpis:
            for kpi in KPI_NAMES:
                share = item[f"{kpi}_pct"]
                if share is not None:
                    metrics.KPI_RATIO.labels(item["unit_code"], kpi).set(share / 100)
