"""``backoff_delay``: exponential ceiling, capped, full jitter, reproducible with a seeded rng."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.channels.base import backoff_delay


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0.01, max_value=60),
    extra=st.floats(min_value=0, max_value=86_400),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_stays_between_zero_and_the_capped_exponential(
    attempt: int, base: float, extra: float, seed: int
) -> None:
    cap = base + extra
    delay = backoff_delay(attempt, base=base, cap=cap, rng=random.Random(seed))

    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 1000))
    assert 0 <= delay <= ceiling


def test_ceiling_doubles_until_the_cap() -> None:
    # With an rng that always draws the top of the range, the delay is the ceiling itself.
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    delays = [backoff_delay(n, base=1.0, cap=30.0, rng=Top()) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_same_seed_same_delays() -> None:
    first = [backoff_delay(n, base=2, cap=600, rng=random.Random(7)) for n in range(1, 20)]
    again = [backoff_delay(n, base=2, cap=600, rng=random.Random(7)) for n in range(1, 20)]
    assert first == again


def test_jitter_spreads_delays_over_the_whole_range() -> None:
    rng = random.Random(42)
    draws = [backoff_delay(5, base=1.0, cap=100.0, rng=rng) for _ in range(5000)]

    assert min(draws) < 0.5 and max(draws) > 15.5  # full range [0, 16]
    assert statistics.mean(draws) == pytest.approx(8.0, rel=0.05)


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert 0 <= backoff_delay(10**6, base=5, cap=3600, rng=random.Random(1)) <= 3600


@pytest.mark.parametrize(
    ("attempt", "base", "cap"),
    [(0, 1.0, 10.0), (-1, 1.0, 10.0), (1, 0.0, 10.0), (1, -1.0, 10.0), (1, 10.0, 5.0)],
)
def test_nonsense_arguments_are_refused(attempt: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        backoff_delay(attempt, base=base, cap=cap, rng=random.Random(0))
