"""Waiting on a condition, never on the clock.

A test that sleeps a fixed time and then asserts bets that the system is done by then: it fails
on a slow CI machine and wastes time on a fast one. :func:`eventually` probes until the
condition holds, within a generous bound, and hands back what it saw last, so the test's own
assertion says what went wrong when the bound is reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], object] = bool,
    *,
    within: float = 60.0,
    interval: float = 0.1,
) -> T:
    """Await ``probe()`` until ``until(value)`` is true and return that value.

    After ``within`` seconds the last value is returned instead, unchanged: assert on it.
    """
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if until(value) or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval)
