"""Form 04, the apology and request for more time, drafted from a dossier's facts (pure).

The proposed date is worked by hand on the calendar: office hours 07:00–11:30 and 13:30–17:00,
Monday to Friday, minus Vietnamese public holidays (30/4, 1/5 and the substituted 2/5 in 2025).
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta

import docx
import pytest
from docx.document import Document
from docx.enum.text import WD_TAB_LEADER

from services.reconciler.forms.apology import (
    PROPOSED_WORKING_DAYS,
    TITLE,
    ApologyFacts,
    apology_document,
    is_overdue,
    proposed_return,
)
from services.reconciler.forms.official import Agency, date_words, docx_bytes, moment_words
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.dvcqg import DueDate

CALENDAR = WorkingCalendar()
CODE = "000.00.12.H08-250421-0007"
APPLICANT = "Nguyễn Văn An"
AGENCY = Agency("Chi nhánh VPĐKĐĐ Tuy Phong", "Văn phòng đăng ký đất đai tỉnh Lâm Đồng")
PROCEDURE = "Đăng ký biến động quyền sử dụng đất"


def vn(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=VN_TZ)


def facts(due: DueDate | None = None, applicant: str | None = APPLICANT) -> ApologyFacts:
    return ApologyFacts(
        code=CODE,
        agency=AGENCY,
        applicant=applicant,
        procedure_name=PROCEDURE,
        received_at=vn(4, 21, 8, 30),
        due=due or DueDate(vn(4, 28, 16), "promised"),
    )


def reopened(document: Document) -> Document:
    """The document as an officer's Word opens it: saved to bytes, read back."""
    return docx.Document(io.BytesIO(docx_bytes(document)))


def texts(document: Document) -> list[str]:
    """Every paragraph's text, the tables' (heading, signature) included, in order."""
    found = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                found += [paragraph.text for paragraph in cell.paragraphs]
    return found


def body(document: Document) -> str:
    return "\n".join(paragraph.text for paragraph in document.paragraphs)


@pytest.mark.parametrize(
    ("now", "proposed", "why"),
    [
        # Tue 29/4 10:00: 5 h left that day; 30/4, 1/5, 2/5 off, then the weekend; Mon 5/5 and
        # Tue 6/5 (16 h); the last 3 h on Wed 7/5 morning → the close of Wed 7/5.
        (vn(4, 29, 10), vn(5, 7, 17), "across the 30/4–2/5 holidays and a weekend"),
        # Fri 16:00: 1 h, then Mon, Tue (16 h), 7 h of Wednesday → its close.
        (vn(3, 7, 16), vn(3, 12, 17), "across a weekend"),
        # A Saturday: three whole working days, Monday to Wednesday.
        (vn(3, 8, 10), vn(3, 12, 17), "from a day off"),
        # Monday at the close: Tuesday, Wednesday and Thursday.
        (vn(3, 10, 17), vn(3, 13, 17), "from the close of office"),
    ],
)
def test_the_proposed_date_is_three_working_days_away_at_the_close(
    now: datetime, proposed: datetime, why: str
) -> None:
    assert PROPOSED_WORKING_DAYS == 3
    assert proposed_return(now, CALENDAR) == proposed, why


def test_the_draft_says_what_the_data_knows_and_leaves_the_reason_blank() -> None:
    now = vn(4, 29, 10)
    document = reopened(apology_document(facts(), now=now, calendar=CALENDAR))
    every = texts(document)
    text = body(document)

    # The heading: the agency under its parent, the national heading, Số and today's date.
    assert "VĂN PHÒNG ĐĂNG KÝ ĐẤT ĐAI TỈNH LÂM ĐỒNG" in every
    assert "CHI NHÁNH VPĐKĐĐ TUY PHONG" in every
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in every
    assert "Độc lập - Tự do - Hạnh phúc" in every
    assert "Số: ……/……" in every
    assert "……, ngày 29 tháng 4 năm 2025" in every

    assert TITLE in every
    assert "Kính gửi: Nguyễn Văn An" in every
    assert (
        "Ngày 21 tháng 4 năm 2025, Chi nhánh VPĐKĐĐ Tuy Phong tiếp nhận hồ sơ đề nghị giải "
        f"quyết thủ tục hành chính “{PROCEDURE}”"
    ) in text
    assert f"mã hồ sơ {CODE}." in text
    assert (
        "Thời hạn trả kết quả giải quyết hồ sơ đã hẹn là: 16 giờ 00 phút, ngày 28 tháng 4 năm 2025."
    ) in every
    assert "sẽ trả kết quả giải quyết hồ sơ vào ngày 07 tháng 5 năm 2025." in text

    # The reason is for the handler to write: a dotted line (a tab with a dot leader) and two
    # more, nothing else.
    paragraphs = document.paragraphs
    at = next(index for index, p in enumerate(paragraphs) if p.text.startswith("Lý do:"))
    assert [p.text for p in paragraphs[at : at + 3]] == ["Lý do:\t", "\t", "\t"]
    for line in paragraphs[at : at + 3]:
        stops = line.paragraph_format.tab_stops
        assert len(stops) == 1 and stops[0].leader == WD_TAB_LEADER.DOTS

    assert "THỦ TRƯỞNG CƠ QUAN" in every
    assert "(Ký, ghi rõ họ tên, đóng dấu)" in every
    assert "Nơi nhận:" in every


