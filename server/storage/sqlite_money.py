"""Money transactions on SQLite besides gifts: recharges, refunds, spending-limit changes.

Each function runs on the writer thread inside one `BEGIN IMMEDIATE` transaction (see
`sqlite.SqliteStore._tx`). Every balance change is a guarded or unconditional delta in SQL,
never a value read and written back; every answer of a call that moves money is stored under
its idempotency key in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from server.domain.catalog import Package
from server.domain.errors import Code, Refusal
from server.domain.ledger import (
    Leg,
    SystemAccount,
    TransferKind,
    coin_account,
    diamond_account,
    legs_balance,
    payout_legs,
    payout_paid_legs,
    payout_reversed_legs,
    recharge_legs,
    refund_legs,
)
from server.domain.limits import DAY_MS, Limit, day_of
from server.domain.money import TransferId, UserId
from server.domain.payouts import Payable, PayoutStatus, settle
from server.storage.base import PayoutRow, Refunded, ResponseMaker, StoredResponse
from server.storage.sqlite_batch import LIMIT_COLUMNS, add, limit_from_row
from server.storage.sqlite_costs import add_cost, take_cost


def recharge_tx(
    conn: sqlite3.Connection,
    user: UserId,
    package: Package,
    provider_ref: str,
    idempotency_key: str,
    request_hash: str,
    now_ms: int,
    respond: ResponseMaker,
) -> StoredResponse:
    row = conn.execute(
        "SELECT request_hash, status, body FROM idempotency WHERE user_id = ? AND key = ?",
        (user, idempotency_key),
    ).fetchone()
    if row is not None:
        return StoredResponse(row[0], row[1], bytes(row[2]))
    cur = conn.execute(
        "INSERT INTO transfers (kind, at_ms, user_id, package_id, price_cents, currency,"
        " provider_ref) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            TransferKind.RECHARGE.value,
            now_ms,
            user,
            package.id,
            package.price_cents,
            package.currency,
            provider_ref,
        ),
    )
    transfer = TransferId(int(cur.lastrowid or 0))
    legs = recharge_legs(user, package.coins)
    if not legs_balance(legs):
        raise RuntimeError(f"recharge legs do not balance: {legs}")
    balances = {leg.account: add(conn, leg.account, leg.amount) for leg in legs}
    conn.executemany(
        "INSERT INTO entries (account_id, transfer_id, amount, balance_after) VALUES (?, ?, ?, ?)",
        [(int(leg.account), transfer, leg.amount, balances[leg.account]) for leg in legs],
    )
    add_cost(conn, user, package.price_cents)
    after = balances[coin_account(user)]
    status, body = respond(transfer, after)
    conn.execute(
        "INSERT INTO idempotency (user_id, key, request_hash, status, body, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (user, idempotency_key, request_hash, status, body, now_ms),
    )
    return StoredResponse(request_hash, status, body)


def refund_tx(
    conn: sqlite3.Connection,
    user: UserId,
    recharge: TransferId,
    idempotency_key: str,
    request_hash: str,
    now_ms: int,
    window_ms: int,
    respond: ResponseMaker,
) -> Refunded | Refusal:
    kept = conn.execute(
        "SELECT request_hash, status, body FROM idempotency WHERE user_id = ? AND key = ?",
        (user, idempotency_key),
    ).fetchone()
    if kept is not None:
        return Refunded(StoredResponse(kept[0], kept[1], bytes(kept[2])))
    found = conn.execute(
        "SELECT t.at_ms, t.package_id, t.price_cents, t.currency, t.provider_ref, e.amount"
        " FROM transfers t JOIN entries e ON e.transfer_id = t.id AND e.account_id = ?"
        " WHERE t.id = ? AND t.kind = 'recharge' AND t.user_id = ?",
        (coin_account(user), recharge, user),
    ).fetchone()
    if found is None:
        return Refusal(Code.NOT_FOUND, f"you have no recharge {recharge} to refund")
    at_ms, package_id, price_cents, currency, provider_ref, coins = found
    if conn.execute("SELECT 1 FROM refunds WHERE recharge_id = ?", (recharge,)).fetchone():
        return Refusal(Code.ALREADY_REFUNDED, f"recharge {recharge} was already refunded")
    if now_ms - at_ms > window_ms:
        hours = window_ms // 3_600_000
        return Refusal(
            Code.REFUND_WINDOW_CLOSED,
            f"a recharge can be refunded within {hours} hours; this one is older",
        )
    debited = conn.execute(
        "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ? RETURNING balance",
        (coins, coin_account(user), coins),
    ).fetchone()
    if debited is None:
        (have,) = conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (coin_account(user),)
        ).fetchone()
        return Refusal(
            Code.COINS_ALREADY_SPENT,
            f"this recharge's {coins} coins are no longer all in your wallet"
            f" (you have {have}); only unspent purchases can be refunded",
        )
    cost = take_cost(conn, user, int(debited[0]) + coins, coins)
    cur = conn.execute(
        "INSERT INTO transfers (kind, at_ms, user_id, package_id, price_cents, currency,"
        " provider_ref, refund_of, cost_millicents) VALUES ('refund', ?, ?, ?, ?, ?, ?, ?, ?)",
        (now_ms, user, package_id, price_cents, currency, provider_ref, recharge, cost),
    )
    transfer = TransferId(int(cur.lastrowid or 0))
    legs = refund_legs(user, coins)
    refunded = add(conn, SystemAccount.COINS_REFUNDED, coins)
    after = {
        coin_account(user): int(debited[0]),
        int(SystemAccount.COINS_REFUNDED): refunded,
    }
    conn.executemany(
        "INSERT INTO entries (account_id, transfer_id, amount, balance_after) VALUES (?, ?, ?, ?)",
        [(int(leg.account), transfer, leg.amount, after[leg.account]) for leg in legs],
    )
    conn.execute(
        "INSERT INTO refunds (recharge_id, transfer_id, user_id, coins, created_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        (recharge, transfer, user, coins, now_ms),
    )
    status, body = respond(transfer, int(debited[0]))
    conn.execute(
        "INSERT INTO idempotency (user_id, key, request_hash, status, body, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (user, idempotency_key, request_hash, status, body, now_ms),
    )
    return Refunded(StoredResponse(request_hash, status, body), provider_ref, price_cents)


def change_limit_tx(
    conn: sqlite3.Connection, user: UserId, change: Callable[[Limit], Limit]
) -> Limit:
    row = conn.execute(
        f"SELECT {LIMIT_COLUMNS} FROM spending_limits WHERE user_id = ?",
        (user,),
    ).fetchone()
    new = change(limit_from_row(row) if row else Limit())
    pending = new.pending
    conn.execute(
        "INSERT INTO spending_limits (user_id, daily_coins, pending_set,"
        " pending_daily_coins, pending_effective_ms, time_zone, pending_time_zone)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET daily_coins = excluded.daily_coins,"
        " pending_set = excluded.pending_set,"
        " pending_daily_coins = excluded.pending_daily_coins,"
        " pending_effective_ms = excluded.pending_effective_ms,"
        " time_zone = excluded.time_zone, pending_time_zone = excluded.pending_time_zone",
        (
            user,
            new.daily_coins,
            int(pending is not None),
            pending.daily_coins if pending else None,
            pending.effective_ms if pending else None,
            new.time_zone,
            pending.time_zone if pending else None,
        ),
    )
    return new


PAYOUT_COLUMNS = "id, user_id, diamonds, cents, status, created_ms, settled_ms"


def payout_row(row: Sequence[Any]) -> PayoutRow:
    return PayoutRow(row[0], UserId(row[1]), row[2], row[3], PayoutStatus(row[4]), row[5], row[6])


def _post(
    conn: sqlite3.Connection,
    kind: TransferKind,
    user: UserId,
    now_ms: int,
    payout: int,
    legs: Sequence[Leg],
) -> None:
    cur = conn.execute(
        "INSERT INTO transfers (kind, at_ms, user_id, payout_id) VALUES (?, ?, ?, ?)",
        (kind.value, now_ms, user, payout),
    )
    transfer = int(cur.lastrowid or 0)
    rows = [
        (int(leg.account), transfer, leg.amount, add(conn, leg.account, leg.amount)) for leg in legs
    ]
    conn.executemany(
        "INSERT INTO entries (account_id, transfer_id, amount, balance_after) VALUES (?, ?, ?, ?)",
        rows,
    )


def request_payout_tx(
    conn: sqlite3.Connection,
    user: UserId,
    due: Payable,
    idempotency_key: str,
    request_hash: str,
    now_ms: int,
    daily_cents_max: int,
    respond: Callable[[PayoutRow], tuple[int, bytes]],
) -> StoredResponse | Refusal:
    kept = conn.execute(
        "SELECT request_hash, status, body FROM idempotency WHERE user_id = ? AND key = ?",
        (user, idempotency_key),
    ).fetchone()
    if kept is not None:
        return StoredResponse(kept[0], kept[1], bytes(kept[2]))
    day_start = day_of(now_ms) * DAY_MS
    (today,) = conn.execute(
        "SELECT coalesce(sum(cents), 0) FROM payouts WHERE user_id = ? AND created_ms >= ?"
        " AND status != 'failed'",
        (user, day_start),
    ).fetchone()
    if today + due.cents > daily_cents_max:
        left = max(0, daily_cents_max - today)
        return Refusal(
            Code.PAYOUT_LIMIT,
            f"payouts are limited to {daily_cents_max} cents a day; {left} cents are left today",
        )
    reserved = conn.execute(
        "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ? RETURNING balance",
        (due.diamonds, diamond_account(user), due.diamonds),
    ).fetchone()
    if reserved is None:
        (have,) = conn.execute(
            "SELECT balance FROM accounts WHERE id = ?", (diamond_account(user),)
        ).fetchone()
        return Refusal(
            Code.INSUFFICIENT_DIAMONDS,
            f"this payout needs {due.diamonds} diamonds and you have {have}",
        )
    # The guarded UPDATE above took the diamonds; post the legs without touching the user twice.
    cur = conn.execute(
        "INSERT INTO payouts (user_id, diamonds, cents, status, created_ms)"
        " VALUES (?, ?, ?, 'pending', ?)",
        (user, due.diamonds, due.cents, now_ms),
    )
    payout = int(cur.lastrowid or 0)
    cur = conn.execute(
        "INSERT INTO transfers (kind, at_ms, user_id, payout_id) VALUES ('payout', ?, ?, ?)",
        (now_ms, user, payout),
    )
    transfer = int(cur.lastrowid or 0)
    legs = payout_legs(user, due.diamonds)
    after = {
        diamond_account(user): int(reserved[0]),
        int(SystemAccount.DIAMONDS_RESERVED): add(
            conn, SystemAccount.DIAMONDS_RESERVED, due.diamonds
        ),
    }
    conn.executemany(
        "INSERT INTO entries (account_id, transfer_id, amount, balance_after) VALUES (?, ?, ?, ?)",
        [(int(leg.account), transfer, leg.amount, after[leg.account]) for leg in legs],
    )
    row = PayoutRow(payout, user, due.diamonds, due.cents, PayoutStatus.PENDING, now_ms, None)
    status, body = respond(row)
    conn.execute(
        "INSERT INTO idempotency (user_id, key, request_hash, status, body, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (user, idempotency_key, request_hash, status, body, now_ms),
    )
    return StoredResponse(request_hash, status, body)


def settle_payout_tx(
    conn: sqlite3.Connection, payout: int, outcome: str, now_ms: int
) -> PayoutRow | Refusal:
    found = conn.execute(f"SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = ?", (payout,)).fetchone()
    if found is None:
        return Refusal(Code.NOT_FOUND, f"there is no payout {payout}")
    current = payout_row(found)
    status = settle(current.status, outcome)
    if isinstance(status, Refusal):
        return status
    # Guarded on the status too: a second settle racing this one changes nothing.
    updated = conn.execute(
        "UPDATE payouts SET status = ?, settled_ms = ? WHERE id = ? AND status = 'pending'",
        (status.value, now_ms, payout),
    ).rowcount
    if updated != 1:
        return Refusal(Code.ALREADY_SETTLED, "this payout was already settled")
    if status is PayoutStatus.PAID:
        _post(
            conn,
            TransferKind.PAYOUT_PAID,
            current.user,
            now_ms,
            payout,
            payout_paid_legs(current.diamonds),
        )
    else:
        _post(
            conn,
            TransferKind.PAYOUT_REVERSED,
            current.user,
            now_ms,
            payout,
            payout_reversed_legs(current.user, current.diamonds),
        )
    return PayoutRow(
        current.id,
        current.user,
        current.diamonds,
        current.cents,
        status,
        current.created_ms,
        now_ms,
    )
