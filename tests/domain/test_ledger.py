"""Ledger shape: derived account ids, balanced legs, and an audit that names what is wrong."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from server.domain.ledger import (
    Asset,
    AuditInput,
    Leg,
    SystemAccount,
    account_asset,
    account_name,
    account_owner,
    audit,
    coin_account,
    diamond_account,
    gift_legs,
    legs_balance,
    recharge_legs,
)
from server.domain.money import UserId

ALICE = UserId(7)
HOST = UserId(8)


@pytest.mark.parametrize("uid", [0, 1, 2, 7, 49, 50, 999, 2**31, 10**15])
def test_user_accounts_round_trip(uid: int) -> None:
    user = UserId(uid)
    coin, diamond = coin_account(user), diamond_account(user)
    assert coin != diamond
    assert coin >= 100 and diamond >= 100
    assert (account_owner(coin), account_asset(coin)) == (user, Asset.COIN)
    assert (account_owner(diamond), account_asset(diamond)) == (user, Asset.DIAMOND)
    assert account_name(coin) == f"user:{uid}:coin"
    assert account_name(diamond) == f"user:{uid}:diamond"


def test_user_accounts_never_collide() -> None:
    accounts = [f(UserId(u)) for u in range(500) for f in (coin_account, diamond_account)]
    assert len(set(accounts)) == len(accounts)
    assert not set(accounts) & {int(a) for a in SystemAccount}


@pytest.mark.parametrize(
    ("account", "asset", "name"),
    [
        (SystemAccount.COINS_ISSUED, Asset.COIN, "coins_issued"),
        (SystemAccount.COINS_SPENT, Asset.COIN, "coins_spent"),
        (SystemAccount.DIAMONDS_ISSUED, Asset.DIAMOND, "diamonds_issued"),
        (SystemAccount.COINS_REFUNDED, Asset.COIN, "coins_refunded"),
    ],
)
def test_system_accounts(account: SystemAccount, asset: Asset, name: str) -> None:
    assert account_owner(account) is None
    assert account_asset(account) is asset
    assert account_name(account) == name


@pytest.mark.parametrize("account", [0, 7, 99])  # 1-6 are the system accounts
def test_an_unknown_system_account_is_a_bug(account: int) -> None:
    with pytest.raises(ValueError):
        account_asset(account)


@pytest.mark.parametrize(
    ("legs", "balanced"),
    [
        (recharge_legs(ALICE, 330), True),
        (gift_legs(ALICE, HOST, 299, 299), True),
        (gift_legs(ALICE, HOST, 10, 20), True),  # coins and diamonds balance separately
        ((), True),
        ((Leg(SystemAccount.COINS_ISSUED, -5), Leg(coin_account(ALICE), 4)), False),
        ((Leg(coin_account(ALICE), -5), Leg(diamond_account(HOST), 5)), False),  # across assets
        ((Leg(diamond_account(HOST), 1),), False),
        ((Leg(SystemAccount.COINS_SPENT, 3), Leg(SystemAccount.COINS_ISSUED, -3)), True),
    ],
)
def test_legs_balance(legs: tuple[Leg, ...], balanced: bool) -> None:
    assert legs_balance(legs) is balanced


def test_recharge_and_gift_legs() -> None:
    assert recharge_legs(ALICE, 65) == (
        Leg(SystemAccount.COINS_ISSUED, -65),
        Leg(coin_account(ALICE), 65),
    )
    assert gift_legs(ALICE, HOST, 5, 5) == (
        Leg(coin_account(ALICE), -5),
        Leg(SystemAccount.COINS_SPENT, 5),
        Leg(SystemAccount.DIAMONDS_ISSUED, -5),
        Leg(diamond_account(HOST), 5),
    )


# --- audit --------------------------------------------------------------------------------


def journal(legs: Iterable[Leg]) -> dict[int, int]:
    sums: dict[int, int] = {}
    for leg in legs:
        sums[leg.account] = sums.get(leg.account, 0) + leg.amount
    return sums


def clean() -> AuditInput:
    """Alice buys 330 coins and gifts 299 to the host."""
    sums = journal([*recharge_legs(ALICE, 330), *gift_legs(ALICE, HOST, 299, 299)])
    return AuditInput(dict(sums), dict(sums), (), transfers=2, entries=6)


def test_a_clean_ledger_is_balanced_with_its_totals() -> None:
    report = audit(clean())
    assert report.balanced
    assert report.violations == ()
    assert report.totals == {
        "coin": {"sum": 0, "issued": 330, "held_by_users": 31, "spent": 299, "refunded": 0},
        "diamond": {"sum": 0, "issued": 299, "held_by_users": 299, "reserved": 0, "paid_out": 0},
    }
    assert (report.transfers, report.entries) == (2, 6)


def test_an_empty_ledger_is_balanced() -> None:
    assert audit(AuditInput({}, {}, (), 0, 0)).balanced


def _with(
    entry_sums: dict[int, int] | None = None,
    stored: dict[int, int] | None = None,
    unbalanced: tuple[tuple[int, str, int], ...] = (),
    pending_payout_diamonds: int = 0,
) -> AuditInput:
    base = clean()
    return AuditInput(
        {**base.entry_sums, **(entry_sums or {})},
        {**base.stored_balances, **(stored or {})},
        unbalanced,
        base.transfers,
        base.entries,
        pending_payout_diamonds,
    )


ALICE_COIN = coin_account(ALICE)
HOST_DIAMOND = diamond_account(HOST)

VIOLATIONS: list[tuple[str, AuditInput, set[tuple[str, str | None]]]] = [
    (
        "a user's stored balance differs from its entries",
        _with(stored={ALICE_COIN: 32}),
        {("balance_equals_entries", "user:7:coin")},
    ),
    (
        "a system account's stored balance differs",
        _with(stored={SystemAccount.COINS_SPENT: 304}),
        {("balance_equals_entries", "coins_spent")},
    ),
    (
        "an account with a balance and no entries",
        _with(stored={diamond_account(ALICE): 5}),
        {("balance_equals_entries", "user:7:diamond")},
    ),
    (
        "a user's balance is negative",
        _with(
            entry_sums={ALICE_COIN: -5, SystemAccount.COINS_SPENT: 335},
            stored={ALICE_COIN: -5, SystemAccount.COINS_SPENT: 335},
        ),
        {("user_balance_not_negative", "user:7:coin")},
    ),
    (
        "a transfer's legs do not balance",
        _with(unbalanced=((12, "coin", 3),)),
        {("transfer_legs_balance", None)},
    ),
    (
        "an asset does not sum to zero, so issued != held + spent",
        _with(entry_sums={ALICE_COIN: 41}, stored={ALICE_COIN: 41}),
        {("asset_sums_to_zero", None), ("coins_issued_equal_held_spent_refunded", None)},
    ),
    (
        "diamonds do not sum to zero, so issued != held + reserved + paid out",
        _with(entry_sums={HOST_DIAMOND: 300}, stored={HOST_DIAMOND: 300}),
        {("asset_sums_to_zero", None), ("diamonds_issued_equal_held_reserved_paid", None)},
    ),
    (
        "reserved diamonds do not match the pending payouts",
        _with(pending_payout_diamonds=2000),
        {("reserved_equals_pending_payouts", "diamonds_reserved")},
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [(d, e) for _, d, e in VIOLATIONS], ids=[n for n, _, _ in VIOLATIONS]
)
def test_audit_names_each_violation(
    data: AuditInput, expected: set[tuple[str, str | None]]
) -> None:
    report = audit(data)
    assert not report.balanced
    assert {(v.rule, v.account) for v in report.violations} == expected
    assert all(v.detail for v in report.violations)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_with(stored={ALICE_COIN: 32}), "stored 32, entries sum to 31"),
        (_with(unbalanced=((12, "coin", 3),)), "transfer 12: coin legs sum to 3"),
        (
            _with(entry_sums={ALICE_COIN: 41}, stored={ALICE_COIN: 41}),
            "issued 330 != held 41 + spent 299",
        ),
        (_with(entry_sums={HOST_DIAMOND: 300}, stored={HOST_DIAMOND: 300}), "diamond"),
    ],
)
def test_audit_details_say_what_is_wrong(data: AuditInput, words: str) -> None:
    assert any(words in v.detail for v in audit(data).violations)
