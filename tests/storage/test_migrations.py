"""A database made by an older giftcast upgrades in place, with its data intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.domain.ledger import audit
from server.domain.limits import DAY_MS, day_of
from server.domain.money import UserId
from server.storage import open_store
from server.storage.sqlite_schema import MIGRATIONS

GIFT_AT_MS = 1_800_000_123_456


def make_version_1(path: Path) -> None:
    """Schema version 1 with two users, a recharge of 65 and a 30-coin gift, written by hand."""
    conn = sqlite3.connect(path, isolation_level=None)
    first = MIGRATIONS[0]
    assert isinstance(first, str)
    for statement in first.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.executemany(
        "INSERT INTO users (id, name, birthdate, created_ms) VALUES (?, ?, '1990-01-01', 0)",
        [(1, "host"), (2, "viewer")],
    )
    conn.executemany(
        "INSERT INTO accounts (id, user_id, asset, balance) VALUES (?, ?, ?, ?)",
        [
            (102, 1, "coin", 0),
            (103, 1, "diamond", 30),
            (104, 2, "coin", 35),
            (105, 2, "diamond", 0),
        ],
    )
    conn.execute("UPDATE accounts SET balance = -65 WHERE id = 1")
    conn.execute("UPDATE accounts SET balance = 30 WHERE id = 2")
    conn.execute("UPDATE accounts SET balance = -30 WHERE id = 3")
    conn.execute(
        "INSERT INTO transfers (id, kind, at_ms, user_id, package_id, price_cents, currency)"
        " VALUES (1, 'recharge', 1000, 2, 'coins_65', 99, 'USD')"
    )
    conn.execute(
        "INSERT INTO transfers (id, kind, at_ms, user_id, counterparty_id, room_id, gift_id, count)"
        " VALUES (2, 'gift', ?, 2, 1, 1, 'doughnut', 1)",
        (GIFT_AT_MS,),
    )
    conn.executemany(
        "INSERT INTO entries (account_id, transfer_id, amount, balance_after) VALUES (?, ?, ?, ?)",
        [
            (1, 1, -65, None),
            (104, 1, 65, 65),
            (104, 2, -30, 35),
            (2, 2, 30, None),
            (3, 2, -30, None),
            (103, 2, 30, 30),
        ],
    )
    conn.close()


async def test_a_version_1_database_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_version_1(path)
    store = await open_store(f"sqlite:///{path}")
    try:
        assert await store.balances(UserId(2)) == (35, 0)
        assert await store.balances(UserId(1)) == (0, 30)
        # Migrations 2 and 6 backfilled what the viewer spent that day from the journal.
        day = day_of(GIFT_AT_MS)
        assert await store.spent_between(UserId(2), day * DAY_MS, (day + 1) * DAY_MS) == 30
        # Migration 3 added the refunds account; the ledger still proves itself.
        report = audit(await store.audit_input())
        assert report.balanced, report.violations
        assert report.totals["coin"]["refunded"] == 0
        # Migration 5 replayed the journal for cost bases: 30 of 65 coins bought for $0.99.
        gift_cost = 99_000 * 30 // 65
        assert report.totals["coin_cost_millicents"] == {
            "paid": 99_000,
            "held": 99_000 - gift_cost,
            "gifted": gift_cost,
            "refunded": 0,
        }
        sent = [r for r in await store.transactions(UserId(2), 10, None) if r.kind == "gift_sent"]
        assert [r.cost_millicents for r in sent] == [gift_cost]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(version) == len(MIGRATIONS)
    finally:
        conn.close()
