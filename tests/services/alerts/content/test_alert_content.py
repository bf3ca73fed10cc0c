"""``alert_content``: the stored content of one outbox row says what is wrong and what to do."""

from __future__ import annotations

import json
import re

import pytest

from services.alerts.content.wording import alert_content, mask_applicant
from shared.vocabulary import Kind
from tests.services.alerts.content.conftest import (
    APPLICANT,
    CODE,
    DESK_OFFICER,
    ID_NUMBER,
    PROCEDURE,
    UNIT,
    UNIT_NAME,
    content,
    discrepancy,
    dossier,
)

# Letters only Vietnamese has (with diacritics): proof the text is not stripped to ASCII.
VIETNAMESE = re.compile(r"[ăâđêôơưàáạảãèéẹẻẽìíịỉĩòóọỏõùúụủũỳýỵỷỹằắặẳẵầấậẩẫềếệểễồốộổỗờớợởỡừứựửữ]")


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_says_what_is_wrong_and_what_to_do_in_vietnamese(kind: Kind) -> None:
    found = content(kind)
    for field in ("problem", "action", "summary", "kind_label"):
        assert VIETNAMESE.search(found[field].lower()), (field, found[field])
    assert found["problem"].endswith(".")
    assert found["action"].endswith(".")
    serialised = json.dumps(found, ensure_ascii=False)
    assert ID_NUMBER not in serialised
    assert APPLICANT not in serialised


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        (Kind.RETURNED_BUT_OPEN, "Cập nhật trạng thái Đã trả kết quả trên hệ thống."),
        (Kind.OVERDUE_NO_APOLOGY, "Gửi văn bản xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04)."),
        (Kind.STALLED, "Xử lý tiếp hồ sơ hoặc cập nhật tiến độ trên hệ thống."),
        (Kind.NOT_IN_SYSTEM, "Đồng bộ hồ sơ lên hệ thống thông tin giải quyết TTHC."),
    ],
)
def test_the_action_is_the_concrete_step_for_the_kind(kind: Kind, action: str) -> None:
    assert content(kind)["action"] == action


def test_returned_but_open_names_the_desk_moment_and_the_system_status() -> None:
    assert content(Kind.RETURNED_BUT_OPEN)["problem"] == (
        "Bộ phận Một cửa đã trả kết quả cho công dân lúc 09:15 ngày 06/11/2024 nhưng hệ thống "
        "vẫn ở trạng thái Đang xử lý."
    )


def test_a_withdrawal_is_worded_as_a_withdrawal() -> None:
    row = discrepancy(Kind.RETURNED_BUT_OPEN)
    row["details"] = {**row["details"], "desk_kind": "withdrawn"}
    found = alert_content(discrepancy=row, dossier=dossier(), unit_name=UNIT_NAME)
    assert "rút hồ sơ" in found["problem"]
    assert found["action"] == "Cập nhật trạng thái Công dân yêu cầu rút hồ sơ trên hệ thống."


def test_time_mismatch_gives_both_moments_and_the_gap() -> None:
    problem = content(Kind.TIME_MISMATCH)["problem"]
    assert "09:15 ngày 06/11/2024" in problem
    assert "16:00 ngày 06/11/2024" in problem
    assert "lệch 6 giờ 45 phút" in problem


def test_stalled_counts_the_stall_in_working_days() -> None:
    found = content(Kind.STALLED)
    assert "3 ngày làm việc" in found["problem"]
    assert "08:00 ngày 06/11/2024" not in found["problem"]
    assert found["last_activity_at"] == "2024-10-28T09:00:00+07:00"


def test_content_carries_the_facts_a_message_needs() -> None:
    found = content(Kind.RETURNED_BUT_OPEN)
    assert found["discrepancy_id"] == 42
    assert found["dossier_code"] == CODE
    assert found["procedure_name"] == PROCEDURE
    assert (found["unit_code"], found["unit_name"]) == (UNIT, UNIT_NAME)
    assert (found["kind"], found["severity"]) == ("RETURNED_BUT_OPEN", "critical")
    assert found["severity_label"] == "Nghiêm trọng"
    assert (found["system_status"], found["system_status_name"]) == (4, "Đang xử lý")
    assert found["occurred_at"] == "2024-11-06T09:15:00+07:00"
    assert found["officer"] == DESK_OFFICER
    assert found["due_at"] is None  # not what this kind is about


def test_times_are_iso_with_the_vietnam_offset() -> None:
    found = content(Kind.OVERDUE_NO_APOLOGY)
    assert found["since"].endswith("+07:00")
    assert found["due_at"] == "2024-11-05T17:00:00+07:00"
    json.dumps(found)  # stored as JSON on the outbox row


def test_the_applicant_is_masked() -> None:
    assert content(Kind.OVERDUE_NO_APOLOGY)["applicant"] == "Nguyễn V. Ánh"


def test_a_two_word_name_is_masked_too() -> None:
    # mask_name keeps both words of a two-word name: that would be the whole name.
    assert mask_applicant("Lê Hoa") == "Lê H."


def test_not_in_system_needs_no_dossier() -> None:
    found = content(Kind.NOT_IN_SYSTEM)
    assert found["procedure_name"] is None
    assert found["applicant"] is None
    assert found["system_status"] is None


def test_an_api_shaped_discrepancy_gives_the_same_content() -> None:
    row = discrepancy(Kind.DUE_SOON)
    api = {**row, "id": "42", "since": row["since"].isoformat()}
    from_row = alert_content(discrepancy=row, dossier=dossier(), unit_name=UNIT_NAME)
    from_api = alert_content(discrepancy=api, dossier=dossier(), unit_name=UNIT_NAME)
    assert from_api == from_row
