"""Cost bases on SQLite: what each user paid for the coins they hold (see `domain.pricing`).

One row per user in `coin_costs`; gifts and refunds record the cost of the coins they took in
`transfers.cost_millicents`. Runs on the writer thread, inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from server.domain.ledger import USER_ACCOUNT_BASE, CostTotals
from server.domain.pricing import MILLICENTS_PER_CENT, cents_to_millicents, cost_leaving
from server.storage.sqlite_rows import insert_rows


def bases(conn: sqlite3.Connection, users: Iterable[int]) -> dict[int, int]:
    """Each user's cost basis in millicents (0 for a user who never bought coins)."""
    wanted = list(set(users))
    found = dict.fromkeys(wanted, 0)
    for start in range(0, len(wanted), 400):
        chunk = wanted[start : start + 400]
        marks = ",".join("?" * len(chunk))
        found.update(
            conn.execute(
                f"SELECT user_id, millicents FROM coin_costs WHERE user_id IN ({marks})", chunk
            )
        )
    return found


def store_bases(conn: sqlite3.Connection, changed: dict[int, int]) -> None:
    insert_rows(
        conn,
        "INSERT INTO coin_costs (user_id, millicents)",
        list(changed.items()),
        "ON CONFLICT (user_id) DO UPDATE SET millicents = excluded.millicents",
    )


def add_cost(conn: sqlite3.Connection, user: int, cents: int) -> None:
    """A purchase: its price joins the user's cost basis."""
    conn.execute(
        "INSERT INTO coin_costs (user_id, millicents) VALUES (?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET millicents = millicents + excluded.millicents",
        (user, cents_to_millicents(cents)),
    )


def take_cost(conn: sqlite3.Connection, user: int, held: int, coins: int) -> int:
    """`coins` of the `held` leave the wallet: their average cost leaves the basis; returned."""
    basis = bases(conn, [user])[user]
    cost = cost_leaving(basis, held, coins)
    store_bases(conn, {user: basis - cost})
    return cost


def cost_totals(conn: sqlite3.Connection) -> CostTotals:
    ((paid, gifted, refunded, without),) = conn.execute(
        "SELECT coalesce(sum(CASE WHEN kind = 'recharge' THEN price_cents END), 0) * ?,"
        " coalesce(sum(CASE WHEN kind = 'gift' THEN cost_millicents END), 0),"
        " coalesce(sum(CASE WHEN kind = 'refund' THEN cost_millicents END), 0),"
        " count(CASE WHEN kind IN ('gift', 'refund') AND cost_millicents IS NULL THEN 1 END)"
        " FROM transfers",
        (MILLICENTS_PER_CENT,),
    ).fetchall()
    (held,) = conn.execute("SELECT coalesce(sum(millicents), 0) FROM coin_costs").fetchone()
    stranded = conn.execute(
        "SELECT c.user_id, c.millicents FROM coin_costs c"
        " LEFT JOIN accounts a ON a.id = 2 * c.user_id + ?"
        " WHERE c.millicents != 0 AND coalesce(a.balance, 0) = 0 ORDER BY c.user_id LIMIT 100",
        (USER_ACCOUNT_BASE,),
    ).fetchall()
    return CostTotals(paid, held, gifted, refunded, without, [tuple(r) for r in stranded])


def backfill(conn: sqlite3.Connection) -> None:
    """Migration 5: replay every purchase, gift and refund in order to set each user's basis
    and the cost of each gift and refund made before costs were kept."""
    basis: dict[int, int] = {}
    held: dict[int, int] = {}
    costs: list[tuple[int, int]] = []
    rows = conn.execute(
        "SELECT t.id, t.kind, t.user_id, t.price_cents, e.amount FROM transfers t"
        " JOIN entries e ON e.transfer_id = t.id AND e.account_id = 2 * t.user_id + ?"
        " WHERE t.kind IN ('recharge', 'gift', 'refund') ORDER BY t.id",
        (USER_ACCOUNT_BASE,),
    )
    for transfer, kind, user, price_cents, amount in rows:
        if kind == "recharge":
            basis[user] = basis.get(user, 0) + cents_to_millicents(price_cents)
            held[user] = held.get(user, 0) + amount
            continue
        cost = cost_leaving(basis[user], held[user], -amount)
        basis[user] -= cost
        held[user] += amount
        costs.append((cost, transfer))
    store_bases(conn, basis)
    # The journal is append-only; this one-time fill of a new column is the only exception.
    conn.execute("DROP TRIGGER transfers_append_only_u")
    conn.executemany("UPDATE transfers SET cost_millicents = ? WHERE id = ?", costs)
    conn.execute(
        "CREATE TRIGGER transfers_append_only_u BEFORE UPDATE ON transfers"
        " BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END"
    )


__all__ = ["add_cost", "backfill", "bases", "cost_totals", "store_bases", "take_cost"]
