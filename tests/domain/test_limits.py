"""Daily spending limits: lowering at once, raising and removing after the cooling-off."""

from __future__ import annotations

import datetime as dt

import pytest

from server.domain.errors import Code, Refusal
from server.domain.limits import (
    DAY_MS,
    KEEP,
    Keep,
    Limit,
    Pending,
    check_daily_coins,
    check_time_zone,
    day_of,
    day_start_ms,
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
        # asking again for what is pending does not restart the wait
        (Limit(100, Pending(200, NOW + 10)), 200, Limit(100, Pending(200, NOW + 10))),
    ],
)
def test_changing_a_limit(start: Limit, requested: int | None, expected: Limit) -> None:
    assert start.change(requested, NOW, COOL) == expected


BERLIN, TOKYO = "Europe/Berlin", "Asia/Tokyo"


@pytest.mark.parametrize(
    ("start", "requested", "zone", "expected"),
    [
        # with no limit in force, a zone applies at once, with the limit or without one
        (Limit(), 100, BERLIN, Limit(100, None, BERLIN)),
        (Limit(), None, BERLIN, Limit(None, None, BERLIN)),
        # while a limit is in force, a new zone would move the day's end: it waits
        (Limit(100), 100, BERLIN, Limit(100, Pending(100, NOW + COOL, BERLIN))),
        (Limit(100, None, BERLIN), 100, None, Limit(100, Pending(100, NOW + COOL), BERLIN)),
        # lowering still applies at once; the zone follows after the wait
        (Limit(100), 50, BERLIN, Limit(50, Pending(50, NOW + COOL, BERLIN))),
        # a raise and a new zone wait together
        (Limit(100), 200, TOKYO, Limit(100, Pending(200, NOW + COOL, TOKYO))),
        # KEEP leaves the zone as last asked: in force, or pending
        (Limit(100, None, BERLIN), 50, KEEP, Limit(50, None, BERLIN)),
        (
            Limit(100, Pending(100, NOW + 10, TOKYO)),
            200,
            KEEP,
            Limit(100, Pending(200, NOW + COOL, TOKYO)),
        ),
        # asking for the zone in force cancels a pending zone change
        (Limit(100, Pending(100, NOW + 10, TOKYO)), 100, None, Limit(100)),
        # a zone change that came due is the zone in force
        (Limit(100, Pending(100, NOW, TOKYO)), 80, KEEP, Limit(80, None, TOKYO)),
    ],
)
def test_changing_the_time_zone(
    start: Limit, requested: int | None, zone: str | Keep | None, expected: Limit
) -> None:
    assert start.change(requested, NOW, COOL, zone) == expected


# 2026-11-24T23:30:00Z is 2026-11-25 00:30 in Berlin (UTC+1 in winter).
LATE_UTC = int(dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC).timestamp() * 1000)
NOV_24 = (dt.date(2026, 11, 24) - dt.date(1970, 1, 1)).days


@pytest.mark.parametrize(
    ("zone", "day"),
    [(None, NOV_24), ("Europe/Berlin", NOV_24 + 1), ("America/New_York", NOV_24)],
)
def test_a_day_is_the_calendar_day_in_the_users_zone(zone: str | None, day: int) -> None:
    assert day_of(LATE_UTC, zone) == day


@pytest.mark.parametrize(
    ("zone", "day", "starts_at"),
    [
        (None, NOV_24, "2026-11-24T00:00:00+00:00"),
        ("Europe/Berlin", NOV_24, "2026-11-23T23:00:00+00:00"),
        ("Asia/Kolkata", NOV_24, "2026-11-23T18:30:00+00:00"),  # a half-hour offset
        # New York springs forward on 2026-03-08: that day lasts 23 hours
        ("America/New_York", NOV_24 - 261, "2026-03-08T05:00:00+00:00"),
        ("America/New_York", NOV_24 - 260, "2026-03-09T04:00:00+00:00"),
    ],
)
def test_where_a_day_starts(zone: str | None, day: int, starts_at: str) -> None:
    start = day_start_ms(day, zone)
    assert dt.datetime.fromtimestamp(start / 1000, dt.UTC).isoformat() == starts_at
    assert day_of(start, zone) == day and day_of(start - 1, zone) == day - 1


@pytest.mark.parametrize(
    ("value", "zone"),
    [
        (None, None),
        ("UTC", None),
        ("Etc/UTC", None),
        (BERLIN, BERLIN),
        ("Etc/GMT+12", "Etc/GMT+12"),
    ],
)
def test_a_time_zone_is_an_iana_name(value: object, zone: str | None) -> None:
    assert check_time_zone(value) == zone
    assert check_time_zone(KEEP) is KEEP


@pytest.mark.parametrize(
    "value",
    ["", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "Europe/", "x" * 65, 1, [], {}],
)
def test_anything_else_is_refused(value: object) -> None:
    refused = check_time_zone(value)
    assert isinstance(refused, Refusal) and refused.code is Code.INVALID
    assert "IANA" in refused.message


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
