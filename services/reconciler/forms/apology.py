"""Form 04 of Thông tư 03/2025/TT-VPCP, pre-filled: *Văn bản xin lỗi và đề nghị gia hạn thời
gian giải quyết hồ sơ*, for a dossier past its effective due date (``OVERDUE_NO_APOLOGY``).

Everything the data knows is filled in — the agency (the unit answering for the dossier, under
its parent), the applicant it is addressed to, the dossier's code, procedure and day of
receipt, the due date it missed and today's date — and so is the proposed new date: now plus
:data:`PROPOSED_WORKING_DAYS` (3) working days (8 office hours each, on the working-day calendar:
weekends and public holidays skipped), at the close of that working day (17:00). The reason
is left as a dotted line: only the handler knows it; they fill it in, correct the date if
they must, and have it signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from docx.document import Document
from docx.shared import Pt

from services.reconciler.forms.official import (
    DOTS,
    Agency,
    borderless_table,
    date_words,
    dotted_line,
    heading,
    moment_words,
    new_document,
    paragraph,
)
from shared.calendar import WorkingCalendar
from shared.dvcqg import OPEN_STATUSES, DueDate

# The proposed new date is this many working days from now (a module constant, as the
# document's docstring says), rounded to the end of that working day.
PROPOSED_WORKING_DAYS: Final = 3
TITLE: Final = "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT HỒ SƠ"
FORM: Final = "Mẫu số 04, Thông tư 03/2025/TT-VPCP"
REASON_LABEL: Final = "Lý do:"
ADDRESSEE: Final = "Ông/Bà, cơ quan, tổ chức"


@dataclass(frozen=True, slots=True)
class ApologyFacts:
    """What form 04 says of one dossier (the applicant's name whole: it is addressed to them;
    never the ID number)."""

    code: str
    agency: Agency
    applicant: str | None  # ChuHoSo
    procedure_name: str | None  # TenTTHC
    received_at: datetime | None  # NgayTiepNhan
    due: DueDate  # the effective due date, and where it came from


def is_overdue(
    status: int | None, due_at: datetime | None, *, desk_reported: bool, now: datetime
) -> bool:
    """Overdue as ``OVERDUE_NO_APOLOGY`` judges it: open, past its effective due date (at the
    due date itself still on time), and not reported returned or withdrawn by the desk."""
    return status in OPEN_STATUSES and due_at is not None and now > due_at and not desk_reported


def proposed_return(now: datetime, calendar: WorkingCalendar) -> datetime:
    """Now plus :data:`PROPOSED_WORKING_DAYS` working days, at the close of that working day."""
    reached = calendar.add_working_time(now, PROPOSED_WORKING_DAYS * calendar.day_length)
    day = reached.astimezone(calendar.tz).date()
    closing = calendar.office_hours[-1][1]
    return datetime.combine(day, closing, tzinfo=calendar.tz)


def apology_document(facts: ApologyFacts, *, now: datetime, calendar: WorkingCalendar) -> Document:
    """Form 04 for ``facts``, dated ``now``, proposing to return the result
    :data:`PROPOSED_WORKING_DAYS` (3) working days from ``now``, at the close of that day
    (:func:`proposed_return`); the reason is a dotted line left to fill in."""
    proposed = proposed_return(now, calendar)
    agency = facts.agency.name
    document = new_document(
        title=f"{TITLE.capitalize()} — hồ sơ {facts.code}",
        subject=FORM,
        comments=(
            f"Dự thảo do doisoat lập lúc {moment_words(now)} từ dữ liệu hệ thống: ghi lý do, "
            "kiểm tra ngày hẹn mới rồi trình ký."
        ),
    )
    heading(document, facts.agency, reference=True, dated=now)
    paragraph(document, TITLE, bold=True, size=14, center=True, after=12)
    paragraph(document, f"Kính gửi: {facts.applicant or DOTS}", center=True, after=12)

    received = date_words(facts.received_at).capitalize() if facts.received_at else "Ngày …"
    procedure = f"“{facts.procedure_name}”" if facts.procedure_name else DOTS
    paragraph(
        document,
        f"{received}, {agency} tiếp nhận hồ sơ đề nghị giải quyết thủ tục hành chính "
        f"{procedure} của {ADDRESSEE}, mã hồ sơ {facts.code}.",
        justify=True,
        indent=True,
    )
    paragraph(
        document,
        f"Thời hạn trả kết quả giải quyết hồ sơ đã hẹn là: {_due_text(facts.due)}.",
        justify=True,
        indent=True,
    )
    paragraph(
        document,
        f"Tuy nhiên đến nay, {agency} chưa trả kết quả giải quyết hồ sơ của {ADDRESSEE}.",
        justify=True,
        indent=True,
    )
    dotted_line(document, REASON_LABEL, indent=True)
    dotted_line(document)
    dotted_line(document).paragraph_format.space_after = Pt(6)
    paragraph(
        document,
        f"Sự chậm trễ này đã gây phiền hà, tốn kém chi phí đi lại của {ADDRESSEE}. {agency} "
        f"trân trọng xin lỗi {ADDRESSEE}, đề nghị được gia hạn thời gian giải quyết hồ sơ và "
        f"sẽ trả kết quả giải quyết hồ sơ vào {date_words(proposed)}.",
        justify=True,
        indent=True,
    )
    paragraph(
        document,
        f"Xin trân trọng cảm ơn sự hợp tác của {ADDRESSEE}./.",
        justify=True,
        indent=True,
        after=12,
    )
    _signature(document)
    return document


def _due_text(due: DueDate) -> str:
    if due.at is None:
        return DOTS
    said = moment_words(due.at)
    if due.source == "apology" and due.requested_at is not None:
        return f"{said} (theo văn bản xin lỗi {date_words(due.requested_at)})"
    if due.source == "supplement" and due.requested_at is not None:
        return f"{said} (sau yêu cầu bổ sung hồ sơ {date_words(due.requested_at)})"
    return said


def _signature(document: Document) -> None:
    table = borderless_table(document, rows=1)
    recipients, signer = table.rows[0].cells
    paragraph(recipients, "Nơi nhận:", bold=True, italic=True, size=12, after=0)
    paragraph(recipients, "- Như trên;", size=11, after=0)
    paragraph(recipients, "- Lưu: VT, ……", size=11, after=0)
    paragraph(signer, "THỦ TRƯỞNG CƠ QUAN", bold=True, center=True, after=0)
    paragraph(signer, "(Ký, ghi rõ họ tên, đóng dấu)", italic=True, center=True)
