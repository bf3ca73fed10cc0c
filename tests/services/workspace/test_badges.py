"""The header's badges (contract §6: "Every page shows badge counts (due soon, overdue,
unacknowledged) for the signed-in officer"), as ``GET /badges`` serves them to htmx.

A handler counts the unresolved discrepancies they hold; a leader (and the desk) count their
units'. Nobody's badges count what lies outside their units: a number on a page must be one the
officer can open in the inbox. The data give each badge a different number, so that a count put
in the wrong badge cannot pass.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.services.workspace.page_world import (
    FELLOW_HANDLER,
    HANDLER,
    HANDLER_ELSEWHERE,
    LEADER,
    OTHER_UNIT,
    Person,
    Workspace,
    add_discrepancy,
    dossier_code,
)

BADGE = re.compile(r'data-badge="(\w+)">([\d.]+)</b>')


async def badges(browser: httpx.AsyncClient) -> dict[str, int]:
    answer = await browser.get("/badges", headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text
    found = {name: int(value.replace(".", "")) for name, value in BADGE.findall(answer.text)}
    assert set(found) == {"due_soon", "overdue", "unacknowledged"}, answer.text
    return found


async def plant(ws: Workspace, holder: Person, plan: list[tuple[str, str]], first: int) -> None:
    """``plan``: (kind, status) per discrepancy, each on a dossier of its own."""
    for number, (kind, status) in enumerate(plan, start=first):
        code = dossier_code(number, holder.unit_code)
        await add_discrepancy(ws, code, kind, holder=holder, status=status)


# The handler's own: due soon 1, overdue 2, unacknowledged 3 (open, whatever the kind).
HANDLERS_OWN = [
    ("DUE_SOON", "open"),
    ("OVERDUE_NO_APOLOGY", "open"),
    ("OVERDUE_NO_APOLOGY", "acknowledged"),
    ("STALLED", "open"),
    ("RETURNED_BUT_OPEN", "acknowledged"),
    ("DUE_SOON", "resolved"),  # resolved: counted nowhere
    ("OVERDUE_NO_APOLOGY", "resolved"),
]
# A colleague of the same unit: due soon 1, overdue 1, unacknowledged 2.
COLLEAGUES = [("DUE_SOON", "open"), ("OVERDUE_NO_APOLOGY", "open")]
# Another unit: many of each, none of them anybody's here.
ELSEWHERE = [("DUE_SOON", "open")] * 4 + [("OVERDUE_NO_APOLOGY", "open")] * 5


@pytest.fixture
async def planted(workspace: Workspace) -> Workspace:
    await plant(workspace, HANDLER, HANDLERS_OWN, first=1)
    await plant(workspace, FELLOW_HANDLER, COLLEAGUES, first=100)
    await plant(workspace, HANDLER_ELSEWHERE, ELSEWHERE, first=200)
    return workspace


async def test_a_handler_s_badges_count_what_they_hold(planted: Workspace) -> None:
    """Due soon and overdue count unresolved ones of the kind; unacknowledged the open ones."""
    browser = await planted.signed_in(HANDLER)
    assert await badges(browser) == {"due_soon": 1, "overdue": 2, "unacknowledged": 3}


async def test_a_leader_s_badges_count_their_unit_and_no_other(planted: Workspace) -> None:
    """The handler's and the colleague's, never the other unit's."""
    browser = await planted.signed_in(LEADER)
    assert await badges(browser) == {"due_soon": 2, "overdue": 3, "unacknowledged": 5}


async def test_a_handler_s_badges_leave_out_what_they_hold_in_another_unit(
    planted: Workspace,
) -> None:
    """A discrepancy of another unit that names this handler (a dossier handed across units, or
    an officer since moved) is outside their units: the inbox the badge links to does not list
    it, so the badge must not count it either."""
    for number, kind in enumerate(("DUE_SOON", "OVERDUE_NO_APOLOGY", "STALLED"), start=300):
        code = dossier_code(number, OTHER_UNIT)
        await add_discrepancy(planted, code, kind, holder=HANDLER, unit=OTHER_UNIT)
    browser = await planted.signed_in(HANDLER)
    inbox = await browser.get("/inbox")
    assert inbox.status_code == 200 and OTHER_UNIT not in inbox.text  # not theirs to see
    assert await badges(browser) == {"due_soon": 1, "overdue": 2, "unacknowledged": 3}
