"""The weekly digest's sections of issue 15, from hand-made contents: the late-dossier
accountability (units, officers, fields by overrun), the rewritten dossiers and the month's
forecast, in the email's HTML and text, and within Zalo's length."""

from __future__ import annotations

from typing import Any

from services.alerts.channels.base import Message
from services.alerts.content.zalo_messages import ZALO_TEXT_LIMIT
from tests.services.alerts.content.conftest import UNIT, UNIT_NAME
from tests.services.alerts.content.test_digest import digest, rendered

LAND, CIVIL = "000.00.12.H08", "000.00.13.H08"


def group(key: str, late: int, hours: float, without: int, late_apology: int, **more: Any) -> Any:
    """A group as ``lateness_by`` gives it: ``label`` the unit's or officer's name, else the key."""
    return {
        "key": key,
        "label": more.pop("label", key),
        "late_dossiers": late,
        "overrun_working_hours": hours,
        "without_apology": without,
        "late_apology": late_apology,
        **more,
    }


def lateness(**overrides: Any) -> dict[str, Any]:
    """Three late dossiers: two of the land office (12,5 h and 8 h over), one of the commune
    (2 h over, apologised late); officer B overran 4,5 + 8 h, C 8 h, E 2 h."""
    return {
        "period": {"from": "2026-11-23", "to": "2026-11-29"},
        "total": 3,
        "overrun_working_hours": 22.5,
        "without_apology": 2,
        "late_apology": 1,
        "units": {
            "count": 2,
            "items": [
                group(LAND, 2, 20.5, 2, 0, label=UNIT_NAME),
                group(CIVIL, 1, 2.0, 0, 1, label="UBND xã Hòa Bình"),
            ],
        },
        "officers": {
            "count": 3,
            "items": [
                group("tranthib.vpdkdd", 2, 12.5, 2, 0, label="Trần Thị B"),
                group("levanc.vpdkdd", 1, 8.0, 1, 0, label="Lê Văn C"),
                group("phamthie.xa", 1, 2.0, 0, 1),  # not in the directory: the account
            ],
        },
        "fields": {
            "count": 2,
            "items": [group("Đất đai", 2, 20.5, 2, 0), group("Hộ tịch", 1, 2.0, 0, 1)],
        },
        **overrides,
    }


REWRITTEN = {
    "dossier_code": f"{UNIT}-261124-0007",
    "procedure_name": "Đăng ký biến động đất đai",
    "status": "open",
    "since": "2026-11-27T09:00:00+07:00",
    "field": "NgayHenTra",
    "before": "2026-11-24T17:00:00+07:00",
    "before_seen_at": "2026-11-23T08:00:00+07:00",
    "after": "2026-11-27T17:00:00+07:00",
    "after_seen_at": "2026-11-27T09:00:00+07:00",
}


def forecast(**overrides: Any) -> dict[str, Any]:
    """The commune is at risk (one dossier decides), the land office already under 98 %."""
    return {
        "period": {"from": "2026-11-01", "to": "2026-11-30"},
        "count": 2,
        "units": [
            {
                "unit_code": CIVIL,
                "unit_name": "UBND xã Hòa Bình",
                "on_time_pct": 98.41,
                "on_time_pct_best": 98.41,
                "on_time_pct_worst": 95.24,
                "outlook": "at_risk",
                "undecided": 2,
                "deciding_count": 1,
                "deciding": [
                    {
                        "dossier_code": f"{CIVIL}-261127-0003",
                        "due_at": "2026-11-30T10:00:00+07:00",
                        "responsible": "phamthie.xa",
                        "responsible_name": "Phạm Thị E",
                    }
                ],
            },
            {
                "unit_code": LAND,
                "unit_name": UNIT_NAME,
                "on_time_pct": 60.0,
                "on_time_pct_best": 60.0,
                "on_time_pct_worst": 20.0,
                "outlook": "under",
                "undecided": 2,
                "deciding_count": 0,
                "deciding": [],
            },
        ],
        **overrides,
    }


