"""What money a gift stands for: what the viewer paid, what the host gets, what the platform keeps.

Coins are bought at different prices (bigger packages are cheaper per coin), so each user's coins
carry a *cost basis*: the cash they paid for the coins they still hold. Cash here is counted in
millicents (1/1000 of a cent) so that a 1-coin gift's value does not round away.

Coins leave a wallet at their average cost (the moving-average method of stock accounting):
spending `k` of the `held` coins whose basis is `basis` takes `basis * k // held` out of it, and
the last coin takes whatever is left. So, per user, what the recharges cost always equals what
is still held plus the cost of every coin gifted or refunded away: no value is created or lost
by rounding, and a user with no coins holds no cost. The audit checks both.

The host's side is exact: a diamond cashes out at `cents_per_100_diamonds` cents per hundred,
i.e. `10 * cents_per_100_diamonds` millicents each. The platform keeps the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.money import Rates

MILLICENTS_PER_CENT = 1000


def cents_to_millicents(cents: int) -> int:
    return cents * MILLICENTS_PER_CENT


def cost_leaving(basis_millicents: int, held: int, coins: int) -> int:
    """The cost of `coins` of the `held` coins whose cost basis is `basis_millicents`.

    Average cost, rounded down; spending everything held takes the whole basis.
    """
    if not 0 < coins <= held:
        raise ValueError(f"cannot take {coins} of {held} coins")
    if basis_millicents < 0:
        raise ValueError(f"a cost basis cannot be negative: {basis_millicents}")
    return basis_millicents * coins // held


def diamonds_millicents(diamonds: int, rates: Rates) -> int:
    """What diamonds cash out at, exactly (no rounding: millicents are fine enough)."""
    return diamonds * rates.cents_per_100_diamonds * MILLICENTS_PER_CENT // 100


@dataclass(frozen=True, slots=True)
class GiftValue:
    """A gift in cash: what the viewer's coins cost them, what the host's diamonds are worth."""

    paid_millicents: int
    host_millicents: int

    @property
    def platform_millicents(self) -> int:
        """The platform's share; negative if coins were bought below the host's rate."""
        return self.paid_millicents - self.host_millicents

    def doc(self, currency: str) -> dict[str, object]:
        return {
            "currency": currency,
            "paid_millicents": self.paid_millicents,
            "host_millicents": self.host_millicents,
            "platform_millicents": self.platform_millicents,
        }


def gift_value(cost_millicents: int, diamonds: int, rates: Rates) -> GiftValue:
    return GiftValue(cost_millicents, diamonds_millicents(diamonds, rates))
