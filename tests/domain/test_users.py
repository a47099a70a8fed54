"""User rules: names, birth dates, and who counts as an adult (leap days, the 18th birthday)."""

from __future__ import annotations

import datetime as dt

import pytest

from server.domain.errors import Code, Refusal
from server.domain.money import UserId
from server.domain.users import User, age_on, check_name, parse_birthdate

TODAY = dt.date(2026, 11, 24)


@pytest.mark.parametrize("name", ["a", "Z", "alice", "Alice_B.c-9", "a" * 32, "0", "._-"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 33,
        "ali ce",
        "alice\n",  # a trailing newline is not one of the allowed characters
        "\nalice",
        "élise",
        "al/ice",
        "al@ice",
        "alice\x00",
        "ａlice",  # full-width a
        None,
        5,
        b"alice",
        ["alice"],
    ],
)
def test_bad_names(name: object) -> None:
    refused = check_name(name)
    assert isinstance(refused, Refusal)
    assert refused.code is Code.INVALID
    assert "1-32" in refused.message


@pytest.mark.parametrize(
    ("text", "born"),
    [
        ("2001-05-17", dt.date(2001, 5, 17)),
        ("1900-01-01", dt.date(1900, 1, 1)),
        ("2004-02-29", dt.date(2004, 2, 29)),
        ("2026-11-24", TODAY),  # born today is not in the future
    ],
)
def test_good_birthdates(text: str, born: dt.date) -> None:
    assert parse_birthdate(text, TODAY) == born


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2001-5-17", "YYYY-MM-DD"),
        ("2001/05/17", "YYYY-MM-DD"),
        ("17-05-2001", "YYYY-MM-DD"),
        ("20010517", "YYYY-MM-DD"),
        ("2001-05-17T00:00", "YYYY-MM-DD"),
        (" 2001-05-1", "YYYY-MM-DD"),
        ("2001-05-1\n", "YYYY-MM-DD"),
        ("٢٠٠١-٠٥-١٧", "YYYY-MM-DD"),  # Arabic-Indic digits
        ("2001-W20-4", "YYYY-MM-DD"),  # an ISO week date is not YYYY-MM-DD
        ("20010517  ", "YYYY-MM-DD"),  # nor is the basic format padded to ten characters
        ("2001-02-29", "real date"),
        ("2001-13-01", "real date"),
        ("2001-00-10", "real date"),
        ("2001-04-31", "real date"),
        ("0000-01-01", "real date"),
        ("", "YYYY-MM-DD"),
        ("2026-11-25", "future"),
        ("9999-12-31", "future"),
        ("1899-12-31", "1900"),
        (None, "YYYY-MM-DD"),
        (20010517, "YYYY-MM-DD"),
        (dt.date(2001, 5, 17), "YYYY-MM-DD"),
    ],
)
def test_bad_birthdates(value: object, says: str) -> None:
    refused = parse_birthdate(value, TODAY)
    assert isinstance(refused, Refusal), refused
    assert refused.code is Code.INVALID
    assert says in refused.message


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (dt.date(2008, 11, 24), dt.date(2026, 11, 24), 18),  # the 18th birthday itself
        (dt.date(2008, 11, 24), dt.date(2026, 11, 23), 17),  # the day before
        (dt.date(2008, 11, 25), dt.date(2026, 11, 24), 17),
        (dt.date(2008, 12, 31), dt.date(2026, 1, 1), 17),
        (dt.date(2008, 1, 1), dt.date(2026, 12, 31), 18),
        (dt.date(2026, 11, 24), dt.date(2026, 11, 24), 0),
        # Born on a leap day: in common years the birthday counts from 1 March.
        (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 17),
        (dt.date(2008, 2, 29), dt.date(2026, 3, 1), 18),
        (dt.date(2008, 2, 29), dt.date(2028, 2, 28), 19),
        (dt.date(2008, 2, 29), dt.date(2028, 2, 29), 20),
        (dt.date(2000, 2, 29), dt.date(2018, 2, 28), 17),
        (dt.date(2000, 2, 29), dt.date(2018, 3, 1), 18),
        # Born on 28 February or 1 March around a leap day.
        (dt.date(2008, 2, 28), dt.date(2026, 2, 28), 18),
        (dt.date(2008, 3, 1), dt.date(2026, 2, 28), 17),
        (dt.date(2008, 3, 1), dt.date(2026, 3, 1), 18),
    ],
)
def test_age_on(born: dt.date, today: dt.date, age: int) -> None:
    assert age_on(born, today) == age


@pytest.mark.parametrize(
    ("born", "adult"),
    [
        (dt.date(2008, 11, 24), True),
        (dt.date(2008, 11, 25), False),
        (dt.date(1950, 1, 1), True),
        (dt.date(2020, 1, 1), False),
    ],
)
def test_is_adult_from_the_18th_birthday(born: dt.date, adult: bool) -> None:
    assert User(UserId(1), "alice", born).is_adult(TODAY) is adult
