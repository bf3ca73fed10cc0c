"""Tables of the pages, and the same tables as Excel workbooks (``.xlsx``, openpyxl).

A page describes a table once (its columns, their kinds, its rows); the template draws it and
:func:`xlsx` writes it, so the file a leader downloads holds the rows on the screen. In the file
a percentage is a number with a ``%`` format (94.44 → 0.9444 shown as 94,44% by a Vietnamese
Excel), a moment a date-time in Vietnam time, a count an integer, hours (working hours overrun)
a number with two decimals; text stays text, even when a hostile field starts with ``=`` (no
formula is ever written).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from shared.clock import VN_TZ

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ColumnKind = Literal["text", "count", "hours", "percent", "moment", "dossier", "unit"]
NUMERIC_KINDS: Final = frozenset({"count", "hours", "percent"})
_FORMATS: Final[Mapping[str, str]] = {
    "count": "#,##0",
    "hours": "#,##0.00",
    "percent": "0.00%",
    "moment": "dd/mm/yyyy hh:mm",
}
_SHEET_TITLE_FORBIDDEN = str.maketrans({character: " " for character in "[]:*?/\\"})
MAX_COLUMN_WIDTH = 60


@dataclass(frozen=True, slots=True)
class Column:
    """One column: ``key`` in each row, its header, how its values read.

    ``percent`` values run 0..100 (or None), like the API's; ``target`` marks them good or bad.
    """

    key: str
    header: str
    kind: ColumnKind = "text"
    target: int | None = None

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table: what a page shows and what its export writes."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: Sequence[Mapping[str, Any]]
    footer: Mapping[str, Any] | None = None  # a totals row, after the sortable rows
    total: int | None = None  # how many rows exist when ``rows`` stops at a limit
    notes: tuple[str, ...] = field(default=())

    @property
    def truncated(self) -> bool:
        return self.total is not None and self.total > len(self.rows)


def xlsx(table: Table, *, heading: str) -> bytes:
    """The table as a one-sheet workbook: headers on row 1, its rows, then its footer."""
    book = Workbook()
    sheet = book.active
    sheet.title = table.title.translate(_SHEET_TITLE_FORBIDDEN)[:31]
    book.properties.title = heading
    book.properties.creator = "doisoat"
    widths = [len(column.header) for column in table.columns]
    for index, column in enumerate(table.columns, start=1):
        sheet.cell(row=1, column=index, value=column.header).font = Font(bold=True)
    lines = [*table.rows, *([table.footer] if table.footer is not None else [])]
    for row_number, row in enumerate(lines, start=2):
        for index, column in enumerate(table.columns, start=1):
            cell = sheet.cell(row=row_number, column=index)
            _write(cell, column, row.get(column.key))
            widths[index - 1] = max(widths[index - 1], len(str(cell.value or "")))
            if row is table.footer:
                cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(width + 2, MAX_COLUMN_WIDTH)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _write(cell: Any, column: Column, value: Any) -> None:
    if value is None:
        return
    if column.kind == "percent":
        cell.value = float(value) / 100
    elif column.kind == "count":
        cell.value = int(value)
    elif column.kind == "hours":
        cell.value = float(value)
    elif column.kind == "moment" and isinstance(value, datetime):
        cell.value = value.astimezone(VN_TZ).replace(tzinfo=None)  # Excel has no time zones
    else:
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", str(value))
        cell.data_type = "s"  # never a formula, whatever the text starts with
    if column.kind in _FORMATS:
        cell.number_format = _FORMATS[column.kind]


def content_disposition(filename: str) -> str:
    """An attachment header; ``filename`` must be ASCII (the callers build it from codes)."""
    return f'attachment; filename="{filename}"'
