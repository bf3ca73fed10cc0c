"""Form 06 of Thông tư 03/2025/TT-VPCP rebuilt from the data: *Phiếu kiểm soát quá trình giải
quyết hồ sơ*, one row per hand-off, each saying whether the step that ended was done before,
at or after its allowance.

The steps are §7's (:mod:`services.reconciler.lateness.formulas`): a step runs from its
``NgayBatDau`` (else ``ThoiDiemXuLy``) to the next step's start, the last one to the dossier's
end (now while it is open); its allowance ends at ``NgayKetThucTheoQuyDinh``; its overrun is
the working time past that allowance, time waiting on the applicant (statuses 5, 6) excluded.
Row *k* is the hand-off to step *k* — from the holder of step *k − 1* (``NguoiXuLy``, with
``PhongBanXuLy``), at step *k*'s start — with the result of step *k − 1*, which it ended:

- **Trước hạn**: ended before its allowance (not within the same minute);
- **Đúng hạn**: ended at it, within the same minute; or after it with no working time past it
  (handed over on a weekend or in the evening after a deadline at the close of office);
- **Quá hạn**: ended past it by working time, that time shown in working hours;
- **—**: no allowance, or waiting on the applicant (no one's overrun).

A last row closes the sheet: the result handed back (to the one-stop desk for statuses 9 and
10) when the dossier ended, or the step still holding it while it is open (*Đang xử lý*, or
*Quá hạn* already, counted up to now). The page and the ``.docx`` show these same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from docx.document import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Mm, Pt

from services.reconciler.facts import TICK
from services.reconciler.forms.official import (
    Agency,
    heading,
    moment_words,
    new_document,
    paragraph,
    repeat_as_header,
    set_widths,
    working_time_words,
)
from services.reconciler.lateness.formulas import StepFacts, lateness
from shared.calendar import WorkingCalendar
from shared.dvcqg import WAITING_ON_APPLICANT, Status
from shared.vocabulary import STATUS_NAMES, local_time_text

StepResult = Literal["early", "on_time", "late", "none", "ongoing"]
RESULT_LABELS: Final[Mapping[StepResult, str]] = {
    "early": "Trước hạn",
    "on_time": "Đúng hạn",
    "late": "Quá hạn",
    "none": "—",
    "ongoing": "Đang xử lý",
}
TITLE: Final = "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ"
FORM: Final = "Mẫu số 06, Thông tư 03/2025/TT-VPCP"
COLUMNS: Final = (
    "Tên cơ quan, đơn vị, cán bộ (giao, nhận)",
    "Thời gian giao, nhận hồ sơ",
    "Kết quả giải quyết hồ sơ (trước hạn/đúng hạn/quá hạn)",
    "Ghi chú",
)
DESK: Final = "Bộ phận tiếp nhận và trả kết quả"
RETURNED_TO_DESK: Final = frozenset({Status.FINISHED, Status.RETURNED})
_ZERO: Final = timedelta(0)
_WIDTHS: Final = (Mm(60), Mm(38), Mm(32), Mm(35))


@dataclass(frozen=True, slots=True)
class Holder:
    """Who held the dossier: an officer (``NguoiXuLy``, with the directory's name when it knows
    them) in a department (``PhongBanXuLy``), or a part of the agency such as the desk."""

    account: str | None
    name: str | None
    department: str | None

    @property
    def text(self) -> str:
        who = self.name or self.account or "—"
        if self.name and self.account:
            who = f"{self.name} ({self.account})"
        return f"{who}, {self.department}" if self.department else who


@dataclass(frozen=True, slots=True)
class HandOff:
    """One row of the sheet."""

    number: int
    giver: Holder | None  # None: no step before this one
    receiver: Holder | None  # None: the dossier ended without going back to the desk
    at: datetime | None  # None: nobody took it over yet (the holding row of an open dossier)
    result: StepResult  # of the giver's step
    overrun: timedelta  # working time past the giver's allowance (§7)
    note: str

    @property
    def giver_text(self) -> str:
        return self.giver.text if self.giver else "—"

    @property
    def receiver_text(self) -> str:
        if self.at is None:
            return "(đang giữ hồ sơ)"
        return self.receiver.text if self.receiver else "—"

    @property
    def at_text(self) -> str:
        return moment_words(self.at) if self.at else "—"

    @property
    def result_label(self) -> str:
        return RESULT_LABELS[self.result]

    @property
    def overrun_text(self) -> str:
        return working_time_words(self.overrun) if self.result == "late" else ""

    @property
    def cells(self) -> tuple[str, str, str, str]:
        """The row as form 06's four columns write it."""
        result = "\n".join(part for part in (self.result_label, self.overrun_text) if part)
        return (
            f"{self.number}. Giao: {self.giver_text}\nNhận: {self.receiver_text}",
            self.at_text,
            result,
            self.note,
        )


