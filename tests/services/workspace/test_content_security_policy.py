"""Every page answers with a Content-Security-Policy that runs no inline script (contract §6;
README "Headers").

Event fields such as ``TenTTHC`` or ``ChuHoSo`` come from another system and are shown on the
pages: were one ever to slip through unescaped, the browser must still refuse to run it. So
scripts load only from doisoat itself (``'self'``), never inline, and the pages carry none.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.services.workspace.conftest import EVERY_PAGE
from tests.services.workspace.page_world import Workspace

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:", "http:", "https:")


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name.lower()] = sources
    return parsed


async def opened(workspace: Workspace, leader: httpx.AsyncClient, path: str) -> httpx.Response:
    """The sign-in page as anybody sees it; every other page as the leader."""
    browser = workspace.browser() if path == "/sign-in" else leader
    answer = await browser.get(path)
    assert answer.status_code == 200, (path, answer.text)
    assert answer.headers["content-type"].startswith("text/html")
    return answer


@pytest.mark.parametrize("path", EVERY_PAGE)
async def test_scripts_come_only_from_doisoat_itself(
    workspace: Workspace, leader: httpx.AsyncClient, path: str
) -> None:
    """``default-src`` and ``script-src`` are ``'self'`` alone: no inline, no eval, no CDN."""
    answer = await opened(workspace, leader, path)
    policy = directives(answer.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    for source in UNSAFE:
        assert source not in policy["script-src"] + policy["default-src"]


@pytest.mark.parametrize("path", EVERY_PAGE)
async def test_pages_carry_no_inline_script(
    workspace: Workspace, leader: httpx.AsyncClient, path: str
) -> None:
    """The policy would refuse an inline script, so a page holding one would be broken. A data
    block (``type="application/json"``, the board's chart data) is not a script: it never runs."""
    answer = await opened(workspace, leader, path)
    tags = SCRIPT_TAG.findall(answer.text)
    assert tags, "every page loads htmx"
    for attributes in tags:
        loaded = re.search(r'\bsrc="/static/[^"]+"', attributes)
        data = re.search(r'\btype="application/json"', attributes)
        assert loaded or data, attributes
