"""The inbound event envelope (contract §1): bytes or JSON in, a checked event or a rejection out.

Pure and total: whatever the input, the answer is a :class:`DossierEvent` or a
:class:`Rejection` with a short reason code — never an exception. That is what lets the Kafka
consumer turn every bad message into a dead letter and carry on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from itertools import chain
from typing import Any, Final

import jsonschema_rs
import orjson

from shared.dvcqg import SNAPSHOT_DATE_FIELDS, STEP_DATE_FIELDS, parse_dates

MAX_MESSAGE_BYTES: Final = 1024 * 1024
MAX_JSON_DEPTH: Final = 32  # envelopes nest about 5 deep; orjson writes at most 255 levels
EARLIEST_YEAR: Final = 1900  # moments outside these years are typos, and overflow UTC storage
LATEST_YEAR: Final = 2999
SNAPSHOT: Final = "dossier.snapshot"
PROGRESS: Final = "dossier.progress"

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


class Reason:
    """Reason codes of a rejected message (dead letter or refused HTTP item)."""

    EMPTY: Final = "empty"
    TOO_LARGE: Final = "too_large"
    INVALID_UTF8: Final = "invalid_utf8"
    INVALID_JSON: Final = "invalid_json"
    SCHEMA: Final = "schema"
    INVALID_EMITTED_AT: Final = "invalid_emitted_at"
    INVALID_DATE: Final = "invalid_date"
    TOO_DEEP: Final = "too_deep"
    NUL_CHARACTER: Final = "nul_character"
    KEY_MISMATCH: Final = "key_mismatch"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class DossierEvent:
    """A schema-valid envelope with its moments parsed."""

    event_id: str
    type: str
    source: str
    emitted_at: datetime
    dossier_code: str
    data: dict[str, Any]
    # The data's own date fields, parsed while checking them (absent when not given).
    moments: dict[str, datetime] = field(default_factory=dict)

    @property
    def is_snapshot(self) -> bool:
        return self.type == SNAPSHOT


@cache
def _validator() -> Any:
    """The envelope schema, compiled once (jsonschema-rs: draft 2020-12 as the contract
    declares, and about 1 µs an envelope where the pure-Python validators took 8)."""
    schema_text = resources.files("shared.contracts").joinpath("dossier-event.schema.json")
    return jsonschema_rs.validator_for(json.loads(schema_text.read_text(encoding="utf-8")))


def json_depth(document: Any, *, stop_after: int | None = None) -> int:
    """Nesting depth of a decoded JSON value: a scalar is 0, ``[]`` and ``{}`` are 1.

    Iterative, one level at a time, so no document can exhaust the interpreter's stack; with
    ``stop_after`` the walk ends as soon as that depth is passed.
    """
    level = [document] if isinstance(document, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if stop_after is not None and depth > stop_after:
            break
        lists = [value for value in level if isinstance(value, list)]
        dicts = [value.values() for value in level if isinstance(value, dict)]
        children = chain(chain.from_iterable(lists), chain.from_iterable(dicts))
        level = [child for child in children if isinstance(child, dict | list)]
    return depth


# A JSON ``\u0000`` escape: the backslash before it must not itself be escaped.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def has_escaped_nul(raw: bytes) -> bool:
    """Whether raw JSON holds U+0000 (written ``\u0000``), which PostgreSQL cannot store."""
    return b"u0000" in raw and _ESCAPED_NUL.search(raw) is not None


def parse_rfc3339(value: str) -> datetime | None:
    """RFC 3339 with a mandatory offset → aware UTC datetime, else None."""
    if not _RFC3339.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("t", "T").replace("z", "Z")).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment if EARLIEST_YEAR <= moment.year <= LATEST_YEAR else None


def _schema_message(error: Any) -> str:
    """Where and what, e.g. ``envelope.data.TrangThaiHoSo: 11 is greater than the maximum…``."""
    where = "".join(
        f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.instance_path
    )
    return f"envelope{where}: {error.message}"[:500]


def parse_envelope(document: Any, *, shallow: bool = False) -> DossierEvent | Rejection:
    """Check one decoded JSON envelope against the contract.

    ``shallow``: the caller has proved the document cannot nest deeper than the limit (its
    text holds no more opening brackets than that), so the depth walk is skipped.
    """
    if not shallow and json_depth(document, stop_after=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return Rejection(Reason.TOO_DEEP, f"nested deeper than {MAX_JSON_DEPTH} levels")
    emitted_text = document.get("emitted_at") if isinstance(document, dict) else None
    emitted_at = parse_rfc3339(emitted_text) if isinstance(emitted_text, str) else None
    if isinstance(emitted_text, str) and emitted_at is None:
        return Rejection(
            Reason.INVALID_EMITTED_AT,
            f"emitted_at {emitted_text[:64]!r} is not RFC 3339 with an offset",
        )
    try:
        _validator().validate(document)
    except jsonschema_rs.ValidationError as error:
        return Rejection(Reason.SCHEMA, _schema_message(error))
    except Exception as error:  # e.g. an integer too large for the validator to read
        return Rejection(Reason.SCHEMA, f"{type(error).__name__}: {error}"[:500])
    if emitted_at is None:  # unreachable after the schema; kept so the type is exact
        return Rejection(Reason.INVALID_EMITTED_AT, "emitted_at is not RFC 3339")
    data = document["data"]
    fields = SNAPSHOT_DATE_FIELDS if document["type"] == SNAPSHOT else STEP_DATE_FIELDS
    moments, bad = parse_dates(data, fields)
    if bad:
        return Rejection(Reason.INVALID_DATE, "not a real yyyyMMddHHmmss moment: " + ", ".join(bad))
    return DossierEvent(
        event_id=document["event_id"],
        type=document["type"],
        source=document["source"],
        emitted_at=emitted_at,
        dossier_code=data["MaHoSo"],
        data=data,
        moments=moments,
    )


def _utf8_rejection(value: bytes) -> Rejection | None:
    """``invalid_utf8`` when ``value`` is not UTF-8, else None (asked only once parsing failed)."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection(Reason.INVALID_UTF8, str(error)[:500])
    return None


