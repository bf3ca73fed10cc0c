"""What the directory endpoints take and answer (contract §3), and how an officers CSV is read.

Field rules live here once and serve the JSON bodies and the CSV rows alike: agency codes are
``[0-9A-Za-z._-]{1,64}``; a blank optional text is null; e-mail addresses are checked for shape
(the domain lower-cased); phones are Vietnamese mobile numbers normalised to ``84`` + 9 digits,
the form Zalo ZNS wants.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
)

from shared.clock import VN_TZ
from shared.directory import OfficerRecord

CODE_PATTERN = r"^[0-9A-Za-z._-]+$"
# No control characters, no blank at either end; inner spaces are allowed (``NguoiXuLy`` is free).
ACCOUNT_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"

OfficerRole = Literal["handler", "desk", "leader"]
ImportOutcome = Literal["accepted", "duplicate", "refused"]

CSV_COLUMNS = (
    "account",
    "full_name",
    "unit_code",
    "role",
    "email",
    "zalo_user_id",
    "phone",
    "active",
)

_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_PHONE_SEPARATORS = re.compile(r"[ .\-]")
_PHONE = re.compile(r"(?:\+84|84|0)([35789][0-9]{8})")
_TRUE = frozenset({"1", "true", "có", "co"})
_FALSE = frozenset({"0", "false", "không", "khong"})


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _blank_is_null(schema: dict[str, Any]) -> None:
    """What ``_blank_to_none`` does, in the OpenAPI document: a blank text is taken (as null)."""
    schema["anyOf"] = [*schema.get("anyOf", ()), {"type": "string", "pattern": r"^\s*$"}]


# A blank text is null, when read and in the document.
BLANK_IS_NULL = Field(json_schema_extra=_blank_is_null)


def normalise_email(value: str) -> str:
    """``Ten.CanBo@Tinh.Gov.VN`` → ``Ten.CanBo@tinh.gov.vn``; anything not shaped so is refused."""
    match = _EMAIL.fullmatch(value)
    if match is None or len(match["local"]) > 64 or len(value) > 254:
        raise ValueError("địa chỉ email không hợp lệ / not a valid e-mail address")
    return f"{match['local']}@{match['domain'].lower()}"


def normalise_phone(value: str) -> str:
    """``0912 345 678``, ``+84912345678`` or ``84912345678`` → ``84912345678``."""
    match = _PHONE.fullmatch(_PHONE_SEPARATORS.sub("", value))
    if match is None:
        raise ValueError(
            "số điện thoại phải là số di động Việt Nam (0912345678, +84912345678 hoặc "
            "84912345678) / phone must be a Vietnamese mobile number "
            "(0912345678, +84912345678 or 84912345678)"
        )
    return "84" + match.group(1)


def parse_active(value: Any) -> Any:
    """CSV ``active``: 1/0, true/false, có/không (any case, accents optional); empty is true."""
    if not isinstance(value, str):
        return value
    word = unicodedata.normalize("NFC", value).strip().casefold()
    if not word or word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("active phải là 1/0, true/false, có/không / active must be 1/0, true/false")


Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=CODE_PATTERN)]
OptionalCode = Annotated[Code | None, BeforeValidator(_blank_to_none), BLANK_IS_NULL]
Account = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ACCOUNT_PATTERN)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(normalise_email)]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(normalise_phone)]
ZaloUserId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]


class DirectoryModel(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid", from_attributes=True)


class UnitUpdate(DirectoryModel):
    """``PUT /units/{code}``: the whole unit; an omitted or blank parent/successor is null."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    parent_code: OptionalCode = None
    replaced_by: OptionalCode = None


class UnitRead(DirectoryModel):
    code: str
    name: str
    parent_code: str | None
    replaced_by: str | None
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> UnitRead:
        return cls.model_validate(row).model_copy(
            update={"updated_at": row.updated_at.astimezone(VN_TZ)}
        )


class UnitDetailRead(UnitRead):
    answering_unit: str

    @classmethod
    def of_unit(cls, row: Any, *, answering_unit: str) -> UnitDetailRead:
        return cls(**UnitRead.of(row).model_dump(), answering_unit=answering_unit)


