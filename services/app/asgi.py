"""The ASGI application of every doisoat process.

Each process (``doisoat api``, ``ingest``, ``reconciler``, ``alerts``, or all of them in
``doisoat run``) serves ``/metrics``, ``/healthz`` and ``/readyz``; the API routers are mounted
where the process serves the API, and background workers run inside the app's lifespan so that
one signal (SIGTERM → uvicorn shutdown) stops everything gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.links import ack_links_from
from services.app import ops
from shared import metrics
from shared.auth import KeyRing
from shared.clock import Clock, system_clock
from shared.config import BaseDoisoatSettings
from shared.db import database_reachable
from shared.web.errors import install_error_handlers
from shared.web.openapi import install_openapi

if TYPE_CHECKING:
    from services.workspace.config import WorkspaceSettings

log = logging.getLogger("doisoat.api")

WORKER_STOP_TIMEOUT_SECONDS = 30
DATABASE_CHECK_SECONDS = 15


class Worker(Protocol):
    """A background loop run inside the process (Kafka consumer, reconciler, dispatcher)."""

    name: str

    async def run(self) -> None: ...

    def stop(self) -> None: ...


def create_app(
    settings: BaseDoisoatSettings,
    *,
    engine: AsyncEngine,
    clock: Clock = system_clock,
    workers: Sequence[Worker] = (),
    serve_api: bool = True,
    readiness: Mapping[str, Callable[[], Awaitable[bool]]] | None = None,
    on_new_facts: Callable[[], None] = lambda: None,
    workspace: WorkspaceSettings | None = None,
) -> FastAPI:
    """Build the app; ``on_new_facts`` is called after a request commits events or reports.

    With ``workspace`` settings (the processes that serve the API) the officers' pages are
    served too.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(worker.run(), name=worker.name) for worker in workers]
        watch = asyncio.create_task(_watch_database(engine), name="database-watch")
        for task in tasks:
            task.add_done_callback(_report_crash)
        try:
            yield
        finally:
            watch.cancel()
            for worker in workers:
                worker.stop()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=WORKER_STOP_TIMEOUT_SECONDS)
                for task in pending:
                    log.error("worker did not stop in time", extra={"worker": task.get_name()})
                    task.cancel()

    app = FastAPI(
        title="doisoat",
        description="Đối soát trạng thái hồ sơ thủ tục hành chính với thực tế tại Bộ phận Một cửa.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if serve_api else None,
        openapi_url="/openapi.json" if serve_api else None,
    )
    metrics.record_build_info()
    install_error_handlers(app)
    install_openapi(app)
    app.state.engine = engine
    app.state.clock = clock
    app.state.calendar = settings.calendar()
    app.state.key_ring = KeyRing(settings.api_keys, engine=engine)
    app.state.on_new_facts = on_new_facts
    app.state.ack_links = ack_links_from(settings, clock)
    app.state.readiness_checks = {
        "database": lambda: database_reachable(engine),
        **(readiness or {}),
    }
    app.include_router(ops.router)
    if serve_api:
        _mount_api(app, workspace)
    app.middleware("http")(_measure)
    if serve_api:
        from services.access.middleware import AuditMiddleware

        app.add_middleware(AuditMiddleware)
    app.exception_handler(Exception)(_unexpected_error)
    return app


def _mount_api(app: FastAPI, workspace: WorkspaceSettings | None) -> None:
    """The API's routers and the officers' pages, imported here: a process that serves only
    ``/metrics`` and the health checks (``doisoat ingest``, ``reconciler``, ``alerts``) then
    never loads them — a third of the command's start-up and 36 MB of its memory."""
    from services.access import router as audit_router
    from services.alerts import ack_router
    from services.alerts import router as notifications_router
    from services.ingest import router as ingest_router
    from services.reconciler import router as reconciler_router
    from services.reconciler.directory import router as directory_router
    from services.reconciler.dossiers import router as dossiers_router
    from services.reconciler.kpis import router as kpis_router
    from services.reconciler.lateness import router as lateness_router
    from services.reconciler.reports import router as reports_router
    from services.workspace.app import mount_workspace

    app.include_router(ack_router.router)
    app.include_router(ingest_router.router)
    app.include_router(dossiers_router.router)
    app.include_router(reconciler_router.router)
    app.include_router(kpis_router.router)
    app.include_router(lateness_router.router)
    app.include_router(directory_router.router)
    app.include_router(reports_router.router)
    app.include_router(notifications_router.router)
    app.include_router(audit_router.router)
    if workspace is not None:
        mount_workspace(app, workspace)


async def _watch_database(engine: AsyncEngine) -> None:
    """Keep ``doisoat_database_reachable`` current for the operators' alert."""
    while True:
        metrics.DATABASE_REACHABLE.set(1 if await database_reachable(engine) else 0)
        await asyncio.sleep(DATABASE_CHECK_SECONDS)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker crashed", extra={"worker": task.get_name()}, exc_info=task.exception())


async def _measure(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    status_code = 500
    try:
        response = await call_next(request)
        status_code = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.HTTP_REQUESTS.labels(template, request.method, str(status_code)).inc()
        metrics.HTTP_REQUEST_SECONDS.labels(template).observe(time.perf_counter() - started)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error", extra={"path": request.url.path}, exc_info=error)
    return JSONResponse(
        {"detail": "Lỗi nội bộ, đã được ghi nhận. / Internal error; it has been logged."},
        status_code=500,
    )
