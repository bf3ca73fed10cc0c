"""``recipients_for`` and ``officer``: who is told about a unit's dossier (contract §3)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.directory import service
from services.reconciler.directory.schemas import OfficerUpdate
from shared.db import unit_of_work
from shared.directory import load_directory
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


async def recipients(engine: AsyncEngine, unit_code: str | None, roles: set[str]) -> list[str]:
    async with unit_of_work(engine, "test_recipients") as connection:
        directory = await load_directory(connection)
        found = await service.recipients_for(
            connection, unit_code=unit_code, directory=directory, roles=roles
        )
    return [row.account for row in found]


async def test_recipients_of_a_merged_code_are_the_successors_officers(
    engine: AsyncEngine,
) -> None:
    await seed(engine)

    assert await recipients(engine, OLD, {"handler"}) == ["new.handler"]


async def test_recipients_leave_out_inactive_officers_and_other_roles(
    engine: AsyncEngine,
) -> None:
    await seed(engine)

    assert await recipients(engine, NEW, {"handler"}) == ["new.handler"]
    assert await recipients(engine, NEW, {"desk", "leader"}) == ["new.desk", "new.leader"]


@pytest.mark.parametrize(("unit_code", "roles"), [(None, {"handler"}), (NEW, set())])
async def test_no_unit_or_no_role_means_no_recipients(
    engine: AsyncEngine, unit_code: str | None, roles: set[str]
) -> None:
    await seed(engine)

    assert await recipients(engine, unit_code, roles) == []


async def test_officer_is_read_by_account(engine: AsyncEngine) -> None:
    await seed(engine)

    async with unit_of_work(engine, "test_officer") as connection:
        found = await service.officer(connection, "new.leader")
        missing = await service.officer(connection, "nobody")

    assert found == service.OfficerRow(
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