def full_digest(**overrides: Any) -> dict[str, Any]:
    """:func:`digest` with every section of issue 15 (as :mod:`services.alerts.digest` stores)."""
    sections = {
        "period": {"from": "2026-11-23", "to": "2026-11-29"},
        "rewritten": [REWRITTEN],
        "totals": {"late": 2, "stalled": 1, "returned_open": 1, "mismatches": 2, "rewritten": 1},
        "lateness": lateness(),
        "forecast": forecast(),
    }
    return digest(**(sections | overrides))


def bodies(found: Message) -> list[str]:
    return [found.text, found.html or ""]


def test_the_accountability_table_ranks_units_and_officers_by_overrun() -> None:
    text = rendered("email", full_digest()).text
    assert (
        "Hồ sơ trễ hạn: thời gian và trách nhiệm (hồ sơ tiếp nhận 23/11 – 29/11/2026):\n"
        "   Hồ sơ trễ hạn: 3; giờ làm việc vượt hạn: 22,5; chưa xin lỗi: 2; xin lỗi muộn: 1.\n"
        "   Theo đơn vị:\n"
        f"     - {UNIT_NAME} ({LAND}): 2 hồ sơ trễ hạn, 20,5 giờ làm việc vượt hạn, "
        "chưa xin lỗi 2, xin lỗi muộn 0\n"
        f"     - UBND xã Hòa Bình ({CIVIL}): 1 hồ sơ trễ hạn, 2 giờ làm việc vượt hạn, "
        "chưa xin lỗi 0, xin lỗi muộn 1\n"
        "   Theo cán bộ:\n"
        "     - Trần Thị B (tranthib.vpdkdd): 2 hồ sơ trễ hạn, 12,5 giờ làm việc vượt hạn, "
        "chưa xin lỗi 2, xin lỗi muộn 0\n"
        "     - Lê Văn C (levanc.vpdkdd): 1 hồ sơ trễ hạn, 8 giờ làm việc vượt hạn, "
        "chưa xin lỗi 1, xin lỗi muộn 0\n"
        "     - phamthie.xa: 1 hồ sơ trễ hạn, 2 giờ làm việc vượt hạn, "
        "chưa xin lỗi 0, xin lỗi muộn 1\n"
        "   Theo lĩnh vực:\n"
        "     - Đất đai: 2 hồ sơ trễ hạn, 20,5 giờ làm việc vượt hạn, chưa xin lỗi 2, "
        "xin lỗi muộn 0\n"
        "     - Hộ tịch: 1 hồ sơ trễ hạn, 2 giờ làm việc vượt hạn, chưa xin lỗi 0, "
        "xin lỗi muộn 1\n"
    ) in text


def test_the_html_accountability_tables_have_a_row_per_unit_officer_and_field() -> None:
    html = rendered("email", full_digest()).html or ""
    cell = '<td style="padding:6px 8px;border:1px solid #d9dee3;{}">{}</td>'
    right = "text-align:right;"
    for label, figures in (
        (f"{UNIT_NAME} ({LAND})", ("2", "20,5", "2", "0")),
        ("Trần Thị B (tranthib.vpdkdd)", ("2", "12,5", "2", "0")),
        ("Hộ tịch", ("1", "2", "0", "1")),
    ):
        row = "\n".join([cell.format("", label), *(cell.format(right, f) for f in figures)])
        assert row in html
    for heading in ("Theo đơn vị", "Theo cán bộ", "Theo lĩnh vực", "Giờ làm việc vượt hạn"):
        assert heading in html
    # KPIs, forecast, units, officers, fields, rewritten, then the four lists
    assert html.count("<table") == 10


def test_rewritten_dossiers_say_which_date_moved_from_what_to_what() -> None:
    found = rendered("email", full_digest())
    assert (
        f"   - {UNIT}-261124-0007 | Ngày hẹn trả kết quả: 17:00 24/11/2026 → 17:00 27/11/2026"
        " | phát hiện 09:00 27/11/2026 | Chưa xác nhận"
    ) in found.text
    html = found.html or ""
    assert "Hồ sơ bị sửa ngày hẹn trả / ngày xử lý (1)" in html
    for cell in ("Ngày hẹn trả kết quả", "17:00 24/11/2026", "17:00 27/11/2026", "Chưa xác nhận"):
        assert f">{cell}</td>" in html


