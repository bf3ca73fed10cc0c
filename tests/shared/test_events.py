"""The envelope parser: every contract example passes; every kind of bad input gets its reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.events import DossierEvent, Reason, Rejection, parse_envelope, parse_message
from tests.factories import BASE_TIME, dossier_code, snapshot

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests" / "contract_examples"
PACKAGED_SCHEMA = REPO / "shared" / "contracts"
UPSTREAM_CONTRACTS = REPO.parent / "shared" / "contracts"


def valid_envelope() -> dict[str, Any]:
    return snapshot(dossier_code(1), event_id="e-1", emitted_at=BASE_TIME)


@pytest.mark.parametrize(
    "name",
    ["snapshot-processing.json", "snapshot-returned-with-apology.json", "progress-step.json"],
)
def test_contract_examples_are_accepted(name: str) -> None:
    example = EXAMPLES / name
    parsed = parse_message(example.read_bytes())
    assert isinstance(parsed, DossierEvent)


@pytest.mark.parametrize("name", ["dossier-event.schema.json", "field-report.schema.json"])
def test_packaged_schema_is_the_contract(name: str) -> None:
    packaged = orjson.loads((PACKAGED_SCHEMA / name).read_bytes())
    assert packaged == orjson.loads((EXAMPLES / name).read_bytes())
    upstream = UPSTREAM_CONTRACTS / name
    if upstream.exists():  # beside the checkout in development and CI
        assert packaged == orjson.loads(upstream.read_bytes())


def _mutated(change: Callable[[dict[str, Any]], object]) -> bytes:
    envelope = copy.deepcopy(valid_envelope())
    change(envelope)
    return orjson.dumps(envelope)


BAD_MESSAGES = {
    "empty": (b"", Reason.EMPTY),
    "too_large": (b"{" + b" " * (2 * 1024 * 1024) + b"}", Reason.TOO_LARGE),
    "invalid_utf8": (b'{"event_id": "\xff\xfe"}', Reason.INVALID_UTF8),
    "invalid_json": (b'{"event_id": ', Reason.INVALID_JSON),
    "not_an_object": (b"[1, 2, 3]", Reason.SCHEMA),
    "status_11": (_mutated(lambda e: e["data"].update(TrangThaiHoSo=11)), Reason.SCHEMA),
    "status_boolean": (_mutated(lambda e: e["data"].update(TrangThaiHoSo=True)), Reason.SCHEMA),
    "date_not_14_digits": (
        _mutated(lambda e: e["data"].update(NgayHenTra="2024-10-28")),
        Reason.SCHEMA,
    ),
    "date_impossible": (
        _mutated(lambda e: e["data"].update(NgayHenTra="20241332250000")),
        Reason.INVALID_DATE,
    ),
    "emitted_at_without_offset": (
        _mutated(lambda e: e.update(emitted_at="2024-10-30T09:15:02")),
        Reason.INVALID_EMITTED_AT,
    ),
    "emitted_at_impossible_day": (
        _mutated(lambda e: e.update(emitted_at="2024-02-30T09:15:02+07:00")),
        Reason.INVALID_EMITTED_AT,
    ),
    "emitted_at_not_a_date": (
        _mutated(lambda e: e.update(emitted_at="yesterday")),
        Reason.INVALID_EMITTED_AT,
    ),
    "missing_ma_ho_so": (_mutated(lambda e: e["data"].pop("MaHoSo")), Reason.SCHEMA),
    "unknown_type": (_mutated(lambda e: e.update(type="dossier.deleted")), Reason.SCHEMA),
    "extra_envelope_field": (_mutated(lambda e: e.update(extra=1)), Reason.SCHEMA),
}


@pytest.mark.parametrize("raw,reason", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_bad_message_is_rejected_with_its_reason(raw: bytes, reason: str) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, Rejection)
    assert parsed.reason == reason
    assert parsed.detail


def test_key_that_disagrees_with_ma_ho_so_is_rejected() -> None:
    parsed = parse_message(orjson.dumps(valid_envelope()), key=b"another-code")
    assert isinstance(parsed, Rejection)
    assert parsed.reason == Reason.KEY_MISMATCH


def test_key_equal_to_ma_ho_so_is_accepted() -> None:
    parsed = parse_message(orjson.dumps(valid_envelope()), key=dossier_code(1).encode())
    assert isinstance(parsed, DossierEvent)


def test_emitted_at_is_normalised_to_utc() -> None:
    parsed = parse_envelope(valid_envelope())
    assert isinstance(parsed, DossierEvent)
    assert parsed.emitted_at == BASE_TIME
    offset = parsed.emitted_at.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_other_dvcqg_fields_are_kept() -> None:
    envelope = valid_envelope()
    envelope["data"]["TruongMoi"] = {"x": 1}
    parsed = parse_envelope(envelope)
    assert isinstance(parsed, DossierEvent)
    assert parsed.data["TruongMoi"] == {"x": 1}
