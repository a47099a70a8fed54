"""The double-entry ledger's shape: accounts, transfers and their legs, and the audit rules.

Every movement of money is a transfer with legs; a leg adds a signed amount to one account.
Per asset the legs of a transfer sum to zero, so per asset all accounts always sum to zero.
User accounts never go negative; system accounts hold the other side:

    coin     coins_issued  (-)  every coin sold to a user
    coin     coins_spent   (+)  every coin a user gave away as a gift (the platform's)
    coin     coins_refunded (+) every coin taken back by refunding its purchase
    diamond  diamonds_reserved (+) diamonds of payouts still pending (two-phase, like a pending
                                   transfer: they have left the host's spendable balance)
    diamond  diamonds_paid_out (+) diamonds of payouts settled as paid
    diamond  diamonds_issued (-) every diamond credited to a host

Account ids are derived, not looked up: system accounts are 1-99, user `u` owns coin account
`2u + 100` and diamond account `2u + 101`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import NamedTuple

from server.domain.money import UserId


class Asset(StrEnum):
    COIN = "coin"
    DIAMOND = "diamond"


class SystemAccount(IntEnum):
    COINS_ISSUED = 1
    COINS_SPENT = 2
    DIAMONDS_ISSUED = 3
    COINS_REFUNDED = 4
    DIAMONDS_RESERVED = 5
    DIAMONDS_PAID_OUT = 6


SYSTEM_ASSET: Mapping[SystemAccount, Asset] = {
    SystemAccount.COINS_ISSUED: Asset.COIN,
    SystemAccount.COINS_SPENT: Asset.COIN,
    SystemAccount.DIAMONDS_ISSUED: Asset.DIAMOND,
    SystemAccount.COINS_REFUNDED: Asset.COIN,
    SystemAccount.DIAMONDS_RESERVED: Asset.DIAMOND,
    SystemAccount.DIAMONDS_PAID_OUT: Asset.DIAMOND,
}
USER_ACCOUNT_BASE = 100


class TransferKind(StrEnum):
    RECHARGE = "recharge"
    GIFT = "gift"
    REFUND = "refund"
    PAYOUT = "payout"  # a payout requested: the host's diamonds are reserved
    PAYOUT_PAID = "payout_paid"  # settled paid: reserved diamonds leave for good
    PAYOUT_REVERSED = "payout_reversed"  # settled failed: reserved diamonds come back


def coin_account(user: UserId) -> int:
    return 2 * user + USER_ACCOUNT_BASE


def diamond_account(user: UserId) -> int:
    return 2 * user + USER_ACCOUNT_BASE + 1


def account_owner(account: int) -> UserId | None:
    if account < USER_ACCOUNT_BASE:
        return None
    return UserId((account - USER_ACCOUNT_BASE) // 2)


def account_asset(account: int) -> Asset:
    if account < USER_ACCOUNT_BASE:
        return SYSTEM_ASSET[SystemAccount(account)]
    return Asset.COIN if (account - USER_ACCOUNT_BASE) % 2 == 0 else Asset.DIAMOND


def account_name(account: int) -> str:
    owner = account_owner(account)
    if owner is None:
        return SystemAccount(account).name.lower()
    return f"user:{owner}:{account_asset(account).value}"


class Leg(NamedTuple):
    """One leg of a transfer (a tuple: four are made per gift, inside the group commit)."""

    account: int
    amount: int  # signed: + credit, - debit


def recharge_legs(user: UserId, coins: int) -> tuple[Leg, Leg]:
    return (Leg(SystemAccount.COINS_ISSUED, -coins), Leg(coin_account(user), coins))


def refund_legs(user: UserId, coins: int) -> tuple[Leg, Leg]:
    """A refunded purchase: its coins leave the user's account for good."""
    return (Leg(coin_account(user), -coins), Leg(SystemAccount.COINS_REFUNDED, coins))


def payout_legs(user: UserId, diamonds: int) -> tuple[Leg, Leg]:
    return (Leg(diamond_account(user), -diamonds), Leg(SystemAccount.DIAMONDS_RESERVED, diamonds))


def payout_paid_legs(diamonds: int) -> tuple[Leg, Leg]:
    return (
        Leg(SystemAccount.DIAMONDS_RESERVED, -diamonds),
        Leg(SystemAccount.DIAMONDS_PAID_OUT, diamonds),
    )


def payout_reversed_legs(user: UserId, diamonds: int) -> tuple[Leg, Leg]:
    return (Leg(SystemAccount.DIAMONDS_RESERVED, -diamonds), Leg(diamond_account(user), diamonds))


def gift_legs(sender: UserId, host: UserId, coins: int, diamonds: int) -> tuple[Leg, ...]:
    return (
        Leg(coin_account(sender), -coins),
        Leg(SystemAccount.COINS_SPENT, coins),
        Leg(SystemAccount.DIAMONDS_ISSUED, -diamonds),
        Leg(diamond_account(host), diamonds),
    )


def legs_balance(legs: Iterable[Leg]) -> bool:
    sums: dict[Asset, int] = {}
    for leg in legs:
        asset = account_asset(leg.account)
        sums[asset] = sums.get(asset, 0) + leg.amount
    return all(total == 0 for total in sums.values())


# --- audit ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    account: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class AuditInput:
    """What the store recomputes from the journal (never from cached totals)."""

    entry_sums: Mapping[int, int]  # account -> sum of its entries
    stored_balances: Mapping[int, int]  # account -> balance column
    unbalanced_transfers: Sequence[tuple[int, str, int]]  # (transfer id, asset, sum of legs)
    transfers: int
    entries: int
    pending_payout_diamonds: int = 0  # sum over payouts whose status is pending
    costs: CostTotals | None = None  # the cost-basis figures (domain.pricing); None: not kept


