"""Reading officers back from the directory (contract §3)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.directory import service
from services.reconciler.directory.schemas import OfficerUpdate
from shared.db import unit_of_work
from shared.directory import OfficerRecord
from tests.conftest import TEST_NOW

OLD = "000.00.12.H08"  # Bình Thuận's department, merged away on 1/7/2025
NEW = "000.00.12.H49"


async def seed(engine: AsyncEngine) -> None:
    officers = [
        ("old.handler", OLD, "handler", True),
        ("new.handler", NEW, "handler", True),
        ("new.desk", NEW, "desk", True),
        ("new.leader", NEW, "leader", True),
        ("new.retired", NEW, "handler", False),
    ]
    async with unit_of_work(engine, "test_seed") as connection:
        await service.put_unit(
            connection, code=NEW, name="Sở NN&MT", parent_code=None, replaced_by=None, now=TEST_NOW
        )
        await service.put_unit(
            connection, code=OLD, name="Sở TN&MT", parent_code=None, replaced_by=NEW, now=TEST_NOW
        )
        for account, unit, role, active in officers:
            officer_in = OfficerUpdate(
                full_name=account, unit_code=unit, role=role, phone="0912345678", active=active
            )
            await service.put_officer(
                connection, account=account, officer_in=officer_in, now=TEST_NOW
            )


async def test_officer_is_read_by_account(engine: AsyncEngine) -> None:
    await seed(engine)

    async with unit_of_work(engine, "test_officer") as connection:
        found = await service.officer(connection, "new.leader")
        missing = await service.officer(connection, "nobody")

    assert found == OfficerRecord(
        account="new.leader",
        full_name="new.leader",
        unit_code=NEW,
        role="leader",
        email=None,
        zalo_user_id=None,
        phone="84912345678",
        active=True,
        updated_at=TEST_NOW,
    )
    assert missing is None


@pytest.mark.parametrize(
    ("code", "target", "edges", "loop"),
    [
        ("A", "B", {"B": "C", "C": "A"}, ["A", "B", "C", "A"]),
        ("A", "A", {}, ["A", "A"]),
        ("A", "B", {"B": "C"}, None),
        ("A", None, {"B": "A"}, None),
        ("A", "B", {"B": "C", "C": "B"}, None),  # an old loop elsewhere is not A's
    ],
)
def test_cycle_through_finds_the_loop_a_new_edge_closes(
    code: str, target: str | None, edges: dict[str, str], loop: list[str] | None
) -> None:
    assert service.cycle_through(code, target, edges) == loop
