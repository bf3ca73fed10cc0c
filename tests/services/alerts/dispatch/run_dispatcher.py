"""A dispatcher process for crash tests (``python -m`` this module from the repository root).

Wired from environment variables (the test's database and fake SMTP server) with the real
clock; SIGTERM stops it gracefully, SIGKILL is what the tests use to crash it.

- ``DISPATCH_DATABASE_URL``: SQLAlchemy URL of the outbox database
- ``DISPATCH_SMTP_HOST`` / ``DISPATCH_SMTP_PORT``: the fake SMTP server
- ``DISPATCH_BATCH_SIZE`` (default 200), ``DISPATCH_POLL_SECONDS`` (default 0.1),
  ``DISPATCH_LEASE_SECONDS`` (default 300; SQLite only)
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import timedelta

from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.dispatcher import Dispatcher
from shared.clock import system_clock
from shared.db import create_engine
from tests.services.alerts.dispatch.plain_render import render
from tests.services.alerts.dispatch.tuning import dispatch_settings


async def main() -> None:
    engine = create_engine(os.environ["DISPATCH_DATABASE_URL"])
    email = EmailChannel(
        EmailSettings(
            host=os.environ["DISPATCH_SMTP_HOST"],
            port=int(os.environ["DISPATCH_SMTP_PORT"]),
            sender="Hệ thống đối soát TTHC <doisoat@tinh.gov.vn>",
            timeout=5,
        )
    )
    settings = dispatch_settings(
        batch_size=int(os.environ.get("DISPATCH_BATCH_SIZE", "200")),
        poll_interval=timedelta(seconds=float(os.environ.get("DISPATCH_POLL_SECONDS", "0.1"))),
        lease=timedelta(seconds=float(os.environ.get("DISPATCH_LEASE_SECONDS", "300"))),
    )
    dispatcher = Dispatcher(
        engine=engine,
        clock=system_clock,
        channels={"email": email},
        renderer=render,
        settings=settings,
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, dispatcher.stop)
    print("dispatcher running", flush=True)
    try:
        await dispatcher.run()
    finally:
        await email.aclose()
        await engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