def test_the_forecast_gives_each_unit_its_month_and_the_dossiers_that_decide_it() -> None:
    found = rendered("email", full_digest())
    assert (
        "Dự báo tỷ lệ đúng hạn tháng 11/2026 (hồ sơ tiếp nhận 01/11 – 30/11/2026) – "
        "hiện tại / tốt nhất / xấu nhất:\n"
        f"   - UBND xã Hòa Bình ({CIVIL}): 98,4% / 98,4% / 95,2%. "
        "Chỉ cần 1 hồ sơ sau trễ hạn là dưới 98%:\n"
        f"       1. {CIVIL}-261127-0003 – hạn 10:00 30/11/2026 – Phạm Thị E (phamthie.xa)\n"
        f"   - {UNIT_NAME} ({LAND}): 60% / 60% / 20%. "
        "Đã dưới 98%, kể cả khi mọi hồ sơ còn chờ xong đúng hạn.\n"
    ) in found.text
    assert f"<li>{CIVIL}-261127-0003 – hạn 10:00 30/11/2026 – Phạm Thị E (phamthie.xa)</li>" in (
        found.html or ""
    )


def test_a_safe_unit_is_told_it_keeps_the_target_even_if_all_are_late() -> None:
    safe = {
        **forecast()["units"][1],
        "on_time_pct": 99.5,
        "on_time_pct_best": 99.5,
        "on_time_pct_worst": 98.5,
        "outlook": "safe",
    }
    text = rendered("email", full_digest(forecast=forecast(units=[safe], count=1))).text
    assert "99,5% / 99,5% / 98,5%. Vẫn đạt 98%, kể cả khi mọi hồ sơ còn chờ trễ hạn." in text


def test_long_accountability_tables_show_the_top_and_count_the_other_units_and_officers() -> None:
    units = [group(f"000.00.{n:02d}.H08", 1, 40.0 - n, 1, 0) for n in range(50)]
    people = [group(f"canbo{n:02d}", 1, 40.0 - n, 1, 0, label=f"Cán bộ {n}") for n in range(50)]
    late = lateness(units={"count": 65, "items": units}, officers={"count": 140, "items": people})
    found = rendered("email", full_digest(lateness=late))
    for body in bodies(found):
        assert "000.00.09.H08" in body and "000.00.10.H08" not in body  # top 10 by overrun
        assert "Cán bộ 9 (canbo09)" in body and "canbo10" not in body
        assert "… và 55 đơn vị khác." in body
        assert "… và 130 cán bộ khác." in body


def test_list_counts_are_the_stored_totals_not_the_rows_kept() -> None:
    text = rendered("email", full_digest(totals={"late": 180, "rewritten": 1})).text
    assert "Hồ sơ quá hạn (180):" in text
    assert "… và 178 hồ sơ khác." in text  # two listed


def test_a_digest_stored_before_these_sections_renders_without_them() -> None:
    found = rendered("email", digest())
    for body in bodies(found):
        assert "Hồ sơ trễ hạn: thời gian và trách nhiệm" not in body
        assert "Dự báo tỷ lệ đúng hạn" not in body
        assert "bị sửa ngày" not in body
    assert "Bị sửa ngày" not in rendered("zalo_oa", digest()).text


def test_no_late_dossier_says_so_rather_than_leaving_the_section_out() -> None:
    empty = {"count": 0, "items": []}
    late = lateness(
        total=0,
        overrun_working_hours=0,
        without_apology=0,
        late_apology=0,
        units=empty,
        officers=empty,
        fields=empty,
    )
    text = rendered("email", full_digest(lateness=late)).text
    assert "   Hồ sơ trễ hạn: 0; giờ làm việc vượt hạn: 0; chưa xin lỗi: 0" in text
    assert "   Theo đơn vị:\n     Không có.\n" in text


