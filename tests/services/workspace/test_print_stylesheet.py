"""Pages print cleanly: they link a print stylesheet served by doisoat itself (contract §6:
"every script, style and font is served by doisoat itself").

Leaders print the board for the weekly meeting and handlers print a dossier's story; the print
stylesheet drops the header, buttons and filters. A link to a stylesheet that is missing, or
served as something else than CSS, would print the screen layout instead.
"""

from __future__ import annotations

import re

import httpx
import pytest

from services.workspace.rendering import STATIC
from tests.services.workspace.conftest import EVERY_PAGE
from tests.services.workspace.page_world import Workspace

LINK_TAG = re.compile(r"<link\b([^>]*)>", re.IGNORECASE)


def print_stylesheets(page: str) -> list[str]:
    """The ``href`` of every ``<link rel="stylesheet" media="print">`` of a page."""
    found = []
    for attributes in LINK_TAG.findall(page):
        values = dict(re.findall(r'(\w+)="([^"]*)"', attributes))
        if values.get("rel") == "stylesheet" and values.get("media") == "print":
            found.append(values["href"])
    return found


@pytest.mark.parametrize("path", EVERY_PAGE)
async def test_every_page_links_a_print_stylesheet_that_is_served(
    workspace: Workspace, leader: httpx.AsyncClient, path: str
) -> None:
    """The link is to doisoat's own static files, and following it gives CSS."""
    browser = workspace.browser() if path == "/sign-in" else leader
    page = await browser.get(path)
    assert page.status_code == 200, (path, page.text)
    (href,) = print_stylesheets(page.text)
    assert href.startswith("/static/")

    sheet = await browser.get(href)
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/css")
    assert sheet.text.strip()


def test_the_print_stylesheet_is_a_file_beside_the_templates() -> None:
    """Served from the static folder in the repository, not from any other server."""
    sheet = STATIC / "print.css"
    assert sheet.is_file()
    assert "{" in sheet.read_text(encoding="utf-8")