def test_it_is_set_in_times_new_roman_13_on_a4() -> None:
    document = reopened(apology_document(facts(), now=vn(4, 29, 10), calendar=CALENDAR))
    normal = document.styles["Normal"]
    assert normal.font.name == "Times New Roman"
    assert normal.font.size is not None and normal.font.size.pt == 13
    width, height = document.sections[0].page_width, document.sections[0].page_height
    assert width is not None and height is not None
    assert (round(width.mm), round(height.mm)) == (210, 297)
    assert document.core_properties.subject == "Mẫu số 04, Thông tư 03/2025/TT-VPCP"


def test_a_due_date_set_by_an_earlier_apology_says_so() -> None:
    due = DueDate(vn(4, 28, 16), "apology", requested_at=vn(4, 24, 9))
    document = reopened(apology_document(facts(due), now=vn(4, 29, 10), calendar=CALENDAR))
    assert (
        "Thời hạn trả kết quả giải quyết hồ sơ đã hẹn là: 16 giờ 00 phút, ngày 28 tháng 4 năm "
        "2025 (theo văn bản xin lỗi ngày 24 tháng 4 năm 2025)."
    ) in texts(document)


def test_an_applicant_whose_name_was_purged_is_a_blank_to_fill() -> None:
    document = reopened(
        apology_document(facts(applicant=None), now=vn(4, 29, 10), calendar=CALENDAR)
    )
    assert "Kính gửi: " + "…" * 12 in texts(document)


def test_the_file_is_a_word_document_in_vietnamese() -> None:
    data = docx_bytes(apology_document(facts(), now=vn(4, 29, 10), calendar=CALENDAR))
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        xml = package.read("word/document.xml").decode("utf-8")
    assert "XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN" in xml  # real characters, not escapes or boxes


def test_dates_are_written_as_official_documents_write_them() -> None:
    assert date_words(vn(2, 5, 9)) == "ngày 05 tháng 02 năm 2025"  # months 1 and 2: a zero
    assert date_words(vn(5, 7, 9)) == "ngày 07 tháng 5 năm 2025"
    assert date_words(vn(12, 24, 9)) == "ngày 24 tháng 12 năm 2025"
    assert moment_words(vn(4, 28, 16)) == "16 giờ 00 phút, ngày 28 tháng 4 năm 2025"


@pytest.mark.parametrize(
    ("status", "due", "desk", "expected"),
    [
        (4, vn(4, 28, 16), False, True),
        (5, vn(4, 28, 16), False, True),  # waiting on the applicant is still open
        (4, vn(4, 29, 10), False, False),  # at the due date itself: still on time
        (4, vn(4, 29, 10) - timedelta(microseconds=1), False, True),
        (4, None, False, False),  # no due date: no due-date rule
        (9, vn(4, 28, 16), False, False),  # finished: nothing to apologise for in advance
        (None, vn(4, 28, 16), False, False),  # only steps known
        (4, vn(4, 28, 16), True, False),  # the desk says it was handed over
    ],
)
def test_overdue_is_what_the_rule_calls_overdue(
    status: int | None, due: datetime | None, desk: bool, expected: bool
) -> None:
    assert is_overdue(status, due, desk_reported=desk, now=vn(4, 29, 10)) is expected
