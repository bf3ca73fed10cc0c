"""uvicorn serving one doisoat app: its own module, so a process imports it only when it serves.

``doisoat ingest`` starts joining its consumer group before it imports the web stack (see
:func:`services.app.wiring.serve`).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising the caught signal after its graceful shutdown.

    uvicorn restores the default handlers and raises SIGTERM again once it has shut down, which
    kills the process with status -15 before the engine is disposed. A stop that completed its
    work should exit 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        originals = {
            handled: signal.signal(handled, self.handle_exit)
            for handled in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for handled, handler in originals.items():
                signal.signal(handled, handler)


async def serve_app(application: ASGIApp, *, host: str, port: int) -> None:
    """Serve ``application`` until SIGINT or SIGTERM; its lifespan runs the workers."""
    config = uvicorn.Config(
        application, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    await _Server(config).serve()
