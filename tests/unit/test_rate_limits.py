"""The token bucket's promise, for any timing of calls: never more than burst + rate x time, and no refusal
while a token is there."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.limits import UNLIMITED, Rate, RateLimiter, TokenBucket, most_generous
from gateway.core.model import Role

rates = st.builds(Rate, st.floats(min_value=0.1, max_value=1000), st.integers(min_value=1, max_value=50))
# Calls at the same instant are what a burst is made of; long quiet spells are what must not add up past it.
gaps = st.lists(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=2), st.just(30.0)), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(rates, gaps)
def test_admitted_calls_never_exceed_burst_plus_rate_times_time(rate: Rate, steps: list[float]) -> None:
    bucket = TokenBucket(rate, 0.0)
    now, admitted = 0.0, []
    for step in steps:
        now += step
        wait = bucket.take(now)
        if wait == 0.0:
            admitted.append(now)
        else:  # refused: the wait it names is exactly when the next token is there
            assert 0 < wait <= 1 / rate.per_second + 1e-9
            assert bucket.take(now + wait + 1e-9) == 0.0
            admitted.append(now + wait + 1e-9)
            now += wait + 1e-9
    for i, start in enumerate(admitted):  # every window, from each admitted call on
        for j in range(i, len(admitted)):
            assert j - i + 1 <= rate.burst + rate.per_second * (admitted[j] - start) + 1e-6


def test_a_quiet_bucket_lets_exactly_its_burst_through_then_waits_one_interval() -> None:
    bucket = TokenBucket(Rate(4.0, 3), 10.0)
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(10.0) == pytest.approx(0.25)
    assert bucket.take(10.1) == pytest.approx(0.15)
    assert bucket.take(10.25) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.take(100.0) == 0.0 and bucket.take(100.0) == 0.0  # refilled to 3
    assert bucket.take(100.0) > 0


def test_the_most_generous_role_wins_and_a_role_without_a_rate_is_unlimited() -> None:
    limiter = RateLimiter({Role.TERMINAL: Rate(1, 2), Role.REVIEWER: Rate(5, 1)})
    assert limiter.rate_of(frozenset({Role.TERMINAL, Role.REVIEWER})) == Rate(5, 2)
    assert limiter.rate_of(frozenset({Role.ADMIN, Role.TERMINAL})) == UNLIMITED
    assert most_generous([]) is None
    assert [limiter.admit(7, frozenset({Role.TERMINAL}), 0.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.admit(8, frozenset({Role.TERMINAL}), 0.0) == 0.0  # another principal, another bucket
    # Given another role, the principal starts a fresh bucket at its new rate.
    assert limiter.admit(7, frozenset({Role.TERMINAL, Role.REVIEWER}), 0.0) == 0.0


@pytest.mark.parametrize("rate", [(0.0, 1), (-1.0, 1), (1.0, 0), (math.nan, 1)])
def test_a_rate_that_would_refuse_everything_is_not_a_rate(rate: tuple[float, int]) -> None:
    with pytest.raises(ValueError, match="above 0"):
        Rate(*rate)