def parse_message(
    value: bytes | None, key: bytes | None = None, *, max_bytes: int = MAX_MESSAGE_BYTES
) -> DossierEvent | Rejection:
    """Check one Kafka message: size, encoding, JSON, schema, and that its key is its MaHoSo.

    A message without a key is accepted (ordering does not matter to us); a key that names
    another dossier is refused, since it means the producer mixed up its records.
    """
    if not value:
        return Rejection(Reason.EMPTY, "empty message")
    if len(value) > max_bytes:
        return Rejection(Reason.TOO_LARGE, f"{len(value)} bytes, limit {max_bytes}")
    if has_escaped_nul(value):
        return _utf8_rejection(value) or Rejection(
            Reason.NUL_CHARACTER, "a string holds U+0000, which PostgreSQL cannot store"
        )
    try:
        document = orjson.loads(value)  # validates UTF-8 itself: no decoded copy needed
    except orjson.JSONDecodeError as error:
        return _utf8_rejection(value) or Rejection(Reason.INVALID_JSON, str(error)[:500])
    # Depth never exceeds the number of opening brackets (those inside strings included).
    shallow = value.count(b"{") + value.count(b"[") <= MAX_JSON_DEPTH
    parsed = parse_envelope(document, shallow=shallow)
    if isinstance(parsed, Rejection) or key is None:
        return parsed
    key_text = key.decode("utf-8", errors="replace")
    if key_text != parsed.dossier_code:
        return Rejection(
            Reason.KEY_MISMATCH,
            f"message key {key_text[:64]!r} differs from MaHoSo {parsed.dossier_code!r}",
        )
    return parsed
