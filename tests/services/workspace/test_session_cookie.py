"""The session cookie (contract §6; README "Signing in"): HttpOnly and SameSite=Lax always,
Secure exactly when the public address (``DOISOAT_PUBLIC_BASE_URL``) is https.

HttpOnly keeps a script from reading the session; SameSite=Lax keeps another site's form from
riding it; Secure keeps it off plain http — but only where the service is reached by https, or
an intranet served over http could never sign anyone in.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx

from services.workspace.auth import COOKIE
from tests.services.workspace.page_world import HANDLER, MakeWorkspace, Workspace


async def session_cookie(ws: Workspace) -> str:
    """The ``Set-Cookie`` header that signing in answers with, for the session."""
    browser = ws.browser()
    answer: httpx.Response = await ws.press_sign_in(browser, await ws.link(HANDLER.account))
    assert answer.status_code == 303, answer.text
    (header,) = [
        value for value in answer.headers.get_list("set-cookie") if value.startswith(f"{COOKIE}=")
    ]
    return header


def attributes(header: str) -> dict[str, str | bool]:
    parsed = SimpleCookie()
    parsed.load(header)
    morsel = parsed[COOKIE]
    return {name: morsel[name] for name in ("httponly", "samesite", "secure", "path")}


async def test_over_http_the_cookie_is_httponly_lax_and_not_secure(
    make_workspace: MakeWorkspace,
) -> None:
    """A service reached at an http address: a Secure cookie would never come back."""
    ws = await make_workspace(public_base_url="http://doisoat.tinh.gov.vn")
    found = attributes(await session_cookie(ws))
    assert found["httponly"] is True
    assert str(found["samesite"]).lower() == "lax"
    assert not found["secure"]
    assert found["path"] == "/"


async def test_over_https_the_cookie_is_also_secure(make_workspace: MakeWorkspace) -> None:
    """A service reached at an https address never lets its session travel over plain http."""
    ws = await make_workspace(public_base_url="https://doisoat.tinh.gov.vn")
    found = attributes(await session_cookie(ws))
    assert found["httponly"] is True
    assert str(found["samesite"]).lower() == "lax"
    assert found["secure"] is True
