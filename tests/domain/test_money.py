"""Rates: integer diamonds per coin, integer cents per hundred diamonds, rounding down."""

from __future__ import annotations

import pytest

from server.domain.money import Rates


@pytest.mark.parametrize(
    ("rates", "coins", "diamonds"),
    [
        (Rates(), 0, 0),
        (Rates(), 1, 1),
        (Rates(), 34_999, 34_999),
        (Rates(diamonds_per_coin=2), 299, 598),
        (Rates(diamonds_per_coin=3), 10**12, 3 * 10**12),
    ],
)
def test_diamonds_for(rates: Rates, coins: int, diamonds: int) -> None:
    got = rates.diamonds_for(coins)
    assert got == diamonds
    assert type(got) is int


@pytest.mark.parametrize(
    ("rates", "diamonds", "cents"),
    [
        (Rates(), 0, 0),
        (Rates(), 1, 0),  # half a cent stays diamonds
        (Rates(), 2, 1),
        (Rates(), 3, 1),
        (Rates(), 100, 50),
        (Rates(), 199, 99),
        (Rates(), 2000, 1000),  # the payout minimum is ten dollars
        (Rates(cents_per_100_diamonds=1), 99, 0),
        (Rates(cents_per_100_diamonds=1), 100, 1),
        (Rates(cents_per_100_diamonds=75), 10**15, 75 * 10**13),
    ],
)
def test_cents_for_diamonds_rounds_down(rates: Rates, diamonds: int, cents: int) -> None:
    got = rates.cents_for_diamonds(diamonds)
    assert got == cents
    assert type(got) is int


def test_default_rates_are_the_contracts() -> None:
    assert Rates() == Rates(diamonds_per_coin=1, cents_per_100_diamonds=50)