def test_the_zalo_digest_gives_the_worst_units_officers_fields_rewrites_and_forecast() -> None:
    text = rendered("zalo_oa", full_digest()).text
    assert len(text) <= ZALO_TEXT_LIMIT
    assert (
        "Hồ sơ trễ hạn (tiếp nhận 23/11 – 29/11/2026): 3, vượt hạn 22,5 giờ làm việc; "
        "chưa xin lỗi: 2; xin lỗi muộn: 1."
    ) in text
    assert (
        f"Giờ làm việc vượt hạn theo đơn vị: {UNIT_NAME} ({LAND}) 20,5 giờ (2 hồ sơ); "
        f"UBND xã Hòa Bình ({CIVIL}) 2 giờ (1 hồ sơ)."
    ) in text
    assert "Theo cán bộ: Trần Thị B (tranthib.vpdkdd) 12,5 giờ (2 hồ sơ);" in text
    assert "Theo lĩnh vực: Đất đai 2 hồ sơ; Hộ tịch 1 hồ sơ." in text
    assert (
        f"Hồ sơ bị sửa ngày: {UNIT}-261124-0007 (Ngày hẹn trả kết quả: 17:00 24/11/2026 → "
        "17:00 27/11/2026)."
    ) in text
    assert (
        f"Chỉ cần 1 hồ sơ sau trễ hạn là dưới 98%: {CIVIL}-261127-0003 "
        "(hạn 10:00 30/11/2026, Phạm Thị E (phamthie.xa))"
    ) in text
    assert "Xem đầy đủ" not in text  # everything fitted


def many_units_digest(number: int) -> dict[str, Any]:
    """A province-wide digest: 60 units and 200 officers late, with long names."""
    long_unit = "Ủy ban nhân dân xã có tên đơn vị hành chính mới sau sắp xếp rất dài số {}"
    units = [
        group(f"000.{n:02d}.12.H08", 3, 90.0 - n, 2, 1, label=long_unit.format(n))
        for n in range(50)
    ]
    people = [
        group(f"canbo{n:03d}.xa", 2, 50.0 - n / 10, 1, 1, label=f"Nguyễn Thị Hồng Nhung {n}")
        for n in range(50)
    ]
    deciding = [
        {
            "dossier_code": f"000.{n:02d}.12.H08-261127-{k:04d}",
            "due_at": "2026-11-30T10:00:00+07:00",
            "responsible": f"canbo{k:03d}.xa",
            "responsible_name": f"Nguyễn Thị Hồng Nhung {k}",
        }
        for n in range(3)
        for k in range(20)
    ]
    at_risk = forecast()["units"][0]
    return full_digest(
        unit_name=f"Đơn vị số {number} " + "với tên rất dài " * 10,
        rewritten=[REWRITTEN] * 50,
        totals={"late": 0, "rewritten": 75},
        lateness=lateness(
            total=180,
            units={"count": 60, "items": units},
            officers={"count": 200, "items": people},
            fields={"count": 40, "items": [group(f"Lĩnh vực {n}", 2, 9, 1, 0) for n in range(40)]},
        ),
        forecast=forecast(
            count=60,
            units=[
                {**at_risk, "unit_name": long_unit.format(n), "deciding_count": 20,
                 "deciding": deciding[n * 20 : n * 20 + 20]}
                for n in range(3)
            ],
        ),
    )  # fmt: skip


def test_the_zalo_digest_stays_within_zalos_limit_with_many_units_and_officers() -> None:
    text = rendered("zalo_oa", many_units_digest(1)).text
    assert len(text) <= ZALO_TEXT_LIMIT
    assert "; và 57 đơn vị khác." in text  # the three worst named, the others counted
    assert "; và 197 cán bộ khác." in text
    assert "; và 37 lĩnh vực khác." in text
    assert text.endswith("\n… Xem đầy đủ trong email tổng hợp và trên trang giao ban (doisoat).")
    assert text.startswith("[doisoat] Tổng hợp tuần 48/2026: Đơn vị số 1 ")


def test_a_zalo_digest_too_long_for_one_message_ends_with_where_to_read_it_all() -> None:
    text = rendered("zalo_oa", *(many_units_digest(n) for n in range(4))).text
    assert len(text) <= ZALO_TEXT_LIMIT
    assert text.endswith(
        "\n… Xem đầy đủ (cả 3 đơn vị khác) trong email tổng hợp và trên trang giao ban (doisoat)."
    )
    assert "Theo cán bộ:" in text  # the first unit's lines, in order, before the cut
    assert "• Đơn vị số 1" not in text


def test_the_zns_digest_counts_the_rewritten_dossiers() -> None:
    data = rendered("zalo_zns", full_digest()).template_data
    assert data["van_de"] == (
        "Quá hạn 2, chậm 1, đã trả chưa cập nhật 1, sửa ngày 1, sai lệch khác 2"
    )
