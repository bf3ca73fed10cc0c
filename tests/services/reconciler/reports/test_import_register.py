"""``POST /api/v1/field-reports/import``: the desk's register as CSV (contract §2, §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ADMIN_KEY, OFFICER_KEY, TEST_NOW, bearer
from tests.services.reconciler.reports.conftest import (
    DESK,
    IMPORT_URL,
    import_csv,
    register,
    schedule,
    stored_reports,
)

EXAMPLE = Path(__file__).parents[3] / "contract_examples" / "so-theo-doi.csv"
UNIT = "000.00.12.H08"
GOOD = f"{UNIT}-241021-0001,tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},"
OTHER_GOOD = f"{UNIT}-241021-0002,rut_ho_so,2024-10-29T15:05:00+07:00,lethic.motcua,{UNIT},"


def outcomes(answer: httpx.Response) -> list[tuple[int, str]]:
    return [(row["row"], row["outcome"]) for row in answer.json()["rows"]]


async def test_contract_example_is_accepted_in_both_date_formats(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    answer = await import_csv(reports_client, EXAMPLE.read_bytes())
    assert answer.status_code == 200
    assert answer.json() == {
        "accepted": 2,
        "duplicate": 0,
        "refused": 0,
        "rows": [
            {"row": 2, "outcome": "accepted", "reason": None},
            {"row": 3, "outcome": "accepted", "reason": None},
        ],
    }
    stored = {row["dossier_code"]: row for row in await stored_reports(engine)}
    returned = stored["000.00.12.H08-241021-0042"]
    withdrawn = stored["000.00.12.H08-241022-0003"]
    assert (returned["kind"], returned["occurred_at"]) == (
        "returned",
        datetime(2024, 10, 30, 3, 40, tzinfo=UTC),
    )
    assert (withdrawn["kind"], withdrawn["occurred_at"]) == (
        "withdrawn",
        datetime(2024, 10, 29, 8, 5, tzinfo=UTC),
    )
    assert returned["note"] == "Trả trực tiếp" and returned["channel"] == "csv"
    assert returned["officer"] == "lethic.motcua" and returned["unit_code"] == UNIT
    assert returned["report_id"].startswith("csv-") and returned["received_at"] == TEST_NOW


async def test_reimporting_a_register_is_all_duplicate_and_changes_nothing(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await import_csv(reports_client, EXAMPLE.read_bytes())
    before = await stored_reports(engine)
    answer = await import_csv(reports_client, EXAMPLE.read_bytes())
    assert answer.json()["duplicate"] == 2
    assert outcomes(answer) == [(2, "duplicate"), (3, "duplicate")]
    assert await stored_reports(engine) == before


async def test_the_same_moment_in_the_other_format_is_a_duplicate(
    reports_client: httpx.AsyncClient,
) -> None:
    await import_csv(reports_client, register(GOOD))
    iso = GOOD.replace("30/10/2024 10:40", "2024-10-30T03:40:00Z")
    assert outcomes(await import_csv(reports_client, register(iso))) == [(2, "duplicate")]


async def test_bad_rows_are_refused_with_reasons_and_good_rows_accepted(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = register(
        GOOD,
        f"{UNIT}-241021-0003,mat_ho_so,30/10/2024 10:40,lethic.motcua,{UNIT},",
        f"{UNIT}-241021-0004,tra_ket_qua,31/02/2024 10:40,lethic.motcua,{UNIT},",
        f"HS 0005,tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},",
        f"{UNIT}-241021-0006,tra_ket_qua,30/10/2024 10:40,,{UNIT},",
        "000.00.13.H08-241021-0007,tra_ket_qua,30/10/2024 10:40,lethic.motcua,000.00.13.H08,",
        OTHER_GOOD,
    )
    answer = await import_csv(reports_client, data)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicate"], body["refused"]) == (2, 0, 5)
    reasons = {row["row"]: row["reason"] for row in body["rows"] if row["outcome"] == "refused"}
    assert reasons[3].startswith("invalid_loai:") and "mat_ho_so" in reasons[3]
    assert reasons[4].startswith("invalid_thoi_diem:") and "31/02/2024" in reasons[4]
    assert reasons[5].startswith("invalid_ma_ho_so:") and "pattern" in reasons[5]
    assert reasons[6].startswith("missing_can_bo:")
    assert reasons[7].startswith("forbidden_unit:") and "000.00.13.H08" in reasons[7]
    assert outcomes(answer)[0] == (2, "accepted") and outcomes(answer)[-1] == (8, "accepted")
    codes = sorted(row["dossier_code"] for row in await stored_reports(engine))
    assert codes == [f"{UNIT}-241021-0001", f"{UNIT}-241021-0002"]


async def test_a_row_with_several_problems_names_them_all(
    reports_client: httpx.AsyncClient,
) -> None:
    data = register(f"{UNIT}-241021-0001,giao,hôm qua,,{UNIT},")
    (row,) = (await import_csv(reports_client, data)).json()["rows"]
    assert row["outcome"] == "refused"
    for column in ("can_bo", "loai", "thoi_diem"):
        assert column in row["reason"]


async def test_the_same_row_twice_in_one_file_is_accepted_once_then_duplicate(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    answer = await import_csv(reports_client, register(GOOD, OTHER_GOOD, GOOD))
    assert outcomes(answer) == [(2, "accepted"), (3, "accepted"), (4, "duplicate")]
    assert answer.json()["rows"][2]["reason"] is None
    assert len(await stored_reports(engine)) == 2


async def test_a_duplicate_with_another_officer_keeps_the_stored_one_and_says_so(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await import_csv(reports_client, register(GOOD))
    changed = GOOD.replace("lethic.motcua,", "nguyenvana.motcua,", 1) + "sửa"
    (row,) = (await import_csv(reports_client, register(changed))).json()["rows"]
    assert row["outcome"] == "duplicate"
    assert row["reason"].startswith("differs:") and "can_bo, ghi_chu" in row["reason"]
    (stored,) = await stored_reports(engine)
    assert stored["officer"] == "lethic.motcua" and stored["note"] is None


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "text-csv"])
async def test_multipart_and_raw_text_csv_both_work(
    reports_client: httpx.AsyncClient, multipart: bool
) -> None:
    answer = await import_csv(reports_client, EXAMPLE.read_bytes(), multipart=multipart)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2


async def test_a_utf8_bom_is_accepted(reports_client: httpx.AsyncClient) -> None:
    answer = await import_csv(reports_client, b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert answer.json()["accepted"] == 2


async def test_semicolon_separated_register_from_excel_is_accepted(
    reports_client: httpx.AsyncClient,
) -> None:
    data = EXAMPLE.read_text(encoding="utf-8").replace(",", ";").encode("utf-8")
    assert (await import_csv(reports_client, data)).json()["accepted"] == 2


async def test_row_numbers_are_file_lines(reports_client: httpx.AsyncClient) -> None:
    note_on_two_lines = (
        f'{UNIT}-241021-0009,tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},"a\nb"'
    )
    data = register(GOOD, "", note_on_two_lines, ",,,,,", OTHER_GOOD)
    answer = await import_csv(reports_client, data)
    assert outcomes(answer) == [(2, "accepted"), (4, "accepted"), (7, "accepted")]


async def test_more_than_50000_rows_is_413_and_nothing_written(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    lines = [
        f"{UNIT}-241021-{n:05d},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},"
        for n in range(50_001)
    ]
    answer = await import_csv(reports_client, register(*lines))
    assert answer.status_code == 413
    assert "50000" in answer.json()["detail"]
    assert await stored_reports(engine) == []


async def test_body_over_10_mib_is_413(reports_client: httpx.AsyncClient) -> None:
    data = register(GOOD) + b" " * (10 * 1024 * 1024)
    assert (await import_csv(reports_client, data)).status_code == 413


async def test_missing_required_column_is_422_naming_it(
    reports_client: httpx.AsyncClient,
) -> None:
    data = register(GOOD[: GOOD.rindex(",")], header="ma_ho_so,loai,thoi_diem,can_bo,ghi_chu")
    answer = await import_csv(reports_client, data)
    assert answer.status_code == 422
    assert "don_vi" in answer.json()["detail"]


async def test_a_file_that_is_not_utf8_is_422(reports_client: httpx.AsyncClient) -> None:
    data = register(GOOD + "Trả").replace("Trả".encode(), "Trả".encode("utf-16-le"))
    answer = await import_csv(reports_client, data)
    assert answer.status_code == 422
    assert "UTF-8" in answer.json()["detail"]


async def test_an_empty_file_is_422(reports_client: httpx.AsyncClient) -> None:
    assert (await import_csv(reports_client, b"")).status_code == 422


async def test_another_content_type_is_415(reports_client: httpx.AsyncClient) -> None:
    answer = await reports_client.post(
        IMPORT_URL, content=EXAMPLE.read_bytes(), headers={**DESK, "Content-Type": "image/png"}
    )
    assert answer.status_code == 415


async def test_multipart_without_the_file_field_is_422(
    reports_client: httpx.AsyncClient,
) -> None:
    files = {"register": ("so.csv", EXAMPLE.read_bytes(), "text/csv")}
    answer = await reports_client.post(IMPORT_URL, files=files, headers=DESK)
    assert answer.status_code == 422
    assert "'file'" in answer.json()["detail"]


async def test_import_marks_the_accepted_dossiers_for_reconciliation(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    bad = f"{UNIT}-241021-0003,mat_ho_so,30/10/2024 10:40,lethic.motcua,{UNIT},"
    await import_csv(reports_client, register(GOOD, bad))
    assert await schedule(engine) == {f"{UNIT}-241021-0001": TEST_NOW}


async def test_officer_key_is_403_and_nothing_written(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    answer = await import_csv(reports_client, EXAMPLE.read_bytes(), headers=bearer(OFFICER_KEY))
    assert answer.status_code == 403
    assert await stored_reports(engine) == []


async def test_missing_key_is_401(reports_client: httpx.AsyncClient) -> None:
    assert (await import_csv(reports_client, EXAMPLE.read_bytes(), headers={})).status_code == 401


async def test_admin_key_imports_for_any_unit(reports_client: httpx.AsyncClient) -> None:
    foreign = "000.00.13.H08-241021-0007,tra_ket_qua,30/10/2024 10:40,an.motcua,000.00.13.H08,"
    answer = await import_csv(reports_client, register(foreign), headers=bearer(ADMIN_KEY))
    assert outcomes(answer) == [(2, "accepted")]


async def test_50000_rows_are_stored_by_one_import(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    lines = [
        f"{UNIT}-241021-{n:05d},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},"
        for n in range(50_000)
    ]
    answer = await import_csv(reports_client, register(*lines))
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 50_000
    assert len(await stored_reports(engine)) == 50_000
    assert len(await schedule(engine)) == 50_000