class UnitPage(DirectoryModel):
    items: list[UnitRead]
    total: int


class OfficerUpdate(DirectoryModel):
    """``PUT /officers/{account}``: the whole officer; omitted contact fields become null."""

    full_name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    unit_code: Code
    role: OfficerRole
    email: Annotated[Email | None, BeforeValidator(_blank_to_none), BLANK_IS_NULL] = None
    zalo_user_id: Annotated[ZaloUserId | None, BeforeValidator(_blank_to_none), BLANK_IS_NULL] = (
        None
    )
    phone: Annotated[Phone | None, BeforeValidator(_blank_to_none), BLANK_IS_NULL] = None
    active: StrictBool = True  # JSON true or false (a CSV row reads 1/0, có/không: below)


class OfficerImportRow(OfficerUpdate):
    """One CSV row: the account plus the same fields, ``active`` spelled as in a spreadsheet."""

    account: Account
    active: Annotated[bool, BeforeValidator(parse_active)] = True


class OfficerPage(DirectoryModel):
    items: list[OfficerRecord]
    total: int


class ImportRowRead(DirectoryModel):
    row: int
    outcome: ImportOutcome
    reason: str | None = None


class ImportRead(DirectoryModel):
    """Same shape as the field-report import (contract §2)."""

    accepted: int
    duplicate: int
    refused: int
    rows: list[ImportRowRead]


class CsvFileError(ValueError):
    """The file as a whole cannot be read (encoding, header): nothing is imported."""


class CsvTooManyRows(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CsvRow:
    """A data row: its spreadsheet row number (the header is row 1), and the officer or why not."""

    row: int
    officer: OfficerImportRow | None
    reason: str | None = None


def describe(error: ValidationError) -> str:
    """Pydantic's errors as one line: ``phone: số điện thoại … / phone must be …``."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "row"
        parts.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def read_officer_csv(data: bytes, *, max_rows: int) -> list[CsvRow]:
    """Parse an officers CSV (UTF-8, optional BOM, ``,`` or ``;``); bad rows are kept as refused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = f"byte {error.start}"
        raise CsvFileError(
            f"Tệp không phải UTF-8 ({where}). / The file is not UTF-8 ({where})."
        ) from error
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise CsvFileError(f"CSV không đọc được. / Unreadable CSV: {error}") from error
    if not records:
        raise CsvFileError("Tệp rỗng. / The file is empty.")
    header = [unicodedata.normalize("NFC", cell).strip().casefold() for cell in records[0]]
    missing = [name for name in CSV_COLUMNS if name not in header]
    repeated = [name for name in CSV_COLUMNS if header.count(name) > 1]
    if missing or repeated:
        columns, wrong = ", ".join(CSV_COLUMNS), ", ".join(missing + repeated)
        raise CsvFileError(
            f"Dòng tiêu đề phải có mỗi cột đúng một lần: {columns}; thiếu hoặc lặp: {wrong}. / "
            f"The header must name each of these columns once: {columns}; missing or repeated: "
            f"{wrong}."
        )
    positions = {name: header.index(name) for name in CSV_COLUMNS}
    rows: list[CsvRow] = []
    for number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) >= max_rows:
            raise CsvTooManyRows(f"Tối đa {max_rows} dòng. / At most {max_rows} rows per file.")
        if len(record) < len(header) or any(cell.strip() for cell in record[len(header) :]):
            reason = (
                f"dòng có {len(record)} ô, tiêu đề có {len(header)} / "
                f"row has {len(record)} cells, header has {len(header)}"
            )
            rows.append(CsvRow(row=number, officer=None, reason=reason))
            continue
        values = {name: record[position] for name, position in positions.items()}
        try:
            rows.append(CsvRow(row=number, officer=OfficerImportRow.model_validate(values)))
        except ValidationError as error:
            rows.append(CsvRow(row=number, officer=None, reason=describe(error)))
    return rows
