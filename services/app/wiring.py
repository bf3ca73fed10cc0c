"""Process wiring: which background loops a process runs, and serving them with the ASGI app.

In one process (``doisoat run``) new facts wake the reconciler, and the reconciler's changes
write the alerts outbox through the change hook; run apart, each loop polls the database.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.app.console import load_settings, open_database, run_async
from shared.clock import system_clock
from shared.config import BaseDoisoatSettings

if TYPE_CHECKING:
    from services.alerts.config import AlertsSettings
    from services.alerts.planner import AlertPlanner
    from services.app.asgi import Worker
    from services.ingest.config import IngestSettings
    from services.reconciler.config import ReconcilerSettings
    from services.reconciler.worker import ChangeHook
    from services.reconciler.writes import Change
    from services.workspace.config import WorkspaceSettings

WorkerFactory = Callable[[AsyncEngine], Sequence["Worker"]]
log = logging.getLogger("doisoat")


@runtime_checkable
class JoinsEarly(Protocol):
    """A worker that can start joining its consumer group before the app is built."""

    async def join_early(self) -> None: ...

    async def leave(self) -> None: ...


def _web_modules() -> tuple[ModuleType, ModuleType]:
    """The app and its server: FastAPI, the routers and uvicorn, half a second of imports."""
    from services.app import asgi, server

    return asgi, server


def serve(
    settings: BaseDoisoatSettings,
    workers: WorkerFactory,
    *,
    serve_api: bool,
    workspace: WorkspaceSettings | None = None,
) -> None:
    """Serve the app (``/metrics``, ``/healthz``, ``/readyz`` included) and ``workers``.

    A worker that can (the Kafka consumer) starts joining its group first; the web stack is
    imported in a thread meanwhile, so the event loop carries the join on while it loads.
    """

    async def main() -> None:
        async with open_database(settings.database_url) as engine:
            built = workers(engine)
            joining = [w for w in built if isinstance(w, JoinsEarly)]
            for worker in joining:
                await worker.join_early()
            try:
                asgi, server = await asyncio.to_thread(_web_modules)
                readiness = {w.name: w.ready for w in built if hasattr(w, "ready")}
                wake = next(
                    (w.wake for w in built if w.name == "reconciler" and hasattr(w, "wake")), None
                )
                application = asgi.create_app(
                    settings,
                    engine=engine,
                    clock=system_clock,
                    workers=built,
                    serve_api=serve_api,
                    readiness=readiness,
                    on_new_facts=wake or (lambda: None),
                    workspace=workspace,
                )
            except BaseException:
                for worker in joining:
                    await worker.leave()
                raise
            log.info(
                "serving",
                extra={
                    "port": settings.http_port,
                    "api": serve_api,
                    "workers": [w.name for w in built],
                },
            )
            # What start-up built (modules, the app) lives as long as the process: frozen, the
            # collector's full passes no longer walk it while a large page is being built.
            gc.freeze()
            await server.serve_app(application, host=settings.http_host, port=settings.http_port)

    run_async(main())


def workers(
    ingest_settings: IngestSettings | None,
    reconciler_settings: ReconcilerSettings | None,
    alerts_settings: AlertsSettings | None,
) -> WorkerFactory:
    """The background loops of a process; in one process, new facts wake the reconciler.

    The reconciler writes the alerts outbox in its own transactions whenever a channel is
    configured, whether or not this process also runs the dispatcher. Each loop's modules are
    imported only by a process that runs it: ``doisoat ingest`` never loads the rules or the
    alert channels.
    """
    planner: AlertPlanner | None = None
    if reconciler_settings is not None or alerts_settings is not None:
        from services.alerts.config import AlertsSettings
        from services.alerts.planner import AlertPlanner

        planner = AlertPlanner(alerts_settings or load_settings(AlertsSettings))

    def build(engine: AsyncEngine) -> list[Worker]:
        built: list[Worker] = []
        wake: Callable[[], None] | None = None
        if reconciler_settings is not None and planner is not None:
            from services.reconciler.worker import Reconciler

            hook = outbox_hook(planner) if planner.active else None
            reconciler = Reconciler(reconciler_settings, engine, system_clock, on_changes=hook)
            wake = reconciler.wake
            built.append(reconciler)
        if alerts_settings is not None and planner is not None:
            from services.alerts.worker import AlertsWorker

            built.append(AlertsWorker(alerts_settings, engine, system_clock, planner))
        if ingest_settings is not None and ingest_settings.kafka_enabled:
            from services.ingest.consumer import KafkaIngestor

            built.append(KafkaIngestor(ingest_settings, engine, system_clock, on_committed=wake))
        return built

    return build


def outbox_hook(planner: AlertPlanner) -> ChangeHook:
    """The reconciler-to-alerts hand-off: changes become outbox rows in the same transaction."""

    async def write_outbox(
        connection: AsyncConnection, changes: Sequence[Change], now: datetime
    ) -> int:
        return await planner.on_changes(connection, changes, now=now)

    return write_outbox
