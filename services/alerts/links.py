"""Links in messages: signed, expiring acknowledgement links ``{public_base_url}/ack/{token}``
(contract §4), and :func:`public_url` for the other pages a message points to.

The token is an itsdangerous ``URLSafeTimedSerializer`` payload ``{"d": discrepancy id, "a":
account}``, signed with ``DOISOAT_SECRET_KEY`` under a salt of its own (so no other signed value
of the project can pass for an ack token). Time comes from the injected clock, for signing and
for checking alike, so tests (and replays) need no patching.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from shared.clock import Clock, system_clock
from shared.config import BaseDoisoatSettings

SALT = "doisoat.ack-link.v1"
MAX_TOKEN_LENGTH = 1024  # ours are ~100 characters; anything much longer is not ours


@dataclass(frozen=True, slots=True)
class AckClaim:
    """Who may acknowledge which discrepancy, as the link says."""

    discrepancy_id: int
    account: str


class InvalidAckLink(Exception):
    """The link cannot be used: ``reason`` is ``"expired"`` (genuine but old) or ``"invalid"``."""

    def __init__(self, reason: Literal["expired", "invalid"], message: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def expired(self) -> bool:
        return self.reason == "expired"


class AckLinks:
    """Issues and reads acknowledgement links; one instance per configuration."""

    def __init__(
        self,
        secret_key: str,
        public_base_url: str,
        max_age: timedelta,
        *,
        clock: Clock = system_clock,
    ) -> None:
        if not secret_key:
            raise ValueError("ack links need a secret key (DOISOAT_SECRET_KEY)")
        if max_age <= timedelta(0):
            raise ValueError("ack links need a positive max_age")
        self.public_base_url = public_base_url.rstrip("/")
        self.max_age = max_age

        class _ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock().timestamp())

        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT, signer=_ClockSigner)

    def token_for(self, discrepancy_id: int, account: str) -> str:
        if not account:
            raise ValueError("an ack link names the account that acknowledges")
        return self._serializer.dumps({"d": int(discrepancy_id), "a": account})

    def url_for(self, discrepancy_id: int, account: str) -> str:
        """``{base}/ack/{token}`` for ``account`` to acknowledge ``discrepancy_id``."""
        return f"{self.public_base_url}/ack/{self.token_for(discrepancy_id, account)}"

    def read(self, token: str) -> AckClaim:
        """The claim of a genuine, unexpired token; raises :class:`InvalidAckLink` otherwise."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidAckLink("invalid", "Liên kết xác nhận không hợp lệ.")
        try:
            payload: Any = self._serializer.loads(token, max_age=int(self.max_age.total_seconds()))
        except SignatureExpired as error:
            raise InvalidAckLink("expired", "Liên kết xác nhận đã hết hạn.") from error
        except BadData as error:
            raise InvalidAckLink("invalid", "Liên kết xác nhận không hợp lệ.") from error
        ident = payload.get("d") if isinstance(payload, dict) else None
        account = payload.get("a") if isinstance(payload, dict) else None
        if (
            not isinstance(ident, int)
            or isinstance(ident, bool)
            or ident < 1
            or not isinstance(account, str)
            or not account
        ):
            raise InvalidAckLink("invalid", "Liên kết xác nhận không hợp lệ.")
        return AckClaim(discrepancy_id=ident, account=account)


def public_url(public_base_url: str, path: str) -> str:
    """``{DOISOAT_PUBLIC_BASE_URL}{path}``: a page of doisoat as a message links to it (the
    workspace's paths, e.g. a dossier's forms, start with "/")."""
    return f"{public_base_url.rstrip('/')}/{path.lstrip('/')}"


def ack_links_from(settings: BaseDoisoatSettings, clock: Clock) -> AckLinks:
    """The configured ack links, built in one place for the worker and the API alike.

    The worker issues the links and the API reads them: both must agree on the key, the base
    URL and the max age.
    """
    return AckLinks(
        settings.secret_key,
        settings.public_base_url,
        timedelta(hours=settings.ack_link_max_age_hours),
        clock=clock,
    )
