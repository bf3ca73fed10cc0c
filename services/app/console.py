"""What every ``doisoat`` command shares: refusing clearly, reading settings, opening the database.

Messages for people are in Vietnamese with English beside; a refusal exits with status 2 and no
traceback. :func:`open_database` is the one place a command builds (and disposes of) an engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.config import BaseDoisoatSettings
from shared.db import create_engine, database_reachable, unit_of_work
from shared.logs import configure_logging
from shared.vocabulary import number_text

SettingsT = TypeVar("SettingsT", bound=BaseDoisoatSettings)
T = TypeVar("T")
Echo = Callable[[str], None]


class CommandRefused(Exception):
    """A command cannot go on; the message (Vietnamese / English) says why and what to do."""


def fail(message: str) -> typer.Exit:
    """Print ``message`` in red on standard error; raise the returned exit (status 2)."""
    typer.secho(f"doisoat: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """The settings of ``cls`` from the environment, or a clear refusal naming the variable."""
    try:
        settings = cls()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise fail(
            f"cấu hình không hợp lệ / invalid setting DOISOAT_{where.upper()}: {first['msg']}"
        ) from None
    configure_logging(settings.log_level)
    return settings


def unreachable_message(engine: AsyncEngine) -> str:
    return (
        "không kết nối được cơ sở dữ liệu / database unreachable: "
        f"{engine.url.render_as_string(hide_password=True)}"
    )


@asynccontextmanager
async def open_database(database_url: str, *, check: bool = True) -> AsyncIterator[AsyncEngine]:
    """An engine for the length of a command; :class:`CommandRefused` when the database is down."""
    engine = create_engine(database_url)
    try:
        if check and not await database_reachable(engine):
            raise CommandRefused(unreachable_message(engine))
        yield engine
    finally:
        await engine.dispose()


def run_async(main: Awaitable[T]) -> T:
    """Run a command's coroutine; a :class:`CommandRefused` becomes a clear exit."""

    async def guarded() -> T:
        return await main

    try:
        return asyncio.run(guarded())
    except CommandRefused as refusal:
        raise fail(str(refusal)) from None


def in_database(database_url: str, name: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` in one unit of work named ``name`` on ``database_url``."""

    async def main() -> T:
        async with (
            open_database(database_url) as engine,
            unit_of_work(engine, name) as connection,
        ):
            return await work(connection)

    return run_async(main())


number = number_text