@dataclass(frozen=True, slots=True)
class ControlSheet:
    """Form 06 of one dossier."""

    code: str
    agency: Agency
    procedure_name: str | None
    received_at: datetime | None
    due_at: datetime | None  # the effective due date
    made_at: datetime  # when doisoat rebuilt it (the open dossier's last row counts to then)
    rows: tuple[HandOff, ...]


def hand_offs(
    steps: Sequence[StepFacts],
    *,
    end: datetime,
    ended: bool,
    status: int | None,
    names: Mapping[str, str],
    calendar: WorkingCalendar,
) -> tuple[HandOff, ...]:
    """The sheet's rows: one per step (the hand-off to it), then the closing row.

    ``end`` is the dossier's end (§4's, as the lateness service reads it) when ``ended``, else
    now; ``status`` its ``TrangThaiHoSo``; ``names`` the officers' full names by account."""
    ordered = sorted(steps, key=lambda step: step.started_at)  # §7's order (a stable sort)
    if not ordered:
        return ()
    stops = [step.started_at for step in ordered[1:]] + [max(end, ordered[-1].started_at)]
    overruns = _overruns(ordered, end=end, calendar=calendar)
    holders = [
        Holder(step.officer, names.get(step.officer or ""), step.department) for step in ordered
    ]
    rows: list[HandOff] = []
    result: StepResult
    for index, step in enumerate(ordered):
        if index == 0:
            result, note = "none", "Bắt đầu xử lý"
        else:
            previous = index - 1
            result, note = _outcome(ordered[previous], stops[previous], overruns[previous])
        rows.append(
            HandOff(
                index + 1,
                holders[index - 1] if index else None,
                holders[index],
                step.started_at,
                result,
                overruns[index - 1] if index and result == "late" else _ZERO,
                note,
            )
        )
    last, stop, overrun = ordered[-1], stops[-1], overruns[-1]
    result, note = _outcome(last, stop, overrun, holding=not ended)
    if ended:
        closing = STATUS_NAMES.get(status, "") if status is not None else ""
        note = "; ".join(part for part in (note, f"Kết thúc: {closing}" if closing else "") if part)
        receiver = Holder(None, DESK, None) if status in RETURNED_TO_DESK else None
    else:
        note = "; ".join(part for part in (note, f"tính đến {local_time_text(end)}") if part)
        receiver = None
    rows.append(
        HandOff(
            len(ordered) + 1,
            holders[-1],
            receiver,
            end if ended else None,
            result,
            overrun if result == "late" else _ZERO,
            note,
        )
    )
    return tuple(rows)


def _overruns(
    ordered: Sequence[StepFacts], *, end: datetime, calendar: WorkingCalendar
) -> list[timedelta]:
    """Each step's overrun by §7's arithmetic, in ``ordered``'s order.

    :func:`lateness` charges every step that has an allowance whenever the dossier is late, so
    it is asked as of a due date just before the end: the sheet judges each step, late
    dossier or not. Without any allowance, no step can overrun one."""
    if not any(step.allowed_until is not None for step in ordered):
        return [_ZERO] * len(ordered)
    charged = lateness(ordered, due_at=end - TICK, end=end, unit_code=None, calendar=calendar)
    assert len(charged.steps) == len(ordered)
    return [step.overrun for step in charged.steps]


