"""Timestamps on the wire: RFC 3339, UTC, always with milliseconds and a `Z`."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from server.domain.timefmt import rfc3339, utc_date

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CASES = [
    (0, "1970-01-01T00:00:00.000Z"),
    (1, "1970-01-01T00:00:00.001Z"),
    (999, "1970-01-01T00:00:00.999Z"),
    (1000, "1970-01-01T00:00:01.000Z"),
    (1_764_000_000_123, "2025-11-24T16:00:00.123Z"),
    (1_795_521_600_000, "2026-11-24T12:00:00.000Z"),
    (951_782_400_000, "2000-02-29T00:00:00.000Z"),
    (951_868_799_999, "2000-02-29T23:59:59.999Z"),
    (-1, "1969-12-31T23:59:59.999Z"),
    (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
]


@pytest.mark.parametrize(("ms", "text"), CASES)
def test_rfc3339(ms: int, text: str) -> None:
    assert rfc3339(ms) == text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    # The string means the same instant: parsing it back gives the milliseconds again.
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert (parsed - EPOCH) // dt.timedelta(milliseconds=1) == ms


@pytest.mark.parametrize(
    ("ms", "day"),
    [
        (0, dt.date(1970, 1, 1)),
        (1_795_521_600_000, dt.date(2026, 11, 24)),
        (951_868_799_999, dt.date(2000, 2, 29)),
        (951_868_800_000, dt.date(2000, 3, 1)),
    ],
)
def test_utc_date(ms: int, day: dt.date) -> None:
    assert utc_date(ms) == day


def test_rfc3339_agrees_with_datetime_across_seconds_and_back() -> None:
    """The part up to the second is cached: going forward, back and over the cache's size still
    gives each instant its own text."""
    stamps = [*range(998, 3003), *range(1_764_000_099_990, 1_764_000_000_000, -7)]
    stamps += [1_764_000_000_000 + 1000 * k + k for k in range(200)] + [999, 0, -1]
    for ms in stamps:
        expected = (EPOCH + dt.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")
        assert rfc3339(ms) == expected[:-3] + "Z", ms
