"""An overdue dossier's alert links to its pre-filled apology (form 04), and only that alert."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.alerts.channels.base import Message
from services.alerts.content.rendering import PURPOSES, render
from services.app.asgi import create_app
from services.workspace.config import WorkspaceSettings
from shared.clock import fixed_clock
from shared.db import create_engine
from shared.vocabulary import Kind
from tests.conftest import TEST_NOW
from tests.services.alerts.content.conftest import BASE_URL, CODE, RECIPIENT, content

DRAFT = f"{BASE_URL}/dossiers/{CODE}/xin-loi.docx"
LABEL = "Mẫu văn bản xin lỗi (mẫu 04, đã điền sẵn)"
CHANNELS = ("email", "zalo_oa")


def message(
    kind: Kind,
    channel: str = "email",
    purpose: str = "opened",
    public_base_url: str | None = BASE_URL,
) -> Message:
    item: dict[str, Any] = content(kind)
    return render(
        purpose,
        [item],
        recipient=RECIPIENT,
        notification_id="n1",
        ack_links={},
        channel=channel,
        public_base_url=public_base_url,
    )


def test_an_overdue_alert_keeps_the_path_of_its_apology_draft() -> None:
    assert content(Kind.OVERDUE_NO_APOLOGY)["apology_draft_path"] == (
        f"/dossiers/{CODE}/xin-loi.docx"
    )


def test_the_overdue_email_links_to_the_prefilled_apology_in_html_and_text() -> None:
    found = message(Kind.OVERDUE_NO_APOLOGY)
    assert f'<a href="{DRAFT}" style="color:#1f6feb;">{LABEL}</a>' in (found.html or "")
    assert (
        f"   Mẫu văn bản xin lỗi (mẫu 04, đã điền sẵn; ghi lý do, ký rồi gửi công dân): {DRAFT}\n"
    ) in found.text


def test_the_overdue_zalo_message_links_to_the_prefilled_apology() -> None:
    assert f"{LABEL}: {DRAFT}" in message(Kind.OVERDUE_NO_APOLOGY, "zalo_oa").text


@pytest.mark.parametrize("kind", [kind for kind in Kind if kind != Kind.OVERDUE_NO_APOLOGY])
@pytest.mark.parametrize("channel", CHANNELS)
def test_no_other_kind_carries_an_apology_link(kind: Kind, channel: str) -> None:
    assert content(kind)["apology_draft_path"] is None
    found = message(kind, channel)
    for body in (found.text, found.html or ""):
        assert "xin-loi.docx" not in body
        assert "mẫu 04, đã điền sẵn" not in body


@pytest.mark.parametrize("purpose", [p for p in PURPOSES if p not in ("digest", "resolved")])
def test_every_overdue_alert_still_to_act_on_carries_the_link(purpose: str) -> None:
    assert DRAFT in message(Kind.OVERDUE_NO_APOLOGY, purpose=purpose).text


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_resolved_overdue_alert_no_longer_links_to_the_draft(channel: str) -> None:
    found = message(Kind.OVERDUE_NO_APOLOGY, channel, purpose="resolved")
    assert "xin-loi.docx" not in found.text + (found.html or "")


def test_without_a_public_base_url_no_half_link_is_sent() -> None:
    found = message(Kind.OVERDUE_NO_APOLOGY, public_base_url=None)
    assert "xin-loi.docx" not in found.text + (found.html or "")


def test_a_base_url_with_a_trailing_slash_gives_one_slash() -> None:
    found = message(Kind.OVERDUE_NO_APOLOGY, public_base_url=BASE_URL + "/")
    assert DRAFT in found.text


async def test_the_link_leads_to_the_workspace_draft_behind_sign_in(
    sqlite_database_url: str,
) -> None:
    settings = WorkspaceSettings(database_url=sqlite_database_url, _env_file=None)
    engine = create_engine(sqlite_database_url)
    app = create_app(settings, engine=engine, clock=fixed_clock(TEST_NOW), workspace=settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            draft = await client.get(urlsplit(DRAFT).path)
            unknown = await client.get(f"/dossiers/{CODE}/khong-co.docx")
    finally:
        await engine.dispose()
    assert (draft.status_code, draft.headers["location"]) == (303, "/sign-in")
    assert unknown.status_code == 404
