"""What every official document of doisoat looks like, and how Vietnamese documents write dates.

The presentation of Nghị định 30/2020/NĐ-CP, as officers expect it: A4, margins 20/20/30/15 mm,
Times New Roman 13 pt; the agency's name on the left and the national heading on the right;
dates written out (``ngày 05 tháng 02 năm 2025``: a day below 10 and the months 1 and 2 take a
leading zero). Pure: nothing here reads a clock or a database.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import docx
from docx.document import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT, WD_TAB_LEADER
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from shared.clock import VN_TZ

DOCX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FONT: Final = "Times New Roman"
BODY_SIZE: Final = Pt(13)
NATIONAL_NAME: Final = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
NATIONAL_MOTTO: Final = "Độc lập - Tự do - Hạnh phúc"
DOTS: Final = "…" * 12  # a blank the signer fills in by hand
_RULE: Final = "—" * 5
_RULE_LONG: Final = "—" * 9
TEXT_WIDTH: Final = Mm(165)  # between the margins
_LEFT_WIDTH, _RIGHT_WIDTH = Mm(68), Mm(97)


@dataclass(frozen=True, slots=True)
class Agency:
    """Who issues a document: the unit answering for the dossier, and the unit above it."""

    name: str  # the directory's name of the unit (its code when the directory has none)
    parent_name: str | None = None


def date_words(moment: datetime) -> str:
    """``ngày 05 tháng 02 năm 2025`` in Vietnam time (Nghị định 30/2020's way of writing it)."""
    local = moment.astimezone(VN_TZ)
    month = f"{local.month:02d}" if local.month < 3 else str(local.month)
    return f"ngày {local.day:02d} tháng {month} năm {local.year}"


def moment_words(moment: datetime) -> str:
    """``16 giờ 00 phút, ngày 24 tháng 11 năm 2026``: how the forms write a moment."""
    local = moment.astimezone(VN_TZ)
    return f"{local.hour} giờ {local.minute:02d} phút, {date_words(local)}"


def working_time_words(span: timedelta) -> str:
    """``2 giờ 30 phút làm việc`` (whole minutes, at least one when there is any)."""
    minutes = round(span.total_seconds() / 60)
    if span > timedelta(0):
        minutes = max(minutes, 1)
    hours, rest = divmod(minutes, 60)
    parts = ([f"{hours} giờ"] if hours else []) + ([f"{rest} phút"] if rest or not hours else [])
    return " ".join(parts) + " làm việc"


def new_document(*, title: str, subject: str, comments: str) -> Document:
    """An empty A4 document in the customary presentation, with its properties set."""
    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin = section.bottom_margin = Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    normal = document.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = BODY_SIZE
    _every_script_in(normal.element.get_or_add_rPr())
    defaults = document.styles.element.find(qn("w:docDefaults"))
    if defaults is not None:
        for fonts in defaults.iter(qn("w:rFonts")):  # theme fonts would win over ours
            for name in list(fonts.attrib):
                del fonts.attrib[name]
            _set_fonts(fonts)
    normal.paragraph_format.space_after = Pt(6)
    properties = document.core_properties
    properties.title, properties.subject, properties.comments = title, subject, comments
    properties.author = "doisoat"
    properties.language = "vi-VN"
    return document


def _every_script_in(run_properties: BaseOxmlElement) -> None:
    fonts = run_properties.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        run_properties.insert(0, fonts)
    _set_fonts(fonts)


def _set_fonts(fonts: BaseOxmlElement) -> None:
    for script in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(script), FONT)


def write(
    paragraph: Paragraph,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
) -> Paragraph:
    """Append ``text`` to ``paragraph`` as one run; lines break at ``\\n``."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        run = paragraph.add_run(line)
        run.bold, run.italic = bold or None, italic or None
        if size is not None:
            run.font.size = Pt(size)
        if index < len(lines) - 1:
            run.add_break()
    return paragraph


def paragraph(
    container: Document | _Cell,
    text: str = "",
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
    center: bool = False,
    justify: bool = False,
    indent: bool = False,
    after: float | None = None,
) -> Paragraph:
    """A paragraph of ``container`` (a cell's first one when still empty) with ``text``."""
    if (
        isinstance(container, _Cell)
        and len(container.paragraphs) == 1
        and not _has_text(container.paragraphs[0])
    ):
        added: Paragraph = container.paragraphs[0]
    else:
        added = container.add_paragraph()
    if center:
        added.alignment = WD_ALIGN_PARAGRAPH.CENTER
    elif justify:
        added.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    if indent:
        added.paragraph_format.first_line_indent = Mm(10)
    if after is not None:
        added.paragraph_format.space_after = Pt(after)
    if text:
        write(added, text, bold=bold, italic=italic, size=size)
    return added


def dotted_line(document: Document, label: str = "", *, indent: bool = False) -> Paragraph:
    """``label`` then dots to the right margin (a tab with a dotted leader, as printed forms
    have): a blank the signer fills in by hand."""
    added = paragraph(document, indent=indent, after=0)
    added.paragraph_format.tab_stops.add_tab_stop(
        TEXT_WIDTH, WD_TAB_ALIGNMENT.RIGHT, WD_TAB_LEADER.DOTS
    )
    write(added, f"{label}\t")
    return added


def _has_text(found: Paragraph) -> bool:
    return bool(found.text) or bool(found.runs)


def heading(document: Document, agency: Agency, *, reference: bool, dated: datetime | None) -> None:
    """The agency on the left and the national heading on the right; under them, when asked,
    ``Số: …/…`` and the place-and-date line (the place left for the signer)."""
    below = reference or dated is not None
    table = borderless_table(document, rows=2 if below else 1)
    left, right = table.rows[0].cells
    if agency.parent_name:
        paragraph(left, agency.parent_name.upper(), size=12, center=True, after=0)
    paragraph(left, agency.name.upper(), bold=True, size=12, center=True, after=0)
    paragraph(left, _RULE, center=True, after=0)
    paragraph(right, NATIONAL_NAME, bold=True, size=12, center=True, after=0)
    paragraph(right, NATIONAL_MOTTO, bold=True, center=True, after=0)
    paragraph(right, _RULE_LONG, center=True, after=0)
    if below:
        below_left, below_right = table.rows[1].cells
        if reference:
            paragraph(below_left, "Số: ……/……", center=True)
        if dated is not None:
            paragraph(below_right, f"……, {date_words(dated)}", italic=True, center=True)


def borderless_table(document: Document, *, rows: int) -> Table:
    """Two columns without borders, for the heading and the signature block."""
    table: Table = document.add_table(rows=rows, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    set_widths(table, (_LEFT_WIDTH, _RIGHT_WIDTH))
    return table


def set_widths(table: Table, widths: tuple[int, ...]) -> None:
    """Column widths that Word and LibreOffice both honour (the grid's and every cell's)."""
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = width


def repeat_as_header(table: Table) -> None:
    """The table's first row is repeated at the top of every page it runs onto."""
    properties = table.rows[0]._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    properties.append(flag)


def docx_bytes(document: Document) -> bytes:
    """The document as the bytes of a ``.docx`` file."""
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
