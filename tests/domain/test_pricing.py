"""What a gift stands for in cash: average cost for the viewer, an exact rate for the host."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.ledger import AuditInput, CostTotals, audit
from server.domain.money import Rates
from server.domain.pricing import GiftValue, cost_leaving, diamonds_millicents, gift_value


@pytest.mark.parametrize(
    ("basis", "held", "coins", "cost"),
    [
        (99_000, 65, 65, 99_000),  # everything held: the whole basis, nothing left behind
        (99_000, 65, 1, 1_523),  # 99,000 / 65 = 1,523.07...: rounded down
        (99_000, 65, 30, 45_692),
        (598_000, 395, 299, 452_663),
        (0, 10, 3, 0),  # coins that cost nothing
        (1, 3, 2, 0),  # the millicent stays with the last coin
        (1, 3, 3, 1),
    ],
)
def test_coins_leave_at_their_average_cost(basis: int, held: int, coins: int, cost: int) -> None:
    assert cost_leaving(basis, held, coins) == cost


@pytest.mark.parametrize(
    ("basis", "held", "coins"),
    [(100, 5, 0), (100, 5, 6), (100, 0, 1), (100, 5, -1), (-1, 5, 1)],
)
def test_taking_what_is_not_held_is_a_bug(basis: int, held: int, coins: int) -> None:
    with pytest.raises(ValueError):
        cost_leaving(basis, held, coins)


@given(
    st.lists(st.integers(1, 10**6), min_size=1, max_size=8),
    st.data(),
)
def test_spending_everything_adds_up_to_what_was_paid(
    prices: list[int], data: st.DataObject
) -> None:
    """However the coins are spent, the costs taken add up to the basis exactly."""
    basis = sum(prices)
    held = data.draw(st.integers(1, 10**5))
    taken = 0
    while held:
        coins = data.draw(st.integers(1, held))
        cost = cost_leaving(basis, held, coins)
        assert 0 <= cost <= basis
        basis, held, taken = basis - cost, held - coins, taken + cost
    assert (basis, taken) == (0, sum(prices))


@pytest.mark.parametrize(
    ("diamonds", "cents_per_100", "millicents"),
    [(1, 50, 500), (299, 50, 149_500), (3, 1, 30), (7, 33, 2_310), (0, 50, 0)],
)
def test_diamonds_are_worth_their_rate_exactly(
    diamonds: int, cents_per_100: int, millicents: int
) -> None:
    assert diamonds_millicents(diamonds, Rates(1, cents_per_100)) == millicents


def test_a_gift_shows_the_viewer_the_host_and_the_platform() -> None:
    value = gift_value(452_124, 299, Rates(1, 50))
    assert value == GiftValue(paid_millicents=452_124, host_millicents=149_500)
    assert value.platform_millicents == 302_624
    assert value.doc("USD") == {
        "currency": "USD",
        "paid_millicents": 452_124,
        "host_millicents": 149_500,
        "platform_millicents": 302_624,
    }


def _audited(costs: CostTotals) -> list[str]:
    return [v.rule for v in audit(AuditInput({}, {}, (), 0, 0, 0, costs)).violations]


def test_the_audit_accounts_for_every_millicent_paid() -> None:
    assert _audited(CostTotals(paid=100, held=40, gifted=50, refunded=10)) == []
    report = audit(AuditInput({}, {}, (), 0, 0, 0, CostTotals(100, 40, 50, 10)))
    assert report.totals["coin_cost_millicents"] == {
        "paid": 100,
        "held": 40,
        "gifted": 50,
        "refunded": 10,
    }
    assert _audited(CostTotals(paid=100, held=41, gifted=50, refunded=10)) == [
        "coin_costs_paid_equal_held_gifted_refunded"
    ]


def test_the_audit_names_costs_missing_or_stranded() -> None:
    assert _audited(CostTotals(0, 0, 0, 0, without_cost=2)) == ["every_gift_and_refund_has_a_cost"]
    report = audit(AuditInput({}, {}, (), 0, 0, 0, CostTotals(5, 5, 0, 0, 0, [(7, 5)])))
    (violation,) = report.violations
    assert (violation.rule, violation.account) == ("no_cost_without_coins", "user:7:coin")
