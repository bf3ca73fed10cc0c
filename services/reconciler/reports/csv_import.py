"""The desk's register (Sổ theo dõi hồ sơ, contract §2): CSV bytes in, one checked row per line.

Pure: the answer is a list of :class:`RegisterRow` (a report, or the reason it was refused), or
a :class:`RegisterError` for the file as a whole (not UTF-8, not CSV, a required column missing,
too many rows). A bad row is refused on its own and never stops the good ones.

A row's idempotency key is (``don_vi``, ``ma_ho_so``, ``loai``, ``thoi_diem`` as an instant); its
``report_id`` is derived from that key, so importing the same register again, in any order and
with either date format, finds every row already stored.

Accepted beyond the contract's letter, as a desk exporting from Excel would expect:
- UTF-8 with or without a BOM (Excel's "CSV UTF-8" writes one);
- ``,`` as the separator, or ``;`` or a tab when the header row uses it (Excel in a Vietnamese
  locale writes ``;``);
- header names and cells are trimmed, header names and ``loai`` are case-insensitive, other
  columns are ignored, fully blank lines are skipped (neither counted nor answered);
- ``thoi_diem`` as ``dd/MM/yyyy HH:mm`` (or ``dd/MM/yyyy HH:mm:ss``) in Asia/Ho_Chi_Minh, or
  ISO 8601 with a time of day, with an offset or without one meaning Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from services.reconciler.reports.schemas import (
    FieldReportCreate,
    ReportKind,
    future_rejection,
    schema_violation,
)
from shared.clock import VN_TZ
from shared.events import Rejection

MAX_ROWS: Final = 50_000
REQUIRED_COLUMNS: Final = ("ma_ho_so", "loai", "thoi_diem", "can_bo", "don_vi")
OPTIONAL_COLUMNS: Final = ("ghi_chu",)
KINDS: Final[dict[str, ReportKind]] = {"tra_ket_qua": "returned", "rut_ho_so": "withdrawn"}
DELIMITERS: Final = (",", ";", "\t")
COLUMN_OF_FIELD: Final = {
    "report_id": "ma_ho_so",
    "dossier_code": "ma_ho_so",
    "kind": "loai",
    "occurred_at": "thoi_diem",
    "officer": "can_bo",
    "unit_code": "don_vi",
    "note": "ghi_chu",
}

_LOCAL: Final = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) +(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_ISO: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


class RegisterError(ValueError):
    """The file as a whole cannot be read as a register (422)."""


class RegisterTooLarge(RegisterError):
    """More rows than one import may hold (413)."""


@dataclass(frozen=True, slots=True)
class RegisterRow:
    row: int  # line of the file where the record starts; the header is line 1
    report: FieldReportCreate | Rejection


def parse_thoi_diem(text: str) -> datetime | None:
    """``dd/MM/yyyy HH:mm`` (Vietnam time) or ISO 8601 with a time → aware UTC, else None."""
    local = _LOCAL.match(text)
    if local is not None:
        day, month, year, hour, minute, second = (int(part or 0) for part in local.groups())
        try:
            moment = datetime(year, month, day, hour, minute, second, tzinfo=VN_TZ)
        except ValueError:
            return None
        return moment.astimezone(UTC)
    if not _ISO.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VN_TZ)
    return moment.astimezone(UTC)


def row_report_id(*, unit_code: str, dossier_code: str, kind: str, occurred_at: datetime) -> str:
    """The deterministic ``report_id`` of a register row, from its idempotency key."""
    instant = occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    canonical = "\x1f".join((unit_code, dossier_code, kind, instant))
    return "csv-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _problem(code: str, vietnamese: str, english: str) -> Rejection:
    return Rejection(code, f"{vietnamese} / {english}")


def _explicit_problems(cells: dict[str, str]) -> tuple[list[Rejection], datetime | None]:
    """What the CSV can get wrong that the JSON schema would not name in the desk's terms,
    and the moment of ``thoi_diem`` when it parses."""
    problems = [
        _problem(f"missing_{column}", f"thiếu giá trị cột {column}", f"column {column} is empty")
        for column in REQUIRED_COLUMNS
        if not cells[column]
    ]
    loai = cells["loai"]
    if loai and loai.lower() not in KINDS:
        problems.append(
            _problem(
                "invalid_loai",
                f"loai {loai[:40]!r} không hợp lệ (tra_ket_qua | rut_ho_so)",
                f"unknown loai {loai[:40]!r} (expected tra_ket_qua or rut_ho_so)",
            )
        )
    thoi_diem = cells["thoi_diem"]
    occurred_at = parse_thoi_diem(thoi_diem) if thoi_diem else None
    if thoi_diem and occurred_at is None:
        problems.append(
            _problem(
                "invalid_thoi_diem",
                f"thoi_diem {thoi_diem[:40]!r} không đúng dạng dd/MM/yyyy HH:mm hoặc ISO 8601",
                f"thoi_diem {thoi_diem[:40]!r} is neither dd/MM/yyyy HH:mm nor ISO 8601 "
                "with a time of day",
            )
        )
    return problems, occurred_at


def check_row(cells: dict[str, str], *, now: datetime) -> FieldReportCreate | Rejection:
    """One register row (trimmed cells by column name) → a checked report or the reasons why not."""
    problems, occurred_at = _explicit_problems(cells)
    if problems or occurred_at is None:
        if len(problems) == 1:
            return problems[0]
        return Rejection("invalid_row", "; ".join(str(problem) for problem in problems))
    kind = KINDS[cells["loai"].lower()]
    document: dict[str, str] = {
        "report_id": row_report_id(
            unit_code=cells["don_vi"],
            dossier_code=cells["ma_ho_so"],
            kind=kind,
            occurred_at=occurred_at,
        ),
        "dossier_code": cells["ma_ho_so"],
        "kind": kind,
        "occurred_at": occurred_at.isoformat(),
        "officer": cells["can_bo"],
        "unit_code": cells["don_vi"],
    }
    if cells["ghi_chu"]:
        document["note"] = cells["ghi_chu"]
    violation = schema_violation(document)
    if violation is not None:
        field, message = violation
        column = COLUMN_OF_FIELD.get(field, field)
        message = message.replace(f"report.{field}", column)
        return _problem(f"invalid_{column}", f"giá trị cột {column} không hợp lệ", message)
    too_late = future_rejection(occurred_at, now=now)
    if too_late is not None:
        return too_late
    return FieldReportCreate(
        report_id=document["report_id"],
        dossier_code=document["dossier_code"],
        kind=kind,
        occurred_at=occurred_at,
        officer=document["officer"],
        unit_code=document["unit_code"],
        note=document.get("note"),
    )


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise RegisterError(
            f"Tệp không phải UTF-8 (dòng {line}); hãy lưu dạng 'CSV UTF-8'. / "
            f"The file is not UTF-8 (line {line}); save it as 'CSV UTF-8'."
        ) from error


def _header(cells: Sequence[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for position, name in enumerate(cells):
        positions.setdefault(name.strip().lower(), position)
    return positions


def _choose_delimiter(text: str) -> tuple[str, dict[str, int]]:
    """The separator whose header row names the required columns (``,`` unless another does)."""
    first_line = text.splitlines()[0] if text else ""
    best: tuple[int, str, dict[str, int]] | None = None
    for delimiter in DELIMITERS:
        header = _header(next(csv.reader([first_line], delimiter=delimiter), []))
        found = sum(1 for column in REQUIRED_COLUMNS if column in header)
        if best is None or found > best[0]:
            best = (found, delimiter, header)
    assert best is not None
    _, delimiter, header = best
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        names = ", ".join(missing)
        raise RegisterError(
            f"Thiếu cột bắt buộc: {names} (dòng tiêu đề cần có "
            f"{', '.join(REQUIRED_COLUMNS)}; tùy chọn: ghi_chu). / "
            f"Missing required column(s): {names} (the header row needs "
            f"{', '.join(REQUIRED_COLUMNS)}; optional: ghi_chu)."
        )
    return delimiter, header


def parse_register(data: bytes, *, now: datetime, max_rows: int = MAX_ROWS) -> list[RegisterRow]:
    """Every non-blank data line of the register, checked; ``now`` refuses future moments."""
    text = _decode(data)
    if not text.strip():
        raise RegisterError("Tệp rỗng. / The file is empty (a header row is required).")
    delimiter, header = _choose_delimiter(text)
    columns = {column: header.get(column) for column in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[RegisterRow] = []
    try:
        next(reader)  # the header, already read
        previous_line = reader.line_num
        for record in reader:
            start, previous_line = previous_line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                raise RegisterTooLarge(
                    f"Tối đa {max_rows} dòng mỗi lần nhập; hãy chia nhỏ tệp. / "
                    f"At most {max_rows} rows per import; split the file."
                )
            cells = {
                column: record[index].strip() if index is not None and index < len(record) else ""
                for column, index in columns.items()
            }
            rows.append(RegisterRow(row=start, report=check_row(cells, now=now)))
    except csv.Error as error:
        raise RegisterError(
            f"CSV không hợp lệ ở dòng {reader.line_num}: {error} / "
            f"Invalid CSV at line {reader.line_num}: {error}"
        ) from error
    return rows
