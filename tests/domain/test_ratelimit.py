"""TokenBucket: a burst, then one gift per 1/rate seconds; time is a parameter."""

from __future__ import annotations

import pytest

from server.domain.ratelimit import TokenBucket


def emptied(rate_per_s: int, burst: int, at_ms: int = 0) -> TokenBucket:
    bucket = TokenBucket(rate_per_s, burst)
    for _ in range(burst):
        assert bucket.take(at_ms) == 0
    return bucket


@pytest.mark.parametrize(("rate", "burst"), [(10, 20), (1, 1), (3, 5), (1000, 2)])
def test_a_full_bucket_allows_its_burst_then_refuses(rate: int, burst: int) -> None:
    bucket = emptied(rate, burst, at_ms=5_000)
    assert bucket.take(5_000) > 0
    assert bucket.take(5_000) > 0  # a refusal costs nothing and gives nothing


@pytest.mark.parametrize(
    ("rate", "after_ms", "retry_after_ms"),
    [
        (10, 0, 100),
        (10, 1, 99),
        (10, 50, 50),
        (10, 99, 1),
        (10, 100, 0),
        (1, 0, 1000),
        (1, 999, 1),
        (3, 0, 334),  # 1000/3 rounds up: never "retry now" when it is not yet allowed
        (3, 333, 1),
        (3, 334, 0),
        (2000, 0, 1),  # faster than a token per ms still says at least 1 ms
    ],
)
def test_retry_after_is_the_wait_until_the_next_token(
    rate: int, after_ms: int, retry_after_ms: int
) -> None:
    bucket = emptied(rate, 1)
    assert bucket.take(after_ms) == retry_after_ms


def test_retry_after_is_honest() -> None:
    """Waiting exactly the answered time always succeeds."""
    bucket = emptied(7, 3)
    now = 0
    for _ in range(50):
        wait = bucket.take(now)
        if wait:
            now += wait
            assert bucket.take(now) == 0


def test_ten_a_second_sustained_after_the_burst() -> None:
    bucket = emptied(10, 20)
    assert all(bucket.take(100 * n) == 0 for n in range(1, 101))


def test_refill_stops_at_the_burst() -> None:
    bucket = emptied(10, 20)
    later = 3_600_000
    assert [bucket.take(later) for _ in range(21)][-2:] == [0, 100]


def test_is_full() -> None:
    bucket = TokenBucket(10, 2)
    assert bucket.is_full(0)
    bucket.take(0)
    assert not bucket.is_full(0)
    assert not bucket.is_full(99)
    assert bucket.is_full(100)


def test_a_clock_going_backwards_refills_nothing() -> None:
    bucket = emptied(10, 2, at_ms=10_000)
    assert bucket.take(5_000) == 100
    assert bucket.take(0) == 100
    assert not bucket.is_full(0)


def test_time_counted_once_is_not_counted_again_after_the_clock_steps_back() -> None:
    """Wall clocks step back (NTP); the time up to the last take was already credited."""
    bucket = emptied(1, 2, at_ms=10_000)
    assert bucket.take(0) == 1000  # the clock steps back ten seconds
    assert bucket.take(10_000) > 0  # and returns: no second refill for the same ten seconds
