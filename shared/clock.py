"""One truth for "now": code takes a clock, the service passes the real one, tests a fixed one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def system_clock() -> datetime:
    """The real wall clock, timezone-aware in UTC."""
    return datetime.now(UTC)


def fixed_clock(moment: datetime) -> Clock:
    """A clock that always answers ``moment`` (for tests and replays)."""
    if moment.tzinfo is None:
        raise ValueError("a fixed clock needs a timezone-aware moment")
    return lambda: moment
