"""``render``: one message per recipient and channel, for one dossier or a group of them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts.channels.base import Message
from services.alerts.content.rendering import ACK_PURPOSES, PURPOSES, render
from services.alerts.content.wording import alert_content
from services.alerts.content.zalo_messages import ZALO_TEXT_LIMIT, ZNS_VALUE_LIMIT
from shared.vocabulary import Kind
from tests.services.alerts.content.conftest import (
    CODE,
    HANDLER,
    RECIPIENT,
    UNIT,
    UNIT_NAME,
    content,
    discrepancy,
    dossier,
)

ALERT_PURPOSES = [purpose for purpose in PURPOSES if purpose != "digest"]
LINK = "https://doisoat.tinh.gov.vn/ack/token-{}"
ZNS_KEYS = {"ma_ho_so", "ten_thu_tuc", "don_vi", "van_de", "thoi_diem"}


def code(number: int) -> str:
    return f"{UNIT}-241021-{number:04d}"


def group(size: int, kinds: list[Kind] | None = None) -> list[dict[str, Any]]:
    kinds = kinds or list(Kind)
    return [content(kinds[n % len(kinds)], ident=100 + n, code=code(n)) for n in range(size)]


def links(contents: list[dict[str, Any]]) -> dict[int, str]:
    return {
        c["discrepancy_id"]: LINK.format(c["discrepancy_id"])
        for c in contents
        if "discrepancy_id" in c
    }


def message(purpose: str, contents: list[dict[str, Any]], channel: str = "email") -> Message:
    return render(
        purpose,
        contents,
        recipient=RECIPIENT,
        notification_id="n1",
        ack_links=links(contents),
        channel=channel,
    )


def everything(found: Message) -> str:
    return "\n".join([found.subject, found.text, found.html or "", *found.template_data.values()])


def test_subject_of_one_dossier_names_severity_code_and_problem() -> None:
    found = message("opened", [content(Kind.RETURNED_BUT_OPEN)])
    assert found.subject == (
        f"[doisoat] Nghiêm trọng: hồ sơ {CODE} đã trả kết quả nhưng hệ thống vẫn đang xử lý"
    )


def test_subject_of_a_group_counts_the_dossiers() -> None:
    found = message("opened", group(3, [Kind.STALLED]))
    assert found.subject == "[doisoat] 3 sai lệch hồ sơ cần xử lý"


def test_subject_of_a_group_counts_the_critical_ones() -> None:
    contents = group(3, [Kind.RETURNED_BUT_OPEN, Kind.STALLED])
    assert message("opened", contents).subject == (
        "[doisoat] 3 sai lệch hồ sơ cần xử lý (2 nghiêm trọng)"
    )


@pytest.mark.parametrize(("channel", "size"), [("email", 7), ("zalo_oa", 3)])
def test_a_grouped_message_lists_every_dossier(channel: str, size: int) -> None:
    contents = group(size)
    found = message("opened", contents, channel)
    bodies = [found.text] + ([found.html] if found.html else [])
    for body in bodies:
        for item in contents:
            assert item["dossier_code"] in body
            assert item["problem"] in body
            assert LINK.format(item["discrepancy_id"]) in body


def test_the_email_gives_each_dossier_its_procedure_unit_since_and_action() -> None:
    found = message("opened", [content(Kind.OVERDUE_NO_APOLOGY)])
    for body in (found.text, found.html or ""):
        assert "Đăng ký biến động quyền sử dụng đất" in body
        assert f"{UNIT_NAME} ({UNIT})" in body
        assert "17:00 ngày 05/11/2024" in body  # since: the due date passed
        assert "Gửi văn bản xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04)." in body
    assert found.text.startswith(f"Kính gửi {RECIPIENT.full_name},")


@pytest.mark.parametrize("purpose", ALERT_PURPOSES)
def test_ack_links_go_only_with_purposes_that_ask_for_acknowledgement(purpose: str) -> None:
    item = content(Kind.STALLED)
    found = message(purpose, [item])
    link = LINK.format(item["discrepancy_id"])
    assert (link in found.text) == (purpose in ACK_PURPOSES)
    assert (link in (found.html or "")) == (purpose in ACK_PURPOSES)


def test_a_reminder_says_it_is_one() -> None:
    found = message("reminder", [content(Kind.STALLED)])
    assert found.subject.startswith("[doisoat] Nhắc lại")
    assert "vẫn chưa được xác nhận" in found.text


def test_a_severity_rise_says_so_and_shows_the_change() -> None:
    item = {**content(Kind.RETURNED_BUT_OPEN), "previous_severity": "warning"}
    found = message("severity", [item])
    assert found.subject.startswith("[doisoat] Mức độ tăng lên Nghiêm trọng: hồ sơ")
    assert "Cảnh báo → Nghiêm trọng" in found.text


def test_an_escalation_gives_the_delay_and_names_the_responsible_officer() -> None:
    item = {
        **content(Kind.OVERDUE_NO_APOLOGY),
        "escalate_after_working_hours": 4.0,
        "responsible_name": "Trần Thị Bình",
    }
    found = message("escalation", [item])
    assert found.subject.startswith("[doisoat] Chưa được xác nhận sau 4 giờ làm việc: hồ sơ")
    for body in (found.text, found.html or ""):
        assert f"Trần Thị Bình ({HANDLER})" in body
        assert "sau 4 giờ làm việc" in body


def test_a_resolution_gives_the_reason() -> None:
    item = {
        **content(Kind.RETURNED_BUT_OPEN),
        "resolution": "Tự động đóng: điều kiện không còn đúng; trạng thái trên hệ thống: "
        "10 (Đã trả kết quả).",
    }
    found = message("resolved", [item])
    assert found.subject.startswith("[doisoat] Đã tự động đóng: hồ sơ")
    assert "Đã tự động đóng: điều kiện không còn đúng; trạng thái trên hệ thống: 10" in found.text
    assert "Cần làm" not in found.text


def test_unreachable_tells_leaders_which_officer_cannot_be_reached() -> None:
    item = {
        **content(Kind.RETURNED_BUT_OPEN),
        "unreachable": HANDLER,
        "unreachable_name": "Trần Thị Bình",
    }
    found = message("unreachable", [item])
    assert found.subject.startswith(
        f"[doisoat] Không liên lạc được với cán bộ Trần Thị Bình ({HANDLER}): hồ sơ"
    )
    assert "qua bất kỳ kênh nào" in found.text


def test_html_escapes_fields_from_other_systems() -> None:
    item = content(Kind.OVERDUE_NO_APOLOGY, procedure="<script>alert('x')</script>")
    found = message("opened", [item])
    assert "<script>" not in (found.html or "")
    assert "&lt;script&gt;" in (found.html or "")


def test_a_long_group_fits_one_zalo_message_and_counts_the_rest() -> None:
    contents = group(60)
    found = message("opened", contents, "zalo_oa")
    assert len(found.text) <= ZALO_TEXT_LIMIT
    shown = sum(1 for item in contents if item["dossier_code"] in found.text)
    assert 0 < shown < 60
    assert f"… và {60 - shown} hồ sơ khác" in found.text


def test_one_huge_dossier_still_fits_a_zalo_message() -> None:
    item = {**content(Kind.STALLED), "problem": "Rất dài. " * 600}
    found = message("reminder", [item, content(Kind.DUE_SOON, ident=7, code=code(7))], "zalo_oa")
    assert len(found.text) <= ZALO_TEXT_LIMIT
    assert "… và 1 hồ sơ khác" in found.text


def test_zalo_text_has_no_html() -> None:
    found = message("opened", [content(Kind.STALLED)], "zalo_oa")
    assert found.html is None
    assert found.text.startswith("[doisoat] ")


@pytest.mark.parametrize("purpose", PURPOSES)
def test_zns_data_has_the_template_keys_within_limits(purpose: str) -> None:
    long_name = "Thủ tục có tên rất dài " * 10
    contents = (
        [{"unit_code": UNIT, "unit_name": UNIT_NAME, "week": "2024-W45", "kpis": {}}]
        if purpose == "digest"
        else [content(Kind.STALLED, procedure=long_name), content(Kind.DUE_SOON, ident=9)]
    )
    data = message(purpose, contents, "zalo_zns").template_data
    assert set(data) == ZNS_KEYS
    assert all(0 < len(value) <= ZNS_VALUE_LIMIT for value in data.values())
    assert re.fullmatch(r"\d\d:\d\d \d\d/\d\d/\d{4}", data["thoi_diem"])


def test_zns_data_describes_the_first_dossier() -> None:
    data = message("opened", [content(Kind.RETURNED_BUT_OPEN)], "zalo_zns").template_data
    assert data == {
        "ma_ho_so": CODE,
        "ten_thu_tuc": "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất",
        "don_vi": UNIT_NAME,
        "van_de": "Đã trả kết quả nhưng hệ thống vẫn đang xử lý",
        "thoi_diem": "11:15 06/11/2024",
    }


def test_unknown_purpose_or_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose"):
        message("gossip", [content(Kind.STALLED)])
    with pytest.raises(ValueError, match="channel"):
        message("opened", [content(Kind.STALLED)], "sms")


FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quang", "Xuân"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Hà", "Hải", "Hạnh", "Khoa", "Lan", "Mai", "Phúc", "Yến"]
LETTERS = "abcdeghiklmnopqrstuvxyăâđêôơưàáạảãèéẹẻẽìíịỉĩòóọỏõùúụủũỳýỵỷỹ"
invented = st.text(LETTERS, min_size=2, max_size=7).map(str.capitalize)
names = st.builds(
    lambda family, middle, given: " ".join([family, *middle, given]),
    st.sampled_from(FAMILY) | invented,
    st.lists(st.sampled_from(MIDDLE) | invented, min_size=0, max_size=3),
    st.sampled_from(GIVEN) | invented,
)
id_numbers = st.from_regex(r"[0-9]{12}|[0-9]{9}|[A-Z][0-9]{7}", fullmatch=True).filter(
    lambda number: len(set(number)) > 2  # 000000000000 is not a plausible ID number
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    name=names,
    number=id_numbers,
    kind=st.sampled_from([kind for kind in Kind if kind != Kind.NOT_IN_SYSTEM]),
)
def test_no_rendering_ever_shows_the_applicants_name_or_id_number(
    name: str, number: str, kind: Kind
) -> None:
    item = alert_content(
        discrepancy=discrepancy(kind),
        dossier=dossier(applicant=name, id_number=number),
        unit_name=UNIT_NAME,
    )
    assert name not in str(item) and number not in str(item)
    for purpose in ALERT_PURPOSES:
        for channel in ("email", "zalo_oa", "zalo_zns"):
            shown = everything(message(purpose, [item, content(Kind.STALLED, ident=1)], channel))
            assert name not in shown
            assert number not in shown
