"""Ids and money units. Money is always an `int`: coins, diamonds, cents.

A coin gifted credits the host `diamonds_per_coin` diamonds; a diamond cashes out at
`cents_per_100_diamonds` cents per hundred. Both rates are integers, so nothing rounds on a gift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

UserId = NewType("UserId", int)
RoomId = NewType("RoomId", int)
TransferId = NewType("TransferId", int)


@dataclass(frozen=True, slots=True)
class Rates:
    diamonds_per_coin: int = 1
    cents_per_100_diamonds: int = 50

    def diamonds_for(self, coins: int) -> int:
        return coins * self.diamonds_per_coin

    def cents_for_diamonds(self, diamonds: int) -> int:
        """Whole cents a number of diamonds is worth, rounded down (the rest stays diamonds)."""
        return diamonds * self.cents_per_100_diamonds // 100
