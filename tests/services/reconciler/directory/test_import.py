"""``POST /api/v1/officers/import``: a CSV of officers, answered row by row."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

from tests.services.reconciler.directory.conftest import ADMIN, MovableClock

HEADER = "account,full_name,unit_code,role,email,zalo_user_id,phone,active"
UNIT = "000.00.12.H08"
CLEAN = "\n".join(
    [
        HEADER,
        f"tranthib.vpdkdd,Trần Thị B,{UNIT},handler,tranthib@stnmt.gov.vn,2512523625412515,"
        "0912345678,1",
        f"lethic.motcua,Lê Thị C,{UNIT},desk,,,+84 987 654 321,",
        f"nguyenvana.ld,Nguyễn Văn A,{UNIT},leader,nva@stnmt.gov.vn,,,Có",
        f"phamvand.cu,Phạm Văn D,{UNIT},handler,,,,không",
    ]
)


async def send_csv(client: httpx.AsyncClient, text: str, *, bom: bool = True) -> httpx.Response:
    data = ("\ufeff" if bom else "") + text
    return await client.post(
        "/api/v1/officers/import",
        content=data.encode(),
        headers={**ADMIN, "Content-Type": "text/csv; charset=utf-8"},
    )


async def officer(client: httpx.AsyncClient, account: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/officers/{account}", headers=ADMIN)
    assert answer.status_code == 200
    return cast(dict[str, Any], answer.json())


async def test_clean_file_is_accepted_with_normalised_fields(client: httpx.AsyncClient) -> None:
    answer = await send_csv(client, CLEAN)

    assert answer.status_code == 200
    assert answer.json()["accepted"] == 4
    assert answer.json()["duplicate"] == answer.json()["refused"] == 0
    assert [row["row"] for row in answer.json()["rows"]] == [2, 3, 4, 5]
    desk = await officer(client, "lethic.motcua")
    assert desk["phone"] == "84987654321"
    assert desk["email"] is None
    assert desk["active"] is True
    assert (await officer(client, "nguyenvana.ld"))["active"] is True
    assert (await officer(client, "phamvand.cu"))["active"] is False


async def test_reimporting_the_same_file_is_all_duplicate(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    await send_csv(client, CLEAN)
    before = await officer(client, "tranthib.vpdkdd")
    clock.advance(days=1)

    again = await send_csv(client, CLEAN)

    assert again.json()["duplicate"] == 4
    assert again.json()["accepted"] == again.json()["refused"] == 0
    assert {row["outcome"] for row in again.json()["rows"]} == {"duplicate"}
    assert await officer(client, "tranthib.vpdkdd") == before


async def test_mixed_file_counts_each_outcome_with_its_reason(client: httpx.AsyncClient) -> None:
    await client.put(
        "/api/v1/officers/old.same",
        json={"full_name": "Cũ Giữ", "unit_code": UNIT, "role": "desk"},
        headers=ADMIN,
    )
    await client.put(
        "/api/v1/officers/old.moved",
        json={"full_name": "Cũ Chuyển", "unit_code": UNIT, "role": "desk"},
        headers=ADMIN,
    )
    text = "\n".join(
        [
            HEADER,
            f"new.one,Mới Một,{UNIT},handler,,,,",  # 2 accepted: created
            f"bad.role,Sai Vai Trò,{UNIT},admin,,,,",  # 3 refused
            f"bad.phone,Sai Số,{UNIT},desk,,,0243825123,",  # 4 refused
            f"old.same,Cũ Giữ,{UNIT},desk,,,,",  # 5 duplicate: unchanged
            "old.moved,Cũ Chuyển,000.00.13.H08,desk,,,,",  # 6 accepted: updated
            ",,,,,,,",  # 7 blank: skipped
            f"new.one,Mới Một,{UNIT},handler,,,,1",  # 8 duplicate of row 2
            f"new.one,Mới Một,{UNIT},leader,,,,",  # 9 refused: differs from row 2
            f"short.row,Thiếu Ô,{UNIT},desk",  # 10 refused: cell count
            f"bad.active,Sai Trạng Thái,{UNIT},desk,,,,maybe",  # 11 refused
        ]
    )

    answer = await send_csv(client, text)

    body = answer.json()
    assert answer.status_code == 200
    assert (body["accepted"], body["duplicate"], body["refused"]) == (2, 2, 5)
    rows = {row["row"]: row for row in body["rows"]}
    assert sorted(rows) == [2, 3, 4, 5, 6, 8, 9, 10, 11]
    assert rows[2] == {"row": 2, "outcome": "accepted", "reason": "tạo mới / created"}
    assert rows[3]["outcome"] == "refused" and rows[3]["reason"].startswith("role:")
    assert rows[4]["outcome"] == "refused" and "Vietnamese mobile" in rows[4]["reason"]
    assert rows[5] == {"row": 5, "outcome": "duplicate", "reason": "không đổi / unchanged"}
    assert rows[6] == {"row": 6, "outcome": "accepted", "reason": "cập nhật / updated"}
    assert rows[8]["outcome"] == "duplicate" and "row 2" in rows[8]["reason"]
    assert rows[9]["outcome"] == "refused" and "row 2" in rows[9]["reason"]
    assert rows[10]["outcome"] == "refused" and "4 cells" in rows[10]["reason"]
    assert rows[11]["outcome"] == "refused" and rows[11]["reason"].startswith("active:")
    assert (await officer(client, "new.one"))["role"] == "handler"
    assert (await officer(client, "old.moved"))["unit_code"] == "000.00.13.H08"
    missing = await client.get("/api/v1/officers/bad.role", headers=ADMIN)
    assert missing.status_code == 404


async def test_multipart_field_file_is_read(client: httpx.AsyncClient) -> None:
    files = {"file": ("can-bo.csv", ("\ufeff" + CLEAN).encode(), "text/csv")}

    answer = await client.post("/api/v1/officers/import", files=files, headers=ADMIN)

    assert answer.status_code == 200
    assert answer.json()["accepted"] == 4


async def test_multipart_without_the_file_field_is_422(client: httpx.AsyncClient) -> None:
    files = {"upload": ("can-bo.csv", CLEAN.encode(), "text/csv")}

    answer = await client.post("/api/v1/officers/import", files=files, headers=ADMIN)

    assert answer.status_code == 422


async def test_semicolon_separated_file_from_excel_is_read(client: httpx.AsyncClient) -> None:
    text = "\r\n".join(
        [HEADER.replace(",", ";"), f"lethic.motcua;Lê Thị C;{UNIT};desk;;;0912345678;1", ""]
    )

    answer = await send_csv(client, text)

    assert answer.json()["accepted"] == 1
    assert (await officer(client, "lethic.motcua"))["phone"] == "84912345678"


async def test_header_columns_may_come_in_any_order_and_case(client: httpx.AsyncClient) -> None:
    text = "\n".join(
        [
            "Role,Account,Unit_Code,Full_Name,Active,Phone,Zalo_User_Id,Email,Ghi_chu",
            f"desk,lethic.motcua,{UNIT},Lê Thị C,0,,,,chuyển công tác",
        ]
    )

    answer = await send_csv(client, text, bom=False)

    assert answer.json()["accepted"] == 1
    assert (await officer(client, "lethic.motcua"))["active"] is False


@pytest.mark.parametrize(
    "text",
    [
        "account,full_name,unit_code,role,email,phone,active\nx,X,A,desk,,,",
        "account,account,full_name,unit_code,role,email,zalo_user_id,phone,active\n",
        "",
    ],
)
async def test_file_without_the_columns_is_422(client: httpx.AsyncClient, text: str) -> None:
    answer = await send_csv(client, text, bom=False)

    assert answer.status_code == 422


async def test_file_not_in_utf8_is_422(client: httpx.AsyncClient) -> None:
    data = (HEADER + f"\nlethic,Lê C,{UNIT},desk,,,,\n").encode("latin-1")  # Excel's "ANSI"

    answer = await client.post(
        "/api/v1/officers/import", content=data, headers={**ADMIN, "Content-Type": "text/csv"}
    )

    assert answer.status_code == 422
    assert "UTF-8" in answer.json()["detail"]


async def test_other_media_type_is_415(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/officers/import", json=[], headers=ADMIN)

    assert answer.status_code == 415


async def test_more_than_20000_rows_is_413(client: httpx.AsyncClient) -> None:
    rows = [f"u{n},Cán bộ {n},{UNIT},handler,,,," for n in range(20_001)]

    answer = await send_csv(client, "\n".join([HEADER, *rows]))

    assert answer.status_code == 413
    assert (await client.get("/api/v1/officers", headers=ADMIN)).json()["total"] == 0


async def test_20000_rows_are_imported_in_one_go(client: httpx.AsyncClient) -> None:
    rows = [f"u{n:05},Cán bộ {n},{UNIT},handler,,,,1" for n in range(20_000)]

    answer = await send_csv(client, "\n".join([HEADER, *rows]))

    assert answer.status_code == 200
    assert answer.json()["accepted"] == 20_000
    listed = await client.get("/api/v1/officers", params={"limit": 1}, headers=ADMIN)
    assert listed.json()["total"] == 20_000


@pytest.mark.parametrize("multipart", [False, True])
async def test_file_over_5_mib_is_413(client: httpx.AsyncClient, multipart: bool) -> None:
    data = (HEADER + "\n" + "#" * (5 * 1024 * 1024)).encode()
    if multipart:
        files = {"file": ("can-bo.csv", data, "text/csv")}
        answer = await client.post("/api/v1/officers/import", files=files, headers=ADMIN)
    else:
        answer = await client.post(
            "/api/v1/officers/import", content=data, headers={**ADMIN, "Content-Type": "text/csv"}
        )

    assert answer.status_code == 413
