"""Each line of the inbox links to its dossier (contract §6: "``GET /inbox`` — … and a link to
each dossier"): the handler goes from a discrepancy to the dossier's whole story in one click."""

from __future__ import annotations

import re
from urllib.parse import quote

from tests.services.workspace.page_world import (
    HANDLER,
    HANDLER_ELSEWHERE,
    Workspace,
    add_discrepancy,
    dossier_code,
    store_dossiers,
)

ROW = re.compile(r'<tr data-id="(\d+)">(.*?)</tr>', re.DOTALL)
# The code may break after a hyphen (<wbr>), so that every column fits a 1,280-pixel screen.
CODE_LINK = re.compile(r'<td class="code"><a href="([^"]+)">((?:[^<]|<wbr>)+)</a>')


async def test_every_inbox_line_links_to_its_dossier_page(workspace: Workspace) -> None:
    """The link of each line is ``/dossiers/{code}`` of that line's dossier, and it opens."""
    codes = [dossier_code(n) for n in (1, 2, 3)]
    elsewhere = dossier_code(9, HANDLER_ELSEWHERE.unit_code)
    await store_dossiers(workspace, {**dict.fromkeys(codes, HANDLER), elsewhere: HANDLER_ELSEWHERE})
    expected = {
        await add_discrepancy(workspace, codes[0], "OVERDUE_NO_APOLOGY", holder=HANDLER): codes[0],
        await add_discrepancy(workspace, codes[0], "STALLED", holder=HANDLER): codes[0],
        await add_discrepancy(workspace, codes[1], "DUE_SOON", holder=HANDLER): codes[1],
        await add_discrepancy(workspace, codes[2], "RETURNED_BUT_OPEN", holder=HANDLER): codes[2],
    }
    await add_discrepancy(workspace, elsewhere, "STALLED", holder=HANDLER_ELSEWHERE)
    browser = await workspace.signed_in(HANDLER)

    inbox = await browser.get("/inbox")
    assert inbox.status_code == 200
    links: dict[int, str] = {}
    for row_id, cells in ROW.findall(inbox.text):
        found = CODE_LINK.search(cells)
        assert found is not None, cells
        href, shown = found.groups()
        assert shown.replace("<wbr>", "") == expected[int(row_id)]
        links[int(row_id)] = href
    assert links == {row_id: f"/dossiers/{quote(code)}" for row_id, code in expected.items()}

    for href in set(links.values()):
        dossier = await browser.get(href)
        assert dossier.status_code == 200, href
        assert href.removeprefix("/dossiers/") in dossier.text
