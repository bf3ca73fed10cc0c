"""Empty databases on both backends, for migrations to run on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from tests.support import postgres


@pytest.fixture
async def empty_pg_url(pg_server: str) -> AsyncIterator[str]:
    name = f"doisoat_mig_{uuid.uuid4().hex[:10]}"
    await postgres.create_database(pg_server, name)
    yield postgres.database_url(pg_server, name)
    await postgres.drop_database(pg_server, name)


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest) -> str:
    return cast(
        str,
        request.getfixturevalue(f"empty_{'pg' if request.param == 'postgresql' else 'sqlite'}_url"),
    )
