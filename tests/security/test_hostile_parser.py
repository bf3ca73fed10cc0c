"""Hostile and broken input (issue 6, point 5), (a): the event parser is total.

Hypothesis throws arbitrary bytes, arbitrary JSON and valid envelopes with fuzzed fields at
:func:`shared.events.parse_message`; the answer is always a ``DossierEvent`` or a ``Rejection``
with a known reason code, never an exception. Inputs that once raised are kept at the end."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events import Rejection, parse_envelope, parse_message
from tests.factories import BASE_TIME, dossier_code, snapshot
from tests.security.hostile import (
    FUZZ,
    REASONS,
    assert_total,
    encode_json,
    fuzzed_envelopes,
    json_values,
)


@FUZZ
@given(value=st.binary(max_size=600), key=st.none() | st.binary(max_size=40))
def test_arbitrary_bytes_never_raise(value: bytes, key: bytes | None) -> None:
    assert_total(parse_message(value, key), key)


@FUZZ
@given(value=json_values(nul=True))
def test_arbitrary_json_never_raises(value: Any) -> None:
    assert_total(parse_message(encode_json(value)))
    assert_total(parse_envelope(value))


@FUZZ
@given(
    envelope=fuzzed_envelopes(nul=True),
    key_kind=st.sampled_from(["none", "own", "other"]),
    other=st.binary(max_size=30),
)
def test_fuzzed_envelopes_never_raise(
    envelope: dict[str, Any], key_kind: str, other: bytes
) -> None:
    value = encode_json(envelope)
    code = (
        envelope.get("data", {}).get("MaHoSo") if isinstance(envelope.get("data"), dict) else None
    )
    key = {"none": None, "own": str(code).encode("utf-8", "surrogatepass"), "other": other}[
        key_kind
    ]
    assert_total(parse_message(value, key), key)
    assert_total(parse_envelope(envelope))


@FUZZ
@given(
    envelope=fuzzed_envelopes(nul=True),
    cut=st.integers(0, 10_000),
    flip=st.integers(0, 255),
)
def test_truncated_and_corrupted_envelopes_never_raise(
    envelope: dict[str, Any], cut: int, flip: int
) -> None:
    value = bytearray(encode_json(envelope))
    position = cut % max(len(value), 1)
    assert_total(parse_message(bytes(value[:position])))
    value[position % len(value)] ^= flip
    assert_total(parse_message(bytes(value)))


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"data": ' * 2000 + b"1" + b"}" * 2000,
        b"\xef\xbb\xbf{}",  # a BOM
        b'"\\ud800"',  # a lone surrogate
        b"1e400",
        b"-" * 100,
        b"\x00" * 10,
        b"null",
        b" " * 2000,
        b'{"event_id": "a", "event_id": "b"}',
    ],
    ids=lambda value: repr(value[:20]),
)
def test_pathological_messages_are_rejections(value: bytes) -> None:
    result = parse_message(value)
    assert isinstance(result, Rejection), result
    assert result.reason in REASONS


# Regressions: inputs that once raised.


@pytest.mark.parametrize("emitted_at", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_parse_message_is_total_on_extreme_emitted_at(emitted_at: str) -> None:
    envelope = snapshot(dossier_code(1), event_id="edge", emitted_at=BASE_TIME)
    envelope["emitted_at"] = emitted_at
    assert_total(parse_message(orjson.dumps(envelope)))
