"""Creator payouts: diamonds to cash, and the states a payout goes through.

    pending --paid--> paid        (the reserved diamonds leave for good)
    pending --failed--> failed    (the reserved diamonds come back: payout_reversed)

Each step happens at most once. Cash is whole cents: a payout takes only the diamonds that make
whole cents, so no value is created or lost by rounding; the rest stays in the balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.domain.errors import Code, Refusal


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Payable:
    diamonds: int  # what the payout takes from the balance
    cents: int  # what it pays


def payable(requested: int, cents_per_100_diamonds: int) -> Payable:
    """The largest payout of at most `requested` diamonds that is worth whole cents exactly."""
    cents = requested * cents_per_100_diamonds // 100
    if cents == 0:
        return Payable(0, 0)
    diamonds = -(-cents * 100 // cents_per_100_diamonds)  # fewest diamonds worth `cents`
    return Payable(diamonds, cents)


def check_request(
    requested: object, minimum_diamonds: int, cents_per_100_diamonds: int
) -> Payable | Refusal:
    if type(requested) is not int or not 1 <= requested <= 10**12:
        return Refusal(Code.INVALID, 'send {"diamonds": <a whole number of diamonds>}')
    if requested < minimum_diamonds:
        return Refusal(
            Code.BELOW_MINIMUM,
            f"the smallest payout is {minimum_diamonds} diamonds; you asked for {requested}",
        )
    due = payable(requested, cents_per_100_diamonds)
    if due.cents == 0:
        return Refusal(Code.BELOW_MINIMUM, "these diamonds are not worth a whole cent")
    return due


def settle(status: PayoutStatus, outcome: object) -> PayoutStatus | Refusal:
    """The status after settling with `outcome` (`paid` or `failed`), once only."""
    if outcome not in (PayoutStatus.PAID.value, PayoutStatus.FAILED.value):
        return Refusal(Code.INVALID, 'send {"outcome": "paid"} or {"outcome": "failed"}')
    if status is not PayoutStatus.PENDING:
        return Refusal(Code.ALREADY_SETTLED, f"this payout was already settled: {status.value}")
    return PayoutStatus(outcome)
