"""Users: name and birth-date rules, and who counts as an adult."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from server.domain.errors import Code, Refusal
from server.domain.money import UserId

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
ADULT_AGE_YEARS = 18
OLDEST_BIRTH_YEAR = 1900


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    name: str
    birthdate: dt.date

    def is_adult(self, today: dt.date) -> bool:
        return age_on(self.birthdate, today) >= ADULT_AGE_YEARS


def age_on(birthdate: dt.date, today: dt.date) -> int:
    years = today.year - birthdate.year
    if (today.month, today.day) < (birthdate.month, birthdate.day):
        years -= 1
    return years


def check_name(name: object) -> str | Refusal:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return Refusal(Code.INVALID, "name must be 1-32 characters of A-Z a-z 0-9 _ . -")
    return name


def parse_birthdate(value: object, today: dt.date) -> dt.date | Refusal:
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        return Refusal(Code.INVALID, "birthdate must be a date written YYYY-MM-DD")
    try:
        born = dt.date.fromisoformat(value)
    except ValueError:
        return Refusal(Code.INVALID, "birthdate must be a real date written YYYY-MM-DD")
    if born > today:
        return Refusal(Code.INVALID, "birthdate cannot be in the future")
    if born.year < OLDEST_BIRTH_YEAR:
        return Refusal(Code.INVALID, f"birthdate must be in {OLDEST_BIRTH_YEAR} or later")
    return born