@dataclass(frozen=True, slots=True)
class CostTotals:
    """Cash, in millicents, that the coins stood for: every purchase's price, what users still
    hold, the cost of coins gifted and refunded away; and the exceptions found."""

    paid: int
    held: int
    gifted: int
    refunded: int
    without_cost: int = 0  # gifts or refunds whose cost was never recorded
    cost_without_coins: Sequence[tuple[int, int]] = ()  # (user, basis) of users holding no coins


@dataclass(frozen=True, slots=True)
class AuditReport:
    balanced: bool
    totals: Mapping[str, Mapping[str, int]]
    violations: Sequence[Violation] = field(default_factory=tuple)
    transfers: int = 0
    entries: int = 0


def audit(data: AuditInput) -> AuditReport:
    violations: list[Violation] = []
    totals: dict[str, dict[str, int]] = {
        Asset.COIN.value: {"sum": 0, "issued": 0, "held_by_users": 0, "spent": 0, "refunded": 0},
        Asset.DIAMOND.value: {
            "sum": 0,
            "issued": 0,
            "held_by_users": 0,
            "reserved": 0,
            "paid_out": 0,
        },
    }
    for transfer_id, asset, total in data.unbalanced_transfers:
        violations.append(
            Violation(
                "transfer_legs_balance",
                None,
                f"transfer {transfer_id}: {asset} legs sum to {total}",
            )
        )
    for account in sorted(set(data.entry_sums) | set(data.stored_balances)):
        summed = data.entry_sums.get(account, 0)
        stored = data.stored_balances.get(account, 0)
        name = account_name(account)
        asset = account_asset(account).value
        totals[asset]["sum"] += summed
        if summed != stored:
            violations.append(
                Violation(
                    "balance_equals_entries", name, f"stored {stored}, entries sum to {summed}"
                )
            )
        if account_owner(account) is not None:
            totals[asset]["held_by_users"] += summed
            if summed < 0:
                violations.append(Violation("user_balance_not_negative", name, f"balance {summed}"))
        elif account == SystemAccount.COINS_ISSUED:
            totals[asset]["issued"] = -summed
        elif account == SystemAccount.COINS_SPENT:
            totals[asset]["spent"] = summed
        elif account == SystemAccount.COINS_REFUNDED:
            totals[asset]["refunded"] = summed
        elif account == SystemAccount.DIAMONDS_ISSUED:
            totals[asset]["issued"] = -summed
        elif account == SystemAccount.DIAMONDS_RESERVED:
            totals[asset]["reserved"] = summed
        elif account == SystemAccount.DIAMONDS_PAID_OUT:
            totals[asset]["paid_out"] = summed
    for asset, values in totals.items():
        if values["sum"] != 0:
            violations.append(
                Violation("asset_sums_to_zero", None, f"{asset} accounts sum to {values['sum']}")
            )
    coin = totals[Asset.COIN.value]
    if coin["issued"] != coin["held_by_users"] + coin["spent"] + coin["refunded"]:
        violations.append(
            Violation(
                "coins_issued_equal_held_spent_refunded",
                None,
                f"issued {coin['issued']} != held {coin['held_by_users']} + spent"
                f" {coin['spent']} + refunded {coin['refunded']}",
            )
        )
    diamond = totals[Asset.DIAMOND.value]
    if diamond["reserved"] != data.pending_payout_diamonds:
        violations.append(
            Violation(
                "reserved_equals_pending_payouts",
                account_name(SystemAccount.DIAMONDS_RESERVED),
                f"reserved {diamond['reserved']} != pending payouts {data.pending_payout_diamonds}",
            )
        )
    if diamond["issued"] != diamond["held_by_users"] + diamond["reserved"] + diamond["paid_out"]:
        violations.append(
            Violation(
                "diamonds_issued_equal_held_reserved_paid",
                None,
                f"issued {diamond['issued']} != held {diamond['held_by_users']} + reserved"
                f" {diamond['reserved']} + paid out {diamond['paid_out']}",
            )
        )
    if data.costs is not None:
        totals["coin_cost_millicents"] = _audit_costs(data.costs, violations)
    return AuditReport(
        balanced=not violations,
        totals=totals,
        violations=tuple(violations),
        transfers=data.transfers,
        entries=data.entries,
    )


def _audit_costs(costs: CostTotals, violations: list[Violation]) -> dict[str, int]:
    if costs.paid != costs.held + costs.gifted + costs.refunded:
        violations.append(
            Violation(
                "coin_costs_paid_equal_held_gifted_refunded",
                None,
                f"paid {costs.paid} != held {costs.held} + gifted {costs.gifted}"
                f" + refunded {costs.refunded} (millicents)",
            )
        )
    if costs.without_cost:
        violations.append(
            Violation(
                "every_gift_and_refund_has_a_cost",
                None,
                f"{costs.without_cost} gifts or refunds carry no cost",
            )
        )
    for user, basis in costs.cost_without_coins:
        violations.append(
            Violation(
                "no_cost_without_coins",
                account_name(coin_account(UserId(user))),
                f"holds no coins but a cost basis of {basis} millicents",
            )
        )
    return {
        "paid": costs.paid,
        "held": costs.held,
        "gifted": costs.gifted,
        "refunded": costs.refunded,
    }
