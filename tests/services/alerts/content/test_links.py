"""Signed, expiring acknowledgement links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from services.alerts.links import SALT, AckClaim, AckLinks, InvalidAckLink
from shared.clock import fixed_clock
from tests.services.alerts.content.conftest import BASE_URL, SECRET

SIGNED_AT = datetime(2024, 11, 6, 3, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=7)


def links_at(moment: datetime, secret: str = SECRET) -> AckLinks:
    return AckLinks(secret, BASE_URL + "/", MAX_AGE, clock=fixed_clock(moment))


def token_of(url: str) -> str:
    prefix = f"{BASE_URL}/ack/"
    assert url.startswith(prefix)
    return url.removeprefix(prefix)


def test_a_link_reads_back_as_its_discrepancy_and_account() -> None:
    url = links_at(SIGNED_AT).url_for(42, "tranthib.vpdkdd")
    claim = links_at(SIGNED_AT + timedelta(hours=1)).read(token_of(url))
    assert claim == AckClaim(discrepancy_id=42, account="tranthib.vpdkdd")


def test_a_link_is_good_until_its_max_age() -> None:
    token = token_of(links_at(SIGNED_AT).url_for(42, "a"))
    assert links_at(SIGNED_AT + MAX_AGE).read(token).discrepancy_id == 42


def test_an_old_link_is_expired() -> None:
    token = token_of(links_at(SIGNED_AT).url_for(42, "a"))
    with pytest.raises(InvalidAckLink) as raised:
        links_at(SIGNED_AT + MAX_AGE + timedelta(seconds=1)).read(token)
    assert raised.value.expired
    assert raised.value.reason == "expired"


def test_a_tampered_link_is_invalid() -> None:
    token = token_of(links_at(SIGNED_AT).url_for(42, "a"))
    tampered = token[:2] + ("B" if token[2] != "B" else "C") + token[3:]
    with pytest.raises(InvalidAckLink) as raised:
        links_at(SIGNED_AT).read(tampered)
    assert raised.value.reason == "invalid"


def test_a_link_signed_with_another_secret_is_invalid() -> None:
    token = token_of(links_at(SIGNED_AT, secret="another-secret-0123456789").url_for(42, "a"))
    with pytest.raises(InvalidAckLink, match="không hợp lệ"):
        links_at(SIGNED_AT).read(token)


def test_a_value_signed_for_another_purpose_is_invalid() -> None:
    other = URLSafeTimedSerializer(SECRET, salt="something-else").dumps({"d": 42, "a": "a"})
    with pytest.raises(InvalidAckLink, match="không hợp lệ"):
        links_at(SIGNED_AT).read(other)


def test_a_genuine_token_of_the_wrong_shape_is_invalid() -> None:
    odd = URLSafeTimedSerializer(SECRET, salt=SALT).dumps({"d": "42", "a": ""})
    with pytest.raises(InvalidAckLink, match="không hợp lệ"):
        links_at(datetime.now(UTC)).read(odd)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000])
def test_garbage_is_invalid_not_an_error(garbage: str) -> None:
    with pytest.raises(InvalidAckLink) as raised:
        links_at(SIGNED_AT).read(garbage)
    assert not raised.value.expired
