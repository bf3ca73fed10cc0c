"""``POST /api/v1/field-reports``: one report, idempotent on ``report_id`` (contract §2, §5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import unit_of_work
from shared.models import ReconcileSchedule, Unit
from tests.conftest import ADMIN_KEY, OFFICER_KEY, SOURCE_KEY, TEST_NOW, bearer
from tests.services.reconciler.reports.conftest import (
    DESK,
    REPORTS_URL,
    schedule,
    stored_reports,
)

EXAMPLE = Path(__file__).parents[3] / "contract_examples" / "field-report-returned.json"


def report(**changes: Any) -> dict[str, Any]:
    """The contract's example report, with ``changes`` (a value of None removes the field)."""
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document.update(changes)
    return {name: value for name, value in document.items() if value is not None}


async def post(
    client: httpx.AsyncClient, document: Any, headers: dict[str, str] = DESK
) -> httpx.Response:
    return await client.post(REPORTS_URL, json=document, headers=headers)


async def test_new_report_is_201_with_the_stored_report(
    reports_client: httpx.AsyncClient,
) -> None:
    answer = await post(reports_client, report())
    assert answer.status_code == 201
    assert answer.json() == {
        "report_id": "tuyphong-mc-2024-10-30-0031",
        "dossier_code": "000.00.12.H08-241021-0042",
        "kind": "returned",
        "occurred_at": "2024-10-30T10:40:00+07:00",
        "officer": "lethic.motcua",
        "unit_code": "000.00.12.H08",
        "note": "Đã trả kết quả trực tiếp cho công dân",
        "channel": "api",
        "received_at": "2024-11-06T10:00:00+07:00",
    }


async def test_same_id_same_content_is_200_and_changes_nothing(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post(reports_client, report())
    before = await stored_reports(engine)
    # The same instant written in UTC is the same content.
    again = await post(reports_client, report(occurred_at="2024-10-30T03:40:00Z"))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert await stored_reports(engine) == before


async def test_same_id_other_content_is_409_and_keeps_the_stored_report(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post(reports_client, report())
    before = await stored_reports(engine)
    answer = await post(reports_client, report(kind="withdrawn", note="khác"))
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert "tuyphong-mc-2024-10-30-0031" in detail and "kind, note" in detail
    assert await stored_reports(engine) == before


async def test_unknown_kind_is_422(reports_client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    answer = await post(reports_client, report(kind="lost"))
    assert answer.status_code == 422
    assert "report.kind must be one of" in answer.json()["detail"]
    assert await stored_reports(engine) == []


async def test_occurred_at_without_offset_is_422(reports_client: httpx.AsyncClient) -> None:
    answer = await post(reports_client, report(occurred_at="2024-10-30T10:40:00"))
    assert answer.status_code == 422
    assert "RFC 3339 with an offset" in answer.json()["detail"]


async def test_extra_property_is_422(reports_client: httpx.AsyncClient) -> None:
    answer = await post(reports_client, report(citizen="Nguyễn Văn An"))
    assert answer.status_code == 422
    assert "citizen" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "Invalid JSON"),
        (b"[]", "report must be object"),
        (json.dumps(report(officer=None)).encode(), "officer"),
        (json.dumps(report(dossier_code="HS 01")).encode(), "dossier_code"),
        (json.dumps(report(occurred_at="2024-02-30T10:00:00+07:00")).encode(), "RFC 3339"),
    ],
    ids=["malformed", "not-an-object", "missing-officer", "bad-dossier-code", "no-such-day"],
)
async def test_other_invalid_bodies_are_422_with_the_reason(
    reports_client: httpx.AsyncClient, body: bytes, says: str
) -> None:
    answer = await reports_client.post(
        REPORTS_URL, content=body, headers={**DESK, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    assert says in answer.json()["detail"]


async def test_occurred_at_in_the_future_is_422(reports_client: httpx.AsyncClient) -> None:
    answer = await post(reports_client, report(occurred_at="2024-11-06T12:00:00+07:00"))
    assert answer.status_code == 422
    assert "in the future" in answer.json()["detail"]


async def test_body_over_64_kib_is_413(reports_client: httpx.AsyncClient) -> None:
    answer = await post(reports_client, report(note="x" * (64 * 1024)))
    assert answer.status_code == 413


async def test_report_for_a_unit_outside_the_key_is_403_and_not_written(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    answer = await post(reports_client, report(unit_code="000.00.13.H08"))
    assert answer.status_code == 403
    assert "000.00.13.H08" in answer.json()["detail"]
    assert await stored_reports(engine) == []
    assert await schedule(engine) == {}


async def test_desk_key_covers_a_unit_its_unit_replaced(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit),
            [
                {
                    "code": "000.00.12.H08",
                    "name": "Mới",
                    "replaced_by": None,
                    "updated_at": TEST_NOW,
                },
                {
                    "code": "000.00.11.H08",
                    "name": "Cũ",
                    "replaced_by": "000.00.12.H08",
                    "updated_at": TEST_NOW,
                },
            ],
        )
    answer = await post(reports_client, report(unit_code="000.00.11.H08"))
    assert answer.status_code == 201


async def test_admin_key_may_report_for_any_unit(reports_client: httpx.AsyncClient) -> None:
    answer = await post(reports_client, report(unit_code="000.00.99.H08"), bearer(ADMIN_KEY))
    assert answer.status_code == 201


@pytest.mark.parametrize("key", [OFFICER_KEY, SOURCE_KEY])
async def test_key_of_another_role_is_403(
    reports_client: httpx.AsyncClient, engine: AsyncEngine, key: str
) -> None:
    assert (await post(reports_client, report(), bearer(key))).status_code == 403
    assert await stored_reports(engine) == []


async def test_missing_or_unknown_key_is_401(reports_client: httpx.AsyncClient) -> None:
    assert (await reports_client.post(REPORTS_URL, json=report())).status_code == 401
    unknown = bearer("not-a-key-0000000000")
    assert (await post(reports_client, report(), unknown)).status_code == 401


async def test_new_report_marks_its_dossier_for_reconciliation(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post(reports_client, report())
    assert await schedule(engine) == {"000.00.12.H08-241021-0042": TEST_NOW}


async def test_duplicate_report_does_not_mark_again(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post(reports_client, report())
    async with unit_of_work(engine, "test") as connection:  # the reconciler judged it
        await connection.execute(delete(ReconcileSchedule))
    assert (await post(reports_client, report())).status_code == 200
    assert await schedule(engine) == {}


async def test_stored_moment_is_the_instant_sent(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post(reports_client, report(occurred_at="2024-10-30T10:40:00.250+07:00"))
    (row,) = await stored_reports(engine)
    assert row["occurred_at"] == datetime(2024, 10, 30, 3, 40, 0, 250000, tzinfo=UTC)
