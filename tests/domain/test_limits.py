"""Daily spending limits: lowering at once, raising and removing after the cooling-off."""

from __future__ import annotations

import pytest

from server.domain.limits import (
    DAY_MS,
    Limit,
    Pending,
    check_daily_coins,
    day_of,
    left_today,
)

NOW = 1_800_000_000_000
COOL = 1000


@pytest.mark.parametrize(
    ("start", "requested", "expected"),
    [
        # from no limit: any limit is tighter, at once
        (Limit(), 100, Limit(100)),
        (Limit(), 0, Limit(0)),
        # lowering applies at once
        (Limit(100), 50, Limit(50)),
        # raising waits
        (Limit(100), 200, Limit(100, Pending(200, NOW + COOL))),
        # removing waits
        (Limit(100), None, Limit(100, Pending(None, NOW + COOL))),
        # asking for what is in force cancels a pending change
        (Limit(100, Pending(200, NOW + COOL)), 100, Limit(100)),
        # lowering cancels a pending raise
        (Limit(100, Pending(500, NOW + 10)), 80, Limit(80)),
        # raising again restarts the wait
        (Limit(100, Pending(200, NOW + 10)), 300, Limit(100, Pending(300, NOW + COOL))),
        # no limit, asked to stay without one
        (Limit(), None, Limit()),
        # a pending raise that came due counts as the limit in force
        (Limit(100, Pending(200, NOW)), 150, Limit(150)),
    ],
)
def test_changing_a_limit(start: Limit, requested: int | None, expected: Limit) -> None:
    assert start.change(requested, NOW, COOL) == expected


def test_a_pending_change_applies_when_it_comes_due() -> None:
    limit = Limit(100, Pending(None, NOW + COOL))
    assert limit.at(NOW + COOL - 1) == limit
    assert limit.at(NOW + COOL) == Limit(None)


@pytest.mark.parametrize(
    ("limit", "spent", "left"), [(None, 5, None), (10, 3, 7), (10, 10, 0), (10, 12, 0)]
)
def test_left_today(limit: int | None, spent: int, left: int | None) -> None:
    assert left_today(limit, spent) == left


def test_days_are_utc_calendar_days() -> None:
    midnight = 20_000 * DAY_MS
    assert day_of(midnight - 1) == 19_999
    assert day_of(midnight) == 20_000


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (None, True),
        (0, True),
        (10**9, True),
        (-1, False),
        (10**9 + 1, False),
        (1.5, False),
        ("10", False),
        (True, False),
        ([], False),
    ],
)
def test_daily_coins_validation(value: object, ok: bool) -> None:
    result = check_daily_coins(value)
    assert (not isinstance(result, str)) is ok
