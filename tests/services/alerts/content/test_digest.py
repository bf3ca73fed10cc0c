"""The leaders' weekly digest: late, stalled, returned-but-open and mismatched dossiers, KPIs
(the sections of issue 15 are in ``test_digest_accountability``)."""

from __future__ import annotations

from typing import Any

from services.alerts.channels.base import Message
from services.alerts.content.digest_views import DIGEST_TABLE_ROWS
from services.alerts.content.rendering import render
from services.alerts.content.zalo_messages import ZALO_TEXT_LIMIT
from tests.services.alerts.content.conftest import RECIPIENT, UNIT, UNIT_NAME


def entry(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "dossier_code": f"{UNIT}-261120-{number:04d}",
        "procedure_name": "Chứng thực bản sao từ bản chính",
        "due_at": "2026-11-20T17:00:00+07:00",
        "status": 4,
        **fields,
    }


def digest(**overrides: Any) -> dict[str, Any]:
    return {
        "unit_code": UNIT,
        "unit_name": UNIT_NAME,
        "week": "2026-W48",
        "late": [entry(1), entry(2, status=5)],
        "stalled": [entry(3, last_activity_at="2026-11-16T08:30:00+07:00")],
        "returned_open": [entry(4)],
        "mismatches": [
            {"dossier_code": entry(5)["dossier_code"], "kind": "TIME_MISMATCH", "since": None},
            {
                "dossier_code": entry(6)["dossier_code"],
                "kind": "STATUS_CONFLICT",
                "since": "2026-11-24T10:00:00+07:00",
            },
        ],
        "kpis": {
            "on_time_pct": 95.24,
            "online_pct": 61.0,
            "digitised_pct": None,
            "in_system_pct": 100.0,
            "received": 120,
            "without_due_date": 2,
        },
        **overrides,
    }


def rendered(channel: str = "email", *contents: dict[str, Any]) -> Message:
    return render(
        "digest",
        list(contents) or [digest()],
        recipient=RECIPIENT,
        notification_id="d1",
        ack_links={},
        channel=channel,
    )


def test_subject_names_the_week_and_the_unit() -> None:
    assert rendered().subject == f"[doisoat] Tổng hợp tuần 48/2026: {UNIT_NAME}"


def test_the_email_lists_every_dossier_of_every_section() -> None:
    found = rendered()
    for body in (found.text, found.html or ""):
        for number in range(1, 7):
            assert f"{UNIT}-261120-{number:04d}" in body
        for section in (
            "Hồ sơ quá hạn (2)",
            "Hồ sơ chậm xử lý (1)",
            "Đã trả kết quả nhưng hệ thống chưa cập nhật (1)",
            "Sai lệch khác (2)",
        ):
            assert section in body
        assert "Yêu cầu bổ sung giấy tờ" in body  # status 5, by name
        assert "Lệch thời điểm trả kết quả" in body  # the kind, in words
        assert "08:30 16/11/2026" in body  # last activity of the stalled one


def test_kpis_are_shown_beside_their_targets_with_a_mark() -> None:
    text = rendered().text
    assert "Giải quyết đúng hạn: 95,2% / 98% ✗" in text
    assert "Hồ sơ trực tuyến: 61% / 50% ✓" in text
    assert "Hồ sơ có thành phần số hóa: — / 80%\n" in text  # nothing to count: no mark
    assert "Hồ sơ Một cửa có trên hệ thống: 100% / 100% ✓" in text
    assert "Hồ sơ tiếp nhận: 120; không có hạn trả: 2" in text


def test_the_html_uses_tables_and_escapes() -> None:
    html = rendered("email", digest(late=[entry(1, procedure_name="<b>x</b>")])).html or ""
    assert html.count("<table") == 5  # KPIs, late, stalled, returned-but-open, mismatches
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_long_sections_are_cut_and_counted() -> None:
    many = [entry(n) for n in range(DIGEST_TABLE_ROWS + 25)]
    found = rendered("email", digest(late=many))
    assert "… và 25 hồ sơ khác." in found.text
    assert f"Hồ sơ quá hạn ({DIGEST_TABLE_ROWS + 25})" in found.text


def test_the_zalo_digest_is_short_and_gives_the_counts() -> None:
    found = rendered("zalo_oa")
    assert found.html is None
    assert len(found.text) <= ZALO_TEXT_LIMIT
    assert "Quá hạn: 2" in found.text
    assert "giải quyết đúng hạn 95,2% (mục tiêu 98%) ✗" in found.text


def test_several_units_in_one_message_each_get_their_section() -> None:
    other = digest(unit_code="000.00.13.H08", unit_name="UBND xã Hòa Bình")
    found = rendered("email", digest(), other)
    assert found.subject == "[doisoat] Tổng hợp tuần 48/2026: 2 đơn vị"
    assert UNIT_NAME in found.text and "UBND xã Hòa Bình" in found.text
