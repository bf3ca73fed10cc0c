"""Shapes of field reports (contract §2): the checked report in, the stored report and the
import answer out, and the check of a JSON document against the packaged contract schema.

The check is pure and total, like :func:`shared.events.parse_envelope`: whatever the document,
the answer is a :class:`FieldReportCreate` or a :class:`~shared.events.Rejection`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

import fastjsonschema
from pydantic import BaseModel, ConfigDict

from shared.events import Rejection, parse_rfc3339

ReportKind = Literal["returned", "withdrawn"]
RowOutcome = Literal["accepted", "duplicate", "refused"]
# Where a report came from: the API, a register import, or the desk's page (``/returns``).
ReportChannel = Literal["api", "csv", "web"]

# A hand-over cannot happen in the future; this much clock skew between a desk PC and the
# server is tolerated. A typo in the year ("2204") is refused instead of waiting forever.
FUTURE_TOLERANCE: Final = timedelta(minutes=15)


class Reason:
    """Reason codes of a refused report or register row."""

    INVALID_JSON: Final = "invalid_json"
    SCHEMA: Final = "schema"
    INVALID_OCCURRED_AT: Final = "invalid_occurred_at"
    IN_THE_FUTURE: Final = "in_the_future"
    FORBIDDEN_UNIT: Final = "forbidden_unit"


class ReportModel(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class FieldReportCreate(ReportModel):
    """A report that passed the contract check; ``occurred_at`` is an aware UTC instant."""

    report_id: str
    dossier_code: str
    kind: ReportKind
    occurred_at: datetime
    officer: str
    unit_code: str
    note: str | None = None


class FieldReportRead(ReportModel):
    """A stored report as the API shows it; moments in Vietnam time with their offset."""

    report_id: str
    dossier_code: str
    kind: ReportKind
    occurred_at: str
    officer: str
    unit_code: str
    note: str | None
    channel: ReportChannel
    received_at: str


class RegisterEntryRead(ReportModel):
    """A line of the desk's register as the page shows it: the report, whether the system knows
    its dossier (and the procedure's name), and who recorded it. Moments are aware UTC."""

    report_id: str
    dossier_code: str
    kind: ReportKind
    occurred_at: datetime
    received_at: datetime
    officer: str
    officer_name: str  # the directory's full name, else the account
    unit_code: str
    channel: str
    known: bool  # the system has sent the dossier (a snapshot or a step)
    procedure_name: str | None  # TenTTHC of the newest snapshot


class ImportRowRead(BaseModel):
    row: int  # line of the file, the header being line 1
    outcome: RowOutcome
    reason: str | None = None


class ImportRead(BaseModel):
    accepted: int
    duplicate: int
    refused: int
    rows: list[ImportRowRead]


# A dossier code as the procedure systems issue it: ``{agency code}-{yyMMdd}-{NNNN}`` (e.g.
# ``000.00.12.H08-241021-0042``), within the contract's pattern and length.
DOSSIER_CODE: Final = re.compile(r"[0-9A-Za-z._]+-([0-9]{6})-[0-9]{1,12}")
DOSSIER_CODE_MAX: Final = 64
DOSSIER_CODE_EXAMPLE: Final = "000.00.12.H08-241021-0042"


def dossier_code_problem(code: str) -> str | None:
    """Why ``code`` cannot be a dossier code (MaHoSo), in Vietnamese; None when it can.

    The desk types or scans codes by hand: a product barcode, a receipt number or a typo must
    be refused at once, not turn into a ``NOT_IN_SYSTEM`` alert two hours later.
    """
    if not code:
        return "Chưa có mã hồ sơ: quét mã vạch trên phiếu hẹn hoặc gõ mã rồi nhấn Enter."
    shown = code if len(code) <= DOSSIER_CODE_MAX else code[:DOSSIER_CODE_MAX] + "…"
    found = DOSSIER_CODE.fullmatch(code) if len(code) <= DOSSIER_CODE_MAX else None
    if found is not None:
        try:
            datetime.strptime(found.group(1), "%y%m%d")
        except ValueError:
            found = None
    if found is None:
        return (
            f"«{shown}» không phải mã hồ sơ. Mã hồ sơ có dạng mã đơn vị-yyMMdd-số thứ tự, "
            f"ví dụ {DOSSIER_CODE_EXAMPLE}. Chưa ghi nhận gì."
        )
    return None


@cache
def contract_schema() -> dict[str, Any]:
    """``field-report.schema.json`` as packaged with ``shared.contracts``."""
    schema_text = resources.files("shared.contracts").joinpath("field-report.schema.json")
    schema: dict[str, Any] = json.loads(schema_text.read_text(encoding="utf-8"))
    return schema


@cache
def _validator() -> Any:
    return fastjsonschema.compile(contract_schema())


def schema_violation(document: Any) -> tuple[str, str] | None:
    """The first contract violation as (field or "", message), or None when valid."""
    try:
        _validator()(document)
    except fastjsonschema.JsonSchemaValueException as error:
        path = [part for part in (error.path or []) if part != "data"]
        field = str(path[0]) if path else ""
        message = error.message
        if message.startswith("data.") or message.startswith("data "):
            message = "report" + message[4:]
        return field, message[:500]
    except Exception as error:  # the compiled validator on pathological input
        return "", f"{type(error).__name__}: {error}"[:500]
    return None


def future_rejection(occurred_at: datetime, *, now: datetime) -> Rejection | None:
    if occurred_at <= now + FUTURE_TOLERANCE:
        return None
    return Rejection(
        Reason.IN_THE_FUTURE,
        f"thời điểm {occurred_at.isoformat()} ở tương lai / "
        f"occurred_at {occurred_at.isoformat()} is in the future",
    )


def parse_report(document: Any, *, now: datetime) -> FieldReportCreate | Rejection:
    """Check one decoded JSON report: the contract schema, then a real RFC 3339 moment."""
    occurred_text = document.get("occurred_at") if isinstance(document, dict) else None
    if isinstance(occurred_text, str) and parse_rfc3339(occurred_text) is None:
        return Rejection(
            Reason.INVALID_OCCURRED_AT,
            f"occurred_at {occurred_text[:64]!r} không phải thời điểm RFC 3339 có múi giờ / "
            "is not RFC 3339 with an offset (e.g. 2024-10-30T10:40:00+07:00)",
        )
    violation = schema_violation(document)
    if violation is not None:
        return Rejection(Reason.SCHEMA, f"dữ liệu không đúng hợp đồng / {violation[1]}")
    occurred_at = parse_rfc3339(document["occurred_at"])
    if occurred_at is None:  # unreachable: checked above; keeps the type checker honest
        return Rejection(Reason.INVALID_OCCURRED_AT, "occurred_at is not RFC 3339")
    too_late = future_rejection(occurred_at, now=now)
    if too_late is not None:
        return too_late
    return FieldReportCreate(
        report_id=document["report_id"],
        dossier_code=document["dossier_code"],
        kind=document["kind"],
        occurred_at=occurred_at,
        officer=document["officer"],
        unit_code=document["unit_code"],
        note=document.get("note") or None,  # an empty note is no note
    )