def _outcome(
    step: StepFacts, stop: datetime, overrun: timedelta, *, holding: bool = False
) -> tuple[StepResult, str]:
    """How ``step``, which ran until ``stop``, kept its allowance (``holding``: it still runs,
    ``stop`` is now)."""
    if step.status in WAITING_ON_APPLICANT:
        return "none", "Chờ người nộp hồ sơ bổ sung hoặc thực hiện nghĩa vụ tài chính"
    allowed = step.allowed_until
    if allowed is None:
        return ("ongoing" if holding else "none"), "Bước không có thời hạn theo quy định"
    limit = f"Hạn của bước: {local_time_text(allowed)}"
    if holding:
        late = overrun > _ZERO and not _same_minute(stop, allowed)
        return ("late" if late else "ongoing"), limit
    if _same_minute(stop, allowed):
        return "on_time", limit
    if stop < allowed:
        return "early", limit
    if overrun > _ZERO:
        return "late", limit
    return "on_time", f"{limit}; giao sau hạn, ngoài giờ làm việc"


def _same_minute(first: datetime, second: datetime) -> bool:
    def minute(moment: datetime) -> datetime:
        return moment.astimezone(UTC).replace(second=0, microsecond=0)

    return minute(first) == minute(second)


def control_sheet_document(sheet: ControlSheet) -> Document:
    """Form 06 of ``sheet`` as a ``.docx`` document: the same rows as the page."""
    document = new_document(
        title=f"Phiếu kiểm soát quá trình giải quyết hồ sơ {sheet.code}",
        subject=FORM,
        comments=(
            f"Lập bởi doisoat lúc {moment_words(sheet.made_at)} từ tiến độ xử lý do hệ thống "
            "gửi; thời gian quá hạn tính theo giờ làm việc."
        ),
    )
    heading(document, sheet.agency, reference=False, dated=None)
    paragraph(document, TITLE, bold=True, size=14, center=True, after=0)
    paragraph(document, f"Mã hồ sơ: {sheet.code}", bold=True, center=True, after=12)
    for label, value in (
        ("Thủ tục hành chính", sheet.procedure_name or "—"),
        ("Cơ quan (bộ phận) giải quyết hồ sơ", sheet.agency.name),
        ("Ngày tiếp nhận", moment_words(sheet.received_at) if sheet.received_at else "—"),
        ("Hạn trả kết quả", moment_words(sheet.due_at) if sheet.due_at else "Không có"),
    ):
        paragraph(document, f"{label}: {value}", after=2)
    table = document.add_table(rows=1, cols=len(COLUMNS))
    table.style = document.styles["Table Grid"]
    table.autofit = False
    for cell, label in zip(table.rows[0].cells, COLUMNS, strict=True):
        paragraph(cell, label, bold=True, size=12, center=True, after=0)
    repeat_as_header(table)
    for row in sheet.rows:
        cells = table.add_row().cells
        for index, (cell, text) in enumerate(zip(cells, row.cells, strict=True)):
            written = paragraph(cell, text, size=12, after=0)
            if index in (1, 2):
                written.alignment = WD_ALIGN_PARAGRAPH.CENTER
    set_widths(table, _WIDTHS)
    if not sheet.rows:
        paragraph(document, "Hệ thống chưa gửi tiến độ xử lý nào của hồ sơ này.", italic=True)
    footnote = paragraph(
        document,
        f"Lập từ tiến độ xử lý do hệ thống gửi, lúc {moment_words(sheet.made_at)}. Thời gian "
        "quá hạn tính theo giờ làm việc, không tính thời gian chờ người nộp hồ sơ.",
        italic=True,
        size=11,
    )
    footnote.paragraph_format.space_before = Pt(6)
    return document
