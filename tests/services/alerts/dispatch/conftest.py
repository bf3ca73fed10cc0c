"""Fixtures of the dispatcher tests: outbox and directory rows, a clock tests move, a renderer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.channels.base import Message, Recipient
from shared.models import Notification, Officer
from tests.conftest import TEST_NOW
from tests.services.alerts.dispatch.plain_render import render

UNIT = "000.00.12.H08"
_MESSAGE_ID = re.compile(r"<([A-Za-z0-9]+)@doisoat>")


class MutableClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class RecordingRenderer:
    """Lists the rows' dossier codes; remembers every call (what went into which message)."""

    calls: list[tuple[str, list[str], str, str]] = field(default_factory=list)

    def __call__(
        self,
        purpose: str,
        contents: Sequence[Mapping[str, Any]],
        recipient: Recipient,
        notification_id: str,
        channel: str,
    ) -> Message:
        codes = [str(content["code"]) for content in contents]
        self.calls.append((purpose, codes, recipient.account, channel))
        return render(purpose, contents, recipient, notification_id, channel)


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(TEST_NOW)


@pytest.fixture
def renderer() -> RecordingRenderer:
    return RecordingRenderer()


async def add_officer(
    engine: AsyncEngine,
    account: str,
    *,
    email: str | None = None,
    zalo_user_id: str | None = None,
    phone: str | None = None,
    full_name: str = "Nguyễn Văn Ánh",
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(Officer).values(
                account=account,
                full_name=full_name,
                unit_code=UNIT,
                role="handler",
                email=email,
                zalo_user_id=zalo_user_id,
                phone=phone,
                active=True,
                updated_at=TEST_NOW,
            )
        )


async def add_rows(engine: AsyncEngine, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert outbox rows (keys: recipient, channel, address, and optionally the others)."""
    ids: list[int] = []
    async with engine.begin() as connection:
        for row in rows:
            values = {
                "purpose": "opened",
                "severity": "critical",
                "unit_code": UNIT,
                "content": {"code": f"{UNIT}-241106-{len(ids):04d}"},
                "status": "pending",
                "not_before": TEST_NOW,
                "attempts": 0,
                "created_at": TEST_NOW - timedelta(minutes=1),
                **row,
            }
            result = await connection.execute(
                insert(Notification).values(values).returning(Notification.id)
            )
            ids.append(result.scalar_one())
    return ids


async def add_row(engine: AsyncEngine, **row: Any) -> int:
    [row_id] = await add_rows(engine, [row])
    return row_id


async def outbox_rows(engine: AsyncEngine) -> dict[int, Any]:
    async with engine.connect() as connection:
        result = await connection.execute(select(Notification).order_by(Notification.id))
        return {row.id: row for row in result.all()}


def message_row_id(mail: Any) -> str:
    """The notification id carried in a received mail's Message-ID."""
    match = _MESSAGE_ID.fullmatch(str(mail.message["Message-ID"]))
    assert match is not None, mail.message["Message-ID"]
    return match.group(1)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
