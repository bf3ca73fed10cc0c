"""Fixtures for the workspace's pages: the app over a PostgreSQL database of its own (the
reference backend), with the directory of :mod:`tests.services.workspace.page_world` seeded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from tests.services.workspace.page_world import (
    AT_NOW,
    HANDLER,
    LEADER,
    MakeWorkspace,
    Workspace,
    dossier_code,
    seed_directory,
    store_dossiers,
    workspace_settings,
)

A_DOSSIER = dossier_code(1)
# Every page of the workspace, as ``leader`` may open it (the sign-in page: anybody).
EVERY_PAGE = ("/sign-in", "/returns", "/inbox", "/board", f"/dossiers/{A_DOSSIER}")


@pytest.fixture
async def make_workspace(
    pg_engine: AsyncEngine, pg_database_url: str
) -> AsyncIterator[MakeWorkspace]:
    """Build the pages with settings of the test's choosing (the directory seeded once)."""
    made: list[Workspace] = []

    async def make(*, clock: Clock = AT_NOW, **settings: Any) -> Workspace:
        if not made:
            await seed_directory(pg_engine)
        built = Workspace(pg_engine, workspace_settings(pg_database_url, **settings), clock)
        made.append(built)
        return built

    yield make
    for built in made:
        await built.close()


@pytest.fixture
async def workspace(make_workspace: MakeWorkspace) -> Workspace:
    """The pages with the default settings, at :data:`NOW`."""
    return await make_workspace()


@pytest.fixture
async def leader(workspace: Workspace) -> httpx.AsyncClient:
    """A leader, who may open every page, with one dossier of their unit to open."""
    await store_dossiers(workspace, {A_DOSSIER: HANDLER})
    return await workspace.signed_in(LEADER)
