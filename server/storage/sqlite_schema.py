"""The SQLite schema and its migrations, applied in order at start-up.

Money invariants are enforced here a second time, whatever the code above does: user balances
cannot go negative (CHECK), the journal is append-only (triggers), a gift request id is unique
per sender and a room's seq is unique (primary keys).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from server.storage.sqlite_costs import backfill

# A step is SQL (statements separated by ";\n") or a function run in the same transaction.
Step = str | Callable[[sqlite3.Connection], None]

MIGRATIONS: tuple[Step, ...] = (
    # 1: the core ledger, rooms and their events
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        birthdate TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );

    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        user_id INTEGER REFERENCES users(id),
        asset TEXT NOT NULL CHECK (asset IN ('coin', 'diamond')),
        balance INTEGER NOT NULL DEFAULT 0,
        CHECK (user_id IS NULL OR balance >= 0)
    );
    INSERT INTO accounts (id, user_id, asset) VALUES
        (1, NULL, 'coin'), (2, NULL, 'coin'), (3, NULL, 'diamond');

    CREATE TABLE transfers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        counterparty_id INTEGER,
        room_id INTEGER,
        gift_id TEXT,
        count INTEGER,
        package_id TEXT,
        price_cents INTEGER,
        currency TEXT,
        provider_ref TEXT
    );

    CREATE TABLE entries (
        account_id INTEGER NOT NULL,
        transfer_id INTEGER NOT NULL REFERENCES transfers(id),
        amount INTEGER NOT NULL,
        balance_after INTEGER,
        PRIMARY KEY (account_id, transfer_id)
    ) WITHOUT ROWID;
    CREATE INDEX entries_by_transfer ON entries (transfer_id);

    CREATE TRIGGER transfers_append_only_u BEFORE UPDATE ON transfers
        BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;
    CREATE TRIGGER transfers_append_only_d BEFORE DELETE ON transfers
        BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;
    CREATE TRIGGER entries_append_only_u BEFORE UPDATE ON entries
        BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;
    CREATE TRIGGER entries_append_only_d BEFORE DELETE ON entries
        BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;

    CREATE TABLE rooms (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host_id INTEGER NOT NULL REFERENCES users(id),
        title TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('live', 'ended')),
        seq INTEGER NOT NULL DEFAULT 0,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        overlay_version INTEGER NOT NULL DEFAULT 1,
        goal_title TEXT,
        goal_coins INTEGER,
        goal_progress INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX rooms_live ON rooms (status, id);
    CREATE INDEX rooms_by_host ON rooms (host_id, status);

    CREATE TABLE room_events (
        room_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        sender_id INTEGER,
        gift_id TEXT,
        streak_id INTEGER,
        streak_total INTEGER,
        body BLOB NOT NULL,
        PRIMARY KEY (room_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE room_gifters (
        room_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        coins INTEGER NOT NULL CHECK (coins >= 0),
        first_seq INTEGER NOT NULL,
        PRIMARY KEY (room_id, user_id)
    ) WITHOUT ROWID;

    CREATE TABLE gift_requests (
        sender_id INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        room_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        transfer_id INTEGER NOT NULL,
        coins_after INTEGER NOT NULL,
        coins_spent INTEGER NOT NULL,
        diamonds INTEGER NOT NULL,
        PRIMARY KEY (sender_id, request_id)
    ) WITHOUT ROWID;

    CREATE TABLE idempotency (
        user_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        body BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (user_id, key)
    ) WITHOUT ROWID;
    """,
    # 2: self-set daily spending limits, and coins spent per user per UTC day (backfilled)
    """
    CREATE TABLE spending_limits (
        user_id INTEGER PRIMARY KEY REFERENCES users(id),
        daily_coins INTEGER CHECK (daily_coins IS NULL OR daily_coins >= 0),
        pending_set INTEGER NOT NULL DEFAULT 0 CHECK (pending_set IN (0, 1)),
        pending_daily_coins INTEGER CHECK (pending_daily_coins IS NULL OR pending_daily_coins >= 0),
        pending_effective_ms INTEGER
    );

    CREATE TABLE daily_spend (
        user_id INTEGER NOT NULL,
        day INTEGER NOT NULL,
        coins INTEGER NOT NULL CHECK (coins >= 0),
        PRIMARY KEY (user_id, day)
    ) WITHOUT ROWID;
    INSERT INTO daily_spend (user_id, day, coins)
        SELECT t.user_id, t.at_ms / 86400000, -sum(e.amount) FROM transfers t
        JOIN entries e ON e.transfer_id = t.id AND e.account_id = 2 * t.user_id + 100
        WHERE t.kind = 'gift' GROUP BY t.user_id, t.at_ms / 86400000;
    """,
    # 3: refunds of purchases: one per recharge, enforced by the primary key
    """
    INSERT INTO accounts (id, user_id, asset) VALUES (4, NULL, 'coin');
    ALTER TABLE transfers ADD COLUMN refund_of INTEGER REFERENCES transfers(id);
    CREATE TABLE refunds (
        recharge_id INTEGER PRIMARY KEY REFERENCES transfers(id),
        transfer_id INTEGER NOT NULL UNIQUE REFERENCES transfers(id),
        user_id INTEGER NOT NULL,
        coins INTEGER NOT NULL CHECK (coins > 0),
        created_ms INTEGER NOT NULL
    );
    """,
    # 4: two-phase creator payouts
    """
    INSERT INTO accounts (id, user_id, asset) VALUES (5, NULL, 'diamond'), (6, NULL, 'diamond');
    CREATE TABLE payouts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users(id),
        diamonds INTEGER NOT NULL CHECK (diamonds > 0),
        cents INTEGER NOT NULL CHECK (cents > 0),
        status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
        created_ms INTEGER NOT NULL,
        settled_ms INTEGER,
        provider_ref TEXT
    );
    CREATE INDEX payouts_by_user ON payouts (user_id, id);
    CREATE INDEX payouts_by_status ON payouts (status, created_ms);
    ALTER TABLE transfers ADD COLUMN payout_id INTEGER REFERENCES payouts(id);
    """,
    # 5: cost bases, so every gift shows what the viewer paid for its coins (domain.pricing)
    """
    CREATE TABLE coin_costs (
        user_id INTEGER PRIMARY KEY REFERENCES users(id),
        millicents INTEGER NOT NULL CHECK (millicents >= 0)
    );
    ALTER TABLE transfers ADD COLUMN cost_millicents INTEGER
        CHECK (cost_millicents IS NULL OR cost_millicents >= 0);
    """,
    backfill,
    # 6: a time zone for spending-limit days (NULL: UTC), in force and pending; spending kept
    # per quarter hour (replacing daily_spend) so a day can be summed in any zone
    """
    ALTER TABLE spending_limits ADD COLUMN time_zone TEXT;
    ALTER TABLE spending_limits ADD COLUMN pending_time_zone TEXT;
    CREATE TABLE spend_quarters (
        user_id INTEGER NOT NULL,
        quarter INTEGER NOT NULL,
        coins INTEGER NOT NULL CHECK (coins >= 0),
        PRIMARY KEY (user_id, quarter)
    ) WITHOUT ROWID;
    INSERT INTO spend_quarters (user_id, quarter, coins)
        SELECT t.user_id, t.at_ms / 900000, -sum(e.amount) FROM transfers t
        JOIN entries e ON e.transfer_id = t.id AND e.account_id = 2 * t.user_id + 100
        WHERE t.kind = 'gift' GROUP BY t.user_id, t.at_ms / 900000;
    DROP TABLE daily_spend;
    """,
)
